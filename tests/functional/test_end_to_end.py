"""The three daemons as real processes over a real RabbitMQ into SQLite.

polling -> notifications.sample -> agent-notification -> pipeline ->
notifier:// -> metering.sample -> collector -> database dispatcher -> SQL.
"""

from __future__ import annotations

import datetime
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import kombu
import pytest
import sqlalchemy

from telemeter import messaging, sample, storage
from telemeter import utils as storage_utils
from telemeter.publisher import utils
from tests.functional import daemons
from tests.functional.fixtures import receivers

REPO = Path(__file__).resolve().parents[2]

# name -> (type, unit, volume type) of the host pollster family.
HOST_METERS = {
    'host.cpu.time': ('cumulative', 'ns', int),
    'host.memory.used': ('gauge', 'B', int),
    'host.memory.total': ('gauge', 'B', int),
    'host.disk.read.bytes': ('cumulative', 'B', int),
    'host.disk.write.bytes': ('cumulative', 'B', int),
    'host.network.incoming.bytes': ('cumulative', 'B', int),
    'host.network.outgoing.bytes': ('cumulative', 'B', int),
    'host.load.1min': ('gauge', 'process', float),
    'host.load.5min': ('gauge', 'process', float),
    'host.load.15min': ('gauge', 'process', float),
}


@pytest.fixture(params=['sqlite'])
def deployment(request, tmp_path, rabbit_url):
    database_url = None
    if request.param == 'postgresql':
        database_url = request.getfixturevalue('postgresql_function_url')
    dep = daemons.Deployment(tmp_path / 'deployment', rabbit_url,
                             database_url=database_url)
    dep.run('telemeter-dbsync')
    yield dep
    dep.cleanup()
    messaging.cleanup()


def _start_agents(dep: daemons.Deployment):
    collector = dep.start('telemeter-collector')
    notification = dep.start('telemeter-agent-notification')
    collector.wait_for_log('Collector listening on topic')
    notification.wait_for_log('Notification agent listening')
    return collector, notification


def _wait_for_samples(conn, sample_filter, count=1, timeout=60.0,
                      interval=0.5):
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        found = list(conn.get_samples(sample_filter))
        if len(found) >= count:
            return found
        time.sleep(interval)
    raise AssertionError(f'{len(found)} of {count} samples stored within '
                         f'{timeout}s for {vars(sample_filter)}')


def _assert_signed_as_received(dep, stored) -> None:
    """The stored row is what the collector received, and what it received
    carries a valid signature of the deployment's secret."""
    wire = dep.received()[stored.message_id]
    assert utils.verify_signature(wire, daemons.SECRET)
    assert not utils.verify_signature(wire, 'other-secret')
    assert wire['message_signature'] == stored.message_signature
    assert (wire['counter_name'], wire['counter_type'], wire['counter_unit'],
            wire['counter_volume'], wire['user_id'], wire['project_id'],
            wire['resource_id'], wire['source'],
            wire['resource_metadata']) == (
        stored.counter_name, stored.counter_type, stored.counter_unit,
        stored.counter_volume, stored.user_id, stored.project_id,
        stored.resource_id, stored.source, stored.resource_metadata)
    assert storage_utils.sanitize_timestamp(wire['timestamp']) == (
        stored.timestamp)


def _notifier(dep: daemons.Deployment, topic: str, publisher_id: str):
    transport = messaging.get_transport(dep.conf(), dep.transport_url)
    return messaging.get_notifier(transport, publisher_id,
                                  driver='messagingv2', topics=[topic])


def _signed(name: str, resource: str, secret: str = daemons.SECRET,
            volume: float = 1.0) -> dict:
    s = sample.Sample(name, 'gauge', 'thing', volume, 'u', 'p', resource,
                      timestamp=datetime.datetime.utcnow().isoformat())
    return utils.meter_message_from_counter(s, secret)


@pytest.mark.parametrize('deployment', ['sqlite', 'postgresql'],
                         indirect=True)
