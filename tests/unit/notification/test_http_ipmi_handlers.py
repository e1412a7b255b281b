"""The http.request/http.response and hardware.ipmi.* handlers."""

from __future__ import annotations

import logging

import pytest
from stevedore import extension

from telemeter.notification import ipmi, middleware
from tests.unit.notification import payloads
from tests.unit.notification.conftest import published_samples


def test_entry_points():
    manager = extension.ExtensionManager('telemeter.notification')
    plugins = {ext.name: ext.plugin for ext in manager}
    assert plugins['http.request'] is middleware.HTTPRequest
    assert plugins['http.response'] is middleware.HTTPResponse
    assert plugins['hardware.ipmi.temperature'] is (
        ipmi.TemperatureSensorNotification)
    assert plugins['hardware.ipmi.voltage'] is ipmi.VoltageSensorNotification
    assert plugins['hardware.ipmi.current'] is ipmi.CurrentSensorNotification
    assert plugins['hardware.ipmi.fan'] is ipmi.FanSensorNotification


# -- http ------------------------------------------------------------------

@pytest.mark.parametrize('cls, event_type', [
    (middleware.HTTPRequest, 'http.request'),
    (middleware.HTTPResponse, 'http.response'),
])
def test_http_handlers(sample_pipelines, cls, event_type):
    handler = cls(sample_pipelines)
    assert handler.filter_rule.match({}, 'x', event_type, {}, {})
    assert not handler.filter_rule.match({}, 'x', 'compute.instance.update',
                                         {}, {})
    notification = payloads.message(payloads.http_request())
    notification['event_type'] = event_type
    [sample] = handler.process_notification(notification)
    assert (sample.name, sample.type, sample.unit, sample.volume) == (
        event_type, 'delta', event_type.split('.')[1], 1)
    assert (sample.user_id, sample.project_id, sample.resource_id) == (
        payloads.USER, payloads.PROJECT, 'nova')
    assert sample.resource_metadata['host'] == 'ceilometermiddleware'
    assert sample.timestamp == '2017-09-14T09:32:00.123456+00:00'


def test_http_handler_without_request_fails_and_is_counted(
        sample_pipelines, caplog):
    handler = middleware.HTTPRequest(sample_pipelines)
    broken = payloads.message(payloads.http_request())
    broken['payload'] = {'response': {}}
    handler.info([broken, payloads.message(payloads.http_request())])
    assert len(published_samples(sample_pipelines)) == 1
    assert handler.failures == 1
    assert 'Fail to process notification' in caplog.text


# -- ipmi ------------------------------------------------------------------

def _ipmi(cls, pipelines, notification=None):
    handler = cls(pipelines)
    message = payloads.message(notification or payloads.ipmi_metrics())
    return handler, list(handler.process_notification(message))


def test_ipmi_targets_use_the_ironic_exchange(conf, sample_pipelines):
    conf.set_override('ironic_exchange', 'baremetal')
    handler = ipmi.FanSensorNotification(sample_pipelines)
    assert [(t.topic, t.exchange) for t in handler.get_targets(conf)] == [
        ('notifications', 'baremetal')]
    assert handler.filter_rule.match({}, 'x', 'hardware.ipmi.metrics',
                                     {}, {})
    assert not handler.filter_rule.match({}, 'x', 'compute.metrics.update',
                                         {}, {})


def test_temperature(sample_pipelines, caplog):
    _handler, samples = _ipmi(ipmi.TemperatureSensorNotification,
                              sample_pipelines)
    # The Disabled PCH reading is skipped.
    assert sorted((s.resource_id, s.volume, s.unit) for s in samples) == [
        (f'{payloads.NODE}-cpu1_vr_temp_(0x36)', 32.0, 'C'),
        (f'{payloads.NODE}-dimm_gh_vr_temp_(0x3b)', 26.0, 'C')]
    sample = samples[0]
    assert (sample.name, sample.type, sample.user_id,
            sample.project_id) == ('hardware.ipmi.temperature', 'gauge',
                                   None, None)
    assert sample.resource_metadata['node'] == payloads.NODE
    assert sample.resource_metadata['instance_uuid'] == payloads.INSTANCE
    assert 'invalid sensor data' not in caplog.text


