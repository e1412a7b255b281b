"""telemeter-notification-dryrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from telemeter.cmd import dryrun
from telemeter.notification import meters
from tests.unit.notification import payloads

BIN = os.path.join(os.path.dirname(sys.executable),
                   'telemeter-notification-dryrun')


@pytest.fixture
def config(tmp_path):
    """``config(dirs)`` writes a telemeter.conf whose meter definitions
    come from ``dirs`` (default: the packaged directory only)."""
    path = tmp_path / 'telemeter.conf'

    def write(dirs=None) -> str:
        dirs = dirs or [meters.PACKAGED_METERS_DIR]
        path.write_text('[meter]\n' + ''.join(
            f'meter_definitions_dirs = {d}\n' for d in dirs))
        return str(path)
    return write


def _run(argv, capsys):
    status = dryrun.main(['telemeter-notification-dryrun', *argv])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def _lines(tmp_path, name, notifications):
    path = tmp_path / name
    path.write_text('\n'.join(json.dumps(n) for n in notifications) + '\n')
    return str(path)


def test_samples_then_events_per_notification_in_order(tmp_path, capsys,
                                                       config):
    path = _lines(tmp_path, 'n.jsonl', [payloads.volume(),
                                        payloads.image()])
    status, records, _err = _run(['--config-file', config(), path], capsys)
    assert status == 0
    assert [(r['kind'], r.get('name') or r['event_type'])
            for r in records] == [('sample', 'volume.size'),
                                  ('event', 'volume.create.end'),
                                  ('sample', 'image.size'),
                                  ('event', 'image.upload')]
    volume = records[0]
    assert set(volume) == {'name', 'type', 'unit', 'volume', 'user_id',
                           'project_id', 'resource_id', 'timestamp',
                           'resource_metadata', 'source', 'id',
                           'monotonic_time', 'kind'}
    assert (volume['volume'], volume['unit'], volume['resource_id']) == (
        10, 'GB', payloads.VOLUME)
    event = records[1]
    assert set(event) == {'message_id', 'event_type', 'generated', 'traits',
                          'raw', 'kind'}
    assert event['generated'] == '2017-09-14T09:32:00.123456'
    assert ['size', 2, 10] in event['traits']


def test_json_object_list_and_lines(tmp_path, capsys, config):
    one = tmp_path / 'one.json'
    one.write_text(json.dumps(payloads.snapshot(), indent=2))
    many = tmp_path / 'many.json'
    many.write_text(json.dumps([payloads.backup(), payloads.http_request()],
                               indent=2))
    lines = _lines(tmp_path, 'lines.jsonl', [payloads.ipmi_metrics()])
    status, records, _ = _run(['--config-file', config(), str(one),
                               str(many), lines], capsys)
    assert status == 0
    names = [r['name'] for r in records if r['kind'] == 'sample']
    assert names[:3] == ['snapshot.size', 'backup.size', 'http.request']
    # ipmi: 2 temperature + 2 current + 1 fan + 1 voltage (one disabled,
    # one power consumption and one unreadable fan left out).
    assert len([n for n in names if n.startswith('hardware.ipmi.')]) == 6
    assert [r['event_type'] for r in records if r['kind'] == 'event'] == [
        'snapshot.create.end', 'backup.create.end', 'http.request',
        'hardware.ipmi.metrics']


@pytest.mark.parametrize('priority, kinds', [
    ('info', ['sample', 'event']), ('INFO', ['sample', 'event']),
    ('sample', ['sample']), ('error', ['event']), ('warn', []),
    ('debug', []),
])
def test_priorities_as_in_the_agent(tmp_path, capsys, config, priority,
                                    kinds):
    notification = payloads.volume()
    notification['priority'] = priority
    path = _lines(tmp_path, 'n.jsonl', [notification])
    _status, records, _ = _run(['--config-file', config(), path], capsys)
    assert [r['kind'] for r in records] == kinds


def test_polled_samples_through_the_sample_handler(tmp_path, capsys,
                                                   config):
    polled = {'event_type': 'telemetry.polling', 'priority': 'SAMPLE',
              'publisher_id': 'telemeter.polling', 'payload': {'samples': [
                  {'counter_name': 'cpu', 'counter_type': 'cumulative',
                   'counter_unit': 'ns', 'counter_volume': 5,
                   'user_id': None, 'project_id': None,
                   'resource_id': 'host-1', 'timestamp':
                       '2031-01-01T00:00:00', 'resource_metadata': {},
                   'source': 'openstack', 'message_id': 'mid-1'}]}}
    path = _lines(tmp_path, 'n.jsonl', [polled])
    _status, records, _ = _run(['--config-file', config(), path], capsys)
    assert [(r['kind'], r.get('name'), r.get('id')) for r in records] == [
        ('sample', 'cpu', 'mid-1')]


def test_samples_without_a_usable_volume_are_not_printed(tmp_path, capsys,
                                                         config):
    no_size = payloads.volume()
    del no_size['payload']['size']
    text_size = payloads.volume(size='ten')
    numeric_text = payloads.volume(size='10')
    path = _lines(tmp_path, 'n.jsonl', [no_size, text_size, numeric_text])
    _status, records, _ = _run(['--config-file', config(), path], capsys)
    assert [r['volume'] for r in records if r['kind'] == 'sample'] == ['10']
    assert len([r for r in records if r['kind'] == 'event']) == 3


def test_my_meters_d_override_is_used(tmp_path, capsys, config):
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'volume.yaml').write_text(textwrap.dedent("""\
        metric:
          - name: volume.size
            event_type: volume\\.create\\.end
            type: gauge
            unit: MiB
            volume: $.payload.size * 1024
            resource_id: $.payload.volume_id
        """))
    conf = config([str(mine), meters.PACKAGED_METERS_DIR])
    path = _lines(tmp_path, 'n.jsonl', [payloads.volume()])
    _status, records, _ = _run(['--config-file', conf, path], capsys)
    [sample] = [r for r in records if r['kind'] == 'sample']
    # 10 GB * 1024 = 10240 MiB
    assert (sample['unit'], sample['volume']) == ('MiB', 10240)


def test_input_errors_are_reported_and_the_rest_runs(tmp_path, capsys,
                                                     config):
    bad = tmp_path / 'bad.jsonl'
    bad.write_text('{"event_type": "x"\nnot json\n')
    missing = tmp_path / 'missing.json'
    incomplete = tmp_path / 'incomplete.json'
    incomplete.write_text(json.dumps({'event_type': 'volume.create.end',
                                      'payload': {}}))
    good = _lines(tmp_path, 'good.jsonl', [payloads.volume()])
    status, records, err = _run(['--config-file', config(), str(bad),
                                 str(missing), str(incomplete), good],
                                capsys)
    assert status == dryrun.EXIT_INPUT
    assert f'{bad}:1: not JSON' in err
    assert f'{missing}: cannot read' in err
    assert ('notification 1: missing publisher_id, priority' in err)
    assert [r['kind'] for r in records] == ['sample', 'event']


def test_definition_errors_set_the_exit_status(tmp_path, capsys, config):
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'bad.yaml').write_text(
        'metric:\n  - {name: broken, type: gauge}\n')
    conf = config([str(mine)])
    path = _lines(tmp_path, 'n.jsonl', [payloads.volume()])
    status, records, err = _run(['--config-file', conf, path], capsys)
    assert status == dryrun.EXIT_DEFINITIONS
    assert "Required fields ['event_type', 'unit', 'volume', " in err
    assert '1 definition(s) have errors' in err
    # The volume meter was in the packaged file, which is no longer used.
    assert [r['kind'] for r in records] == ['event']


def test_handler_failure_sets_the_exit_status(tmp_path, capsys, config):
    broken = payloads.http_request()
    broken['payload'] = {'no': 'request'}
    path = _lines(tmp_path, 'n.jsonl', [broken])
    status, records, err = _run(['--config-file', config(), path], capsys)
    assert status == dryrun.EXIT_HANDLER
    assert 'Fail to process notification' in err
    assert [r['kind'] for r in records] == ['event']


def test_missing_metadata_is_generated(tmp_path, capsys, config):
    notification = payloads.volume()
    del notification['metadata']
    path = _lines(tmp_path, 'n.jsonl', [notification])
    _status, records, _ = _run(['--config-file', config(), path], capsys)
    event = records[1]
    assert len(event['message_id']) == 36
    assert event['generated'][:2] == '20'


def test_console_script_reads_stdin_and_keeps_stdout_clean(config):
    result = subprocess.run(
        [BIN, '--config-file', config(), '-'],
        input=json.dumps(payloads.keystone_authenticate('failure')),
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r['kind'], r.get('name')) for r in records] == [
        ('sample', 'identity.authenticate.failure'), ('event', None)]
    assert 'Loaded' in result.stderr  # logs go to standard error


# -- the forms a notification may be written in -----------------------------

def _oslo_form(notification: dict) -> dict:
    """``notification`` as oslo.messaging's Notifier and AMQP driver put it
    in a message: envelope facts at the top, the context flattened."""
    from oslo_messaging._drivers import amqp as rpc_amqp
    message = {'message_id': notification['metadata']['message_id'],
               'publisher_id': notification['publisher_id'],
               'event_type': notification['event_type'],
               'priority': notification['priority'],
               'payload': notification['payload'],
               'timestamp': notification['metadata']['timestamp']}
    rpc_amqp.pack_context(message, notification['ctxt'])
    return message


def _bus_form(notification: dict) -> dict:
    """``notification`` as it travels on RabbitMQ (oslo.messaging's own
    serialisation)."""
    from oslo_messaging._drivers import common as rpc_common
    return rpc_common.serialize_msg(_oslo_form(notification))


def test_the_three_forms_make_the_same_records(tmp_path, capsys, config):
    notification = payloads.volume()
    notification['metadata'] = {'message_id': 'mid-forms',
                                'timestamp': '2031-05-06 07:08:09.123456'}
    outputs = []
    for form in (notification, _oslo_form(notification),
                 _bus_form(notification)):
        path = _lines(tmp_path, 'n.jsonl', [form])
        status, records, err = _run(['--config-file', config(), path],
                                    capsys)
        assert status == 0, err
        outputs.append(records)
    assert outputs[0] == outputs[1] == outputs[2]
    sample, event = outputs[0]
    assert sample['timestamp'] == '2031-05-06T07:08:09.123456+00:00'
    assert (event['message_id'], event['generated']) == (
        'mid-forms', '2031-05-06T07:08:09.123456')
    # The context came through the _context_* keys.
    assert ['request_id', 1, 'req-6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'] in (
        event['traits'])


def test_top_level_message_id_and_timestamp_are_used(tmp_path, capsys,
                                                     config):
    notification = payloads.volume()
    del notification['metadata']
    notification.update(message_id='mid-top', timestamp='2031-01-02T03:04:05')
    path = _lines(tmp_path, 'n.jsonl', [notification])
    status, [sample, event], _ = _run(['--config-file', config(), path],
                                      capsys)
    assert status == 0
    assert (event['message_id'], event['generated']) == (
        'mid-top', '2031-01-02T03:04:05')
    assert sample['timestamp'] == '2031-01-02T03:04:05+00:00'
    # Sample ids derive from the message id: the same as with metadata.
    notification = payloads.volume()
    notification['metadata']['message_id'] = 'mid-top'
    path = _lines(tmp_path, 'n.jsonl', [notification])
    _status, [same, _event], _ = _run(['--config-file', config(), path],
                                      capsys)
    assert same['id'] == sample['id']


def test_a_bus_message_may_hold_the_decoded_object(tmp_path, capsys,
                                                   config):
    bus = {'oslo.version': '2.0',
           'oslo.message': _oslo_form(payloads.volume())}
    path = _lines(tmp_path, 'n.jsonl', [bus])
    status, records, _ = _run(['--config-file', config(), path], capsys)
    assert status == 0
    assert [r['kind'] for r in records] == ['sample', 'event']


def _bad(**changes):
    notification = _oslo_form(payloads.volume())
    notification.update(changes)
    return notification


@pytest.mark.parametrize('document, message', [
    ({'oslo.version': '2.0', 'oslo.message': '{"event_type": '},
     'notification 1: oslo.message is not JSON text'),
    ({'oslo.version': '3.0', 'oslo.message': '{}'},
     'notification 1: unsupported envelope version 3.0'),
    ({'oslo.message': '{}'},
     'notification 1: oslo.version missing'),
    ({'oslo.version': '2.0', 'oslo.message': '[1]'},
     'notification 1: oslo.message is not a JSON object'),
    ({'oslo.version': '2.0', 'oslo.message': json.dumps(
        {'event_type': 'x', 'payload': {}, 'publisher_id': 'p'})},
     'notification 1: oslo.message: missing priority'),
    ({'oslo.version': '2.0', 'oslo.message': json.dumps(
        _bad(timestamp='yesterday'))},
     "notification 1: oslo.message: timestamp 'yesterday' is not an ISO "
     "8601 date and time"),
    (_bad(message_id=7), 'notification 1: message_id must be a string'),
    (_bad(metadata={'message_id': 'other'}),
     "notification 1: message_id 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d' "
     "differs from metadata.message_id 'other'"),
    (_bad(metadata=['x']), 'notification 1: metadata must be a JSON object'),
    (_bad(ctxt={}), 'notification 1: ctxt and _context_user_id both given'),
    (dict(payloads.volume(), ctxt='me'),
     'notification 1: ctxt must be a JSON object'),
])
def test_unusable_forms_name_the_file_and_the_field(tmp_path, capsys, config,
                                                    document, message):
    path = _lines(tmp_path, 'n.jsonl', [document, payloads.volume()])
    status, records, err = _run(['--config-file', config(), path], capsys)
    assert status == dryrun.EXIT_INPUT
    assert f'{path}: {message}' in err
    # The notification is left out, not the file.
    assert [r['kind'] for r in records] == ['sample', 'event']