def test_send_sample_and_polled_samples_reach_the_database(deployment):
    dep = deployment
    _start_agents(dep)
    dep.start('telemeter-polling', '--polling-namespaces', 'compute')
    dep.run('telemeter-send-sample', '-n', 'functional.meter',
            '-y', 'cumulative', '-U', 'widget', '-l', '42',
            '-r', 'resource-42', '-u', 'user-1', '-p', 'project-1',
            '-i', '2031-05-06T07:08:09.101112',
            '-m', "{'colour': 'blue', 'nested': {'size': 3}}")
    conn = dep.storage()

    [stored] = _wait_for_samples(
        conn, storage.SampleFilter(meter='functional.meter'))
    assert (stored.counter_name, stored.counter_type, stored.counter_unit,
            stored.counter_volume) == ('functional.meter', 'cumulative',
                                       'widget', 42.0)
    assert (stored.user_id, stored.project_id, stored.resource_id,
            stored.source) == ('user-1', 'project-1', 'resource-42',
                               'openstack')
    assert stored.timestamp == datetime.datetime(2031, 5, 6, 7, 8, 9,
                                                 101112)
    assert stored.resource_metadata == {'colour': 'blue',
                                        'nested': {'size': 3}}
    assert len(stored.message_id) == 36
    _assert_signed_as_received(dep, stored)

    # The README's way to see stored samples shows it.
    shown = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'show-samples.py'),
         '--config-file', str(dep.config_path), '--meter',
         'functional.meter', '--limit', '5'],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert 'functional.meter' in shown and 'resource-42' in shown
    assert ' 42 ' in shown and 'widget' in shown
    unknown = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'show-samples.py'),
         '--config-file', str(dep.config_path), '--meter', 'no.such.meter'],
        capture_output=True, text=True, timeout=60, check=False)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("No samples of meter 'no.such.meter'. "
                                     'Stored meters: ')
    assert 'functional.meter' in unknown.stderr

    # Two polling cycles (interval 2 s) of every host meter.
    started = datetime.datetime.utcnow()
    polled = _wait_for_samples(
        conn, storage.SampleFilter(resource=dep.host),
        count=2 * len(HOST_METERS), timeout=90)
    by_name: dict[str, list] = {}
    for s in polled:
        by_name.setdefault(s.counter_name, []).append(s)
    assert set(by_name) == set(HOST_METERS)
    for name, (kind, unit, volume_type) in HOST_METERS.items():
        newest = by_name[name][0]
        assert (newest.counter_type, newest.counter_unit) == (kind, unit)
        assert newest.user_id is None and newest.project_id is None
        assert newest.source == 'openstack'
        assert isinstance(newest.resource_metadata, dict)
        assert newest.resource_metadata
        assert newest.counter_volume >= 0
        assert float(newest.counter_volume) == volume_type(
            newest.counter_volume)
        age = abs((newest.timestamp - started).total_seconds())
        assert age < 120
        _assert_signed_as_received(dep, newest)
    total = by_name['host.memory.total'][0].counter_volume
    assert 0 < by_name['host.memory.used'][0].counter_volume <= total
    cpu = sorted(by_name['host.cpu.time'], key=lambda s: s.timestamp)
    assert cpu[-1].counter_volume >= cpu[0].counter_volume > 0


