"""The ``_sample`` handler and the notification endpoint base."""

import logging

import pytest

from telemeter import pipeline
from telemeter.notification import ipc

PIPELINE = """
sources: [{name: s, meters: ["*"], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]
"""


@pytest.fixture
def handler(conf, write_yaml):
    conf.set_override('pipeline_cfg_file', write_yaml('p.yaml', PIPELINE))
    return ipc.TelemetryIpc(pipeline.setup_pipeline(conf))


def _published(handler):
    return handler.manager.pipelines[0].sink.publishers[0].samples


def _metering_dict(name, volume=1):
    return {'counter_name': name, 'counter_type': 'gauge',
            'counter_unit': 'B', 'counter_volume': volume, 'user_id': 'u',
            'project_id': 'p', 'resource_id': 'r',
            'timestamp': '2031-01-01T00:00:00', 'resource_metadata': {'m': 1},
            'source': 'src', 'message_id': f'id-{name}',
            'monotonic_time': 12.0, 'message_signature': 'ignored'}


def _notification(payload, event_type='telemetry.polling'):
    return {'ctxt': {}, 'publisher_id': 'telemeter.polling',
            'event_type': event_type, 'payload': payload,
            'metadata': {'message_id': 'n', 'timestamp': 't'}}


def test_targets_use_the_telemeter_exchange(conf, handler):
    targets = handler.get_targets(conf)
    assert [(t.topic, t.exchange) for t in targets] == [
        ('notifications', 'telemeter')]


def test_filter_accepts_only_telemetry_event_types(handler):
    rule = handler.filter_rule
    assert rule.match({}, 'x', 'telemetry.polling', {}, {})
    assert rule.match({}, 'x', 'telemetry.api', {}, {})
    assert not rule.match({}, 'x', 'compute.instance.create', {}, {})


def test_samples_are_rebuilt_from_metering_dicts(handler):
    handler.sample([_notification({'samples': [_metering_dict('a', 2),
                                               _metering_dict('b')]})])
    published = _published(handler)
    assert [(s.name, s.volume, s.id) for s in published] == [
        ('a', 2, 'id-a'), ('b', 1, 'id-b')]
    first = published[0]
    assert (first.type, first.unit, first.user_id, first.project_id,
            first.resource_id, first.timestamp, first.resource_metadata,
            first.source, first.monotonic_time) == (
        'gauge', 'B', 'u', 'p', 'r', '2031-01-01T00:00:00', {'m': 1},
        'src', None)


@pytest.mark.parametrize('payload', [
    None, 'text', {}, {'samples': 'x'}, {'samples': [{'counter_name': 1}]},
])
def test_malformed_notifications_are_logged_and_do_not_stop_others(
        handler, caplog, payload):
    with caplog.at_level(logging.ERROR):
        handler.info([_notification(payload),
                      _notification({'samples': [_metering_dict('ok')]})])
    assert [s.name for s in _published(handler)] == ['ok']
    assert 'Fail to process notification' in caplog.text


def test_other_priorities_are_discarded(handler):
    for method in ('audit', 'debug', 'warn', 'error', 'critical'):
        getattr(handler, method)([_notification(
            {'samples': [_metering_dict('x')]})])
    assert _published(handler) == []