def test_voltage_converts_the_unit(sample_pipelines):
    _handler, [sample] = _ipmi(ipmi.VoltageSensorNotification,
                               sample_pipelines)
    assert (sample.name, sample.volume, sample.unit, sample.resource_id) == (
        'hardware.ipmi.voltage', 3.263, 'V',
        f'{payloads.NODE}-planar_3.3v_(0x30)')


def test_current_skips_power_consumption(sample_pipelines):
    _handler, samples = _ipmi(ipmi.CurrentSensorNotification,
                              sample_pipelines)
    assert sorted((s.resource_id, s.volume, s.unit) for s in samples) == [
        (f'{payloads.NODE}-avg_power_(0x2e)', 130.0, 'W'),
        (f'{payloads.NODE}-ps1_curr_out_%_(0x58)', 11.0, 'unspecified')]


def test_fan_with_a_bad_reading_warns_and_keeps_the_others(
        sample_pipelines, caplog):
    with caplog.at_level(logging.WARNING):
        _handler, [sample] = _ipmi(ipmi.FanSensorNotification,
                                   sample_pipelines)
    assert (sample.volume, sample.unit) == (6900.0, 'RPM')
    assert (f'invalid sensor data for {payloads.NODE}-fan_5a_tach_(0x48): '
            "unparsable Sensor Reading 'no reading'") in caplog.text


@pytest.mark.parametrize('sensors, message', [
    ({'X (0x1)': 'not a dict'}, 'sensor entry is not a mapping'),
    ({'X (0x1)': {'Sensor ID': 'X (0x1)'}}, 'missing Sensor Reading'),
    ({'X (0x1)': {'Sensor ID': 'X (0x1)', 'Sensor Reading': 5}},
     'Sensor Reading is not text'),
    ({'X (0x1)': {'Sensor ID': 'X (0x1)', 'Sensor Reading': '12'}},
     "unparsable Sensor Reading '12'"),
])
def test_bad_sensor_entries(sample_pipelines, caplog, sensors, message):
    notification = payloads.ipmi_metrics()
    notification['payload']['payload'] = {'Fan': sensors}
    with caplog.at_level(logging.WARNING):
        _handler, samples = _ipmi(ipmi.FanSensorNotification,
                                  sample_pipelines, notification)
    assert samples == []
    assert f'invalid sensor data for {payloads.NODE}-x_(0x1): ' in (
        caplog.text)
    assert message in caplog.text


def test_family_absent_gives_nothing_and_not_a_mapping_warns(
        sample_pipelines, caplog):
    notification = payloads.ipmi_metrics()
    notification['payload']['payload'] = {'Fan': ['a', 'b']}
    assert _ipmi(ipmi.TemperatureSensorNotification, sample_pipelines,
                 notification)[1] == []
    assert _ipmi(ipmi.FanSensorNotification, sample_pipelines,
                 notification)[1] == []
    assert 'Fan is not a mapping' in caplog.text


@pytest.mark.parametrize('reading, expected', [
    ('26 (+/- 0.500) degrees C', (26.0, 'C')),
    ('3.263 (+/- 0) Volts', (3.263, 'V')),
    ('130 (+/- 0) Watts', (130.0, 'W')),
    ('6900 (+/- 0) RPM', (6900.0, 'RPM')),
    ('-5 degrees C', (-5.0, 'C')),
])
def test_parse_reading(reading, expected):
    assert ipmi.parse_reading(reading) == expected


def test_event_type_filter_matches_like_oslo_and_remembers():
    import oslo_messaging

    from telemeter.notification import plugin_base
    patterns = ['hardware.ipmi.*', 'http\\.request']
    ours = plugin_base.EventTypeFilter(patterns)
    theirs = oslo_messaging.NotificationFilter(event_type='|'.join(patterns))
    for event_type in ('hardware.ipmi.metrics', 'http.request',
                       'http.requests', 'xhttp.request', 'compute.x', None,
                       3):
        for _ in range(2):  # the second answer comes from the cache
            assert ours.match({}, 'p', event_type, {}, {}) == \
                theirs.match({}, 'p', event_type, {}, {}), event_type
    assert set(ours._known) == {'hardware.ipmi.metrics', 'http.request',
                                'http.requests', 'xhttp.request',
                                'compute.x'}