def test_forged_and_malformed_messages_are_dropped(deployment):
    dep = deployment
    collector, notification = _start_agents(dep)
    polling_notifier = _notifier(dep, dep.notification_topic,
                                 'telemeter.polling')
    metering_notifier = _notifier(dep, dep.metering_topic, 'intruder')

    # A forged signature straight onto the collector's topic.
    metering_notifier.sample({}, 'metering',
                             [_signed('forged.meter', 'r-forged', 'wrong')])
    # Payloads of the wrong shape on both agents' queues.
    metering_notifier.sample({}, 'metering', 'not a list')
    metering_notifier.sample({}, 'metering', [['nested'], 42, None])
    polling_notifier.sample({}, 'telemetry.polling', {'samples': 'x'})
    polling_notifier.sample({}, 'telemetry.polling', None)
    polling_notifier.sample({}, 'telemetry.polling',
                            {'samples': [{'counter_name': 'no-type'}]})
    # Bodies that are not even JSON, published with plain AMQP.
    with kombu.Connection(dep.transport_url.replace('rabbit://', 'amqp://')
                          ) as conn:
        producer = conn.Producer()
        for topic in (dep.metering_topic, dep.notification_topic):
            producer.publish(b'\x00\xffnot json{', exchange='telemeter',
                             routing_key=f'{topic}.sample',
                             content_type='application/octet-stream')

    collector.wait_for_log('notification signature invalid, discarding')
    notification.wait_for_log('Fail to process notification', count=3)

    # Both daemons survived and still do their work.
    polling_notifier.sample({}, 'telemetry.polling', {'samples': [
        _signed('after.garbage', 'r-ok')]})
    conn = dep.storage()
    [stored] = _wait_for_samples(
        conn, storage.SampleFilter(meter='after.garbage'))
    assert stored.resource_id == 'r-ok'
    assert list(conn.get_samples(
        storage.SampleFilter(meter='forged.meter'))) == []
    assert collector.alive() and notification.alive()


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGKILL])
def test_collector_stopped_mid_stream_loses_and_duplicates_nothing(
        deployment, signum):
    """SIGTERM lets in-flight batches finish; SIGKILL leaves them
    unacknowledged. Either way the broker redelivers what was not
    acknowledged and message_id keeps redelivered rows single."""
    dep = deployment
    total = 3000
    notifier = _notifier(dep, dep.metering_topic, 'load')
    sent_ids = set()
    for i in range(total):
        message = _signed('inflight.meter', f'r-{i % 7}', volume=i)
        sent_ids.add(message['message_id'])
        notifier.sample({}, 'metering', [message])

    conn = dep.storage()
    only = storage.SampleFilter(meter='inflight.meter')
    # One message per transaction, so that the first collector is still
    # busy when it is stopped (with its batches it drains all of them
    # before the stop could land); the second one runs with the defaults.
    dep.write_config('[collector]\nbatch_size = 1\n')
    collector = dep.start('telemeter-collector')
    _wait_for_samples(conn, only, count=50, timeout=60, interval=0.05)
    if signum == signal.SIGKILL:
        collector.kill()
    else:
        assert collector.stop(signum)[0] == 0
    stored_at_stop = len(list(conn.get_samples(only)))
    assert stored_at_stop < total, 'stopped too late to test anything'

    dep.write_config()
    dep.start('telemeter-collector')
    _wait_for_samples(conn, only, count=total, timeout=120)
    time.sleep(2)  # anything redelivered twice would show up now
    stored = list(conn.get_samples(only))
    assert len(stored) == total
    assert {s.message_id for s in stored} == sent_ids


def test_the_agent_requeues_what_a_publisher_did_not_take(tmp_path,
                                                           rabbit_url):
    """An HTTP endpoint answering 503 takes nothing: the notifications
    stay on the bus (requeued after a back-off) until it answers 200,
    then every sample arrives; none is lost."""
    class Recovering(receivers.HTTPReceiver):
        """Answers 503 until ``status`` changes; keeps what it took."""

        def __init__(self):
            super().__init__(status=503)
            self.taken = set()

        def handle(self, request):
            status, reply = super().handle(request)
            if status == 200:
                self.taken.update(s['id']
                                  for s in json.loads(request.body))
            return status, reply
    endpoint = Recovering()
    pipeline_yaml = daemons.DEFAULT_PIPELINE.replace(
        '"notifier://"', f'"{endpoint.url("/in")}"')
    dep = daemons.Deployment(tmp_path / 'deployment', rabbit_url,
                             pipeline=pipeline_yaml)
    try:
        notification = dep.start('telemeter-agent-notification')
        notification.wait_for_log('Notification agent listening')
        publish = _notifier(dep, dep.notification_topic, 'telemeter.polling')
        sent = set()
        for i in range(30):
            message = _signed('http.meter', f'r-{i}', volume=i)
            sent.add(message['message_id'])
            publish.sample({}, 'telemetry.polling', {'samples': [message]})
        endpoint.wait(3, timeout=60)
        notification.wait_for_log('Requeuing 30 of 30 message|Requeuing '
                                  r'\d+ notification')
        assert not endpoint.taken
        endpoint.status = 200
        receivers.wait_for(lambda: endpoint.taken == sent, timeout=60,
                           message='every sample after the endpoint '
                                   'recovered')
        assert notification.alive()
    finally:
        endpoint.close()
        dep.cleanup()
        messaging.cleanup()


@pytest.mark.parametrize('batch_size', [1, 50])
def test_a_sample_the_database_rejects_is_quarantined_then_replayed(
        deployment, batch_size):
    """The database refuses one sample (a trigger stands for whatever a
    schema may refuse): its batch-mates are stored, it is quarantined
    (at once when isolated in a batch, after max_deliveries alone), and
    once the cause is gone telemeter-quarantine replays it."""
    dep = deployment
    dep.write_config(f'[collector]\nbatch_size = {batch_size}\n')
    engine = sqlalchemy.create_engine(dep.database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER reject_poison BEFORE INSERT ON resource "
            "WHEN NEW.resource_id = 'poison-r' "
            "BEGIN SELECT RAISE(ABORT, 'poison resource refused'); END")
    notifier = _notifier(dep, dep.metering_topic, 'load')
    total = 120
    for i in range(total):
        resource = 'poison-r' if i == 77 else f'r-{i}'
        notifier.sample({}, 'metering',
                        [_signed('poison.meter', resource, volume=i)])
    collector = dep.start('telemeter-collector')
    conn = dep.storage()
    only = storage.SampleFilter(meter='poison.meter')
    stored = _wait_for_samples(conn, only, count=total - 1)
    assert 77 not in {s.counter_volume for s in stored}
    collector.wait_for_log('Quarantined message', timeout=60)

    listing = dep.run('telemeter-quarantine', 'list').stdout
    assert '1 message(s) in queue ' + dep.quarantine_queue in listing
    assert 'poison resource refused' in listing
    ident = listing.splitlines()[1].split()[0]
    shown = dep.run('telemeter-quarantine', 'show', ident).stdout
    assert '"resource_id": "poison-r"' in shown

    with engine.begin() as conn_:
        conn_.exec_driver_sql('DROP TRIGGER reject_poison')
    replayed = dep.run('telemeter-quarantine', 'replay', ident).stdout
    assert f'replayed {ident} to ' in replayed
    stored = _wait_for_samples(conn, only, count=total)
    assert sorted(s.counter_volume for s in stored) == list(range(total))
    assert '0 message(s) in queue' in dep.run('telemeter-quarantine',
                                              'list').stdout
    # Bounded: no redelivery loop, the collector still running.
    assert collector.alive()
    assert collector.log().count('Quarantined message') == 1
    engine.dispose()


def test_telemeter_quarantine_refuses_an_unknown_id(deployment):
    result = subprocess.run(
        deployment.command('telemeter-quarantine', 'purge', 'nosuchid'),
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert 'no message nosuchid in queue' in result.stderr


@pytest.mark.parametrize('name, args, ready', [
    ('telemeter-collector', (), 'Collector listening on topic'),
    ('telemeter-agent-notification', (), 'Notification agent listening'),
    ('telemeter-polling', ('--polling-namespaces', 'compute'),
     'Polling pollster host.'),
])
def test_sigterm_exits_cleanly_within_graceful_timeout(deployment, name,
                                                       args, ready):
    daemon = deployment.start(name, *args)
    daemon.wait_for_log(ready)
    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.log()[-3000:]
    assert seconds < 15  # graceful_shutdown_timeout of the deployment
    assert 'Traceback' not in daemon.log()


def test_sighup_reloads_pipeline_and_keeps_it_on_a_bad_file(deployment):
    dep = deployment
    _, notification = _start_agents(dep)
    publish = _notifier(dep, dep.notification_topic, 'telemeter.polling')
    conn = dep.storage()

    dep.pipeline_path.write_text('sources: [this is: not valid')
    notification.send_signal(signal.SIGHUP)
    notification.wait_for_log('Keeping the running pipelines: reloading '
                              + re.escape(str(dep.pipeline_path)))
    publish.sample({}, 'telemetry.polling',
                   {'samples': [_signed('before.reload', 'r')]})
    _wait_for_samples(conn, storage.SampleFilter(meter='before.reload'))

    dep.pipeline_path.write_text(daemons.DEFAULT_PIPELINE.replace(
        '["*"]', '["kept.*"]'))
    notification.send_signal(signal.SIGHUP)
    notification.wait_for_log('Pipelines reloaded from '
                              + re.escape(str(dep.pipeline_path)))
    publish.sample({}, 'telemetry.polling', {'samples': [
        _signed('dropped.meter', 'r'), _signed('kept.meter', 'r')]})
    _wait_for_samples(conn, storage.SampleFilter(meter='kept.meter'))
    assert list(conn.get_samples(
        storage.SampleFilter(meter='dropped.meter'))) == []
    assert notification.alive()
