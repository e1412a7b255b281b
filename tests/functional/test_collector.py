"""The collector as a real process with a real broker: events and samples
into storage, UDP from the polling chain, bad input rejected and counted
(two workers sharing the UDP port), and a dispatcher or database that fails
and recovers without losing or duplicating a sample.
"""

from __future__ import annotations

import ast
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import uuid

import msgpack
import pytest
import sqlalchemy
from sqlalchemy import pool

from telemeter import messaging, sample, storage
from telemeter.publisher import utils as signing
from telemeter.storage import models
from tests.functional import daemons
from tests.functional.fixtures import receivers

# Pid and counters; a worker also logs them every minute, so the last
# line of each pid is its final figure.
_UDP_STATS = re.compile(
    r' (\d+) INFO \S+ \[[^\]]*\] '
    r'UDP receiver: (\d+) datagrams received, (\d+) samples dispatched, '
    r'(\d+) undecodable, (\d+) rejected, (\d+) failed to store, (\d+) '
    r'dropped')
_BUS_STATS = re.compile(
    r'Bus (sample|event) endpoint: (\d+) received, (\d+) rejected, (\d+) '
    r'dispatched, (\d+) batches requeued')


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _configure(dep: daemons.Deployment, meter_dispatchers=None,
               event_dispatchers=None, extra: str = '') -> None:
    """Rewrite the deployment's config with other dispatchers and extra
    sections (appended; a later value of a single option wins)."""
    dep.write_config(extra)
    text = dep.config_path.read_text()
    if meter_dispatchers is not None:
        text = text.replace(
            'meter_dispatchers = file\nmeter_dispatchers = database\n',
            ''.join(f'meter_dispatchers = {d}\n' for d in meter_dispatchers))
    if event_dispatchers is not None:
        text = text.replace('[oslo_messaging_notifications]', ''.join(
            f'event_dispatchers = {d}\n' for d in event_dispatchers)
            + '[oslo_messaging_notifications]')
    dep.config_path.write_text(text)


@pytest.fixture
def deployment(request, tmp_path, rabbit_url):
    deps = []

    def _make(**kwargs):
        dep = daemons.Deployment(tmp_path / f'dep{len(deps)}', rabbit_url,
                                 **kwargs)
        deps.append(dep)
        return dep
    yield _make
    for dep in deps:
        dep.cleanup()
    messaging.cleanup()


def _notifier(dep: daemons.Deployment, topic: str, publisher_id='test'):
    transport = messaging.get_transport(dep.conf(), dep.transport_url)
    return messaging.get_notifier(transport, publisher_id,
                                  driver='messagingv2', topics=[topic])


def _signed(name: str, resource: str = 'r', secret: str = daemons.SECRET,
            volume: float = 1.0) -> dict:
    s = sample.Sample(name, 'gauge', 'thing', volume, 'u', 'p', resource,
                      timestamp=datetime.datetime.utcnow().isoformat())
    return signing.meter_message_from_counter(s, secret)


def _stored(dep, **filters) -> list:
    return list(dep.storage().get_samples(storage.SampleFilter(**filters)))


def _wait_stored(dep, count: int, timeout: float = 90, **filters) -> list:
    return receivers.wait_for(
        lambda: (lambda s: s if len(s) >= count else None)(
            _stored(dep, **filters)),
        timeout, f'{count} samples stored for {filters}')


def _file_dispatcher_records(dep: daemons.Deployment) -> dict[str, dict]:
    """What the file dispatcher recorded, by message_id: a list per bus
    batch, a dict for a lone UDP sample, a list for a UDP burst."""
    records = {}
    for line in dep.received_path.read_text().splitlines():
        data = ast.literal_eval(line)
        for message in data if isinstance(data, list) else [data]:
            records[message['message_id']] = message
    return records


def _stop_and_read_stats(daemon) -> tuple[list, list]:
    code, _ = daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.log()[-3000:]
    text = daemon.log()
    udp = list({m[0]: tuple(int(x) for x in m[1:])
                for m in _UDP_STATS.findall(text)}.values())
    bus = [(m[0], *map(int, m[1:])) for m in _BUS_STATS.findall(text)]
    return udp, bus


# ------------------------------------------------------------ events ----

_PUBLISH_EVENTS = textwrap.dedent('''
    import datetime, json, sys
    from telemeter import pipeline, service
    from telemeter.storage import models
    conf = service.prepare_service(['publish-events'],
                                   config_files=[sys.argv[1]])
    manager = pipeline.setup_event_pipeline(conf)
    events = [models.Event(e['id'], e['type'],
                           datetime.datetime.fromisoformat(e['generated']),
                           [models.Trait(*t) for t in e['traits']], e['raw'])
              for e in json.loads(sys.argv[2])]
    with manager.publisher() as publish:
        publish(events)
''')


def test_events_through_the_event_pipeline_land_in_storage(deployment):
    dep = deployment()
    dep.run('telemeter-dbsync')
    collector = dep.start('telemeter-collector')
    collector.wait_for_log('Collector listening on topic', count=2)
    events = [{'id': str(uuid.uuid4()), 'type': 'backup.create.end',
               'generated': f'2031-02-03T04:05:0{i}',
               'traits': [['name', 1, f'backup-{i}'], ['size', 2, 10 + i],
                          ['ratio', 3, 0.5 * i],
                          ['created_at', 4, '2031-02-03T04:00:00']],
               'raw': {'payload': {'i': i}}} for i in range(3)]
    subprocess.run([sys.executable, '-c', _PUBLISH_EVENTS,
                    str(dep.config_path), json.dumps(events)],
                   check=True, timeout=120, capture_output=True)
    # A forged event straight onto the collector's event topic.
    forged = models.Event(str(uuid.uuid4()), 'backup.create.end',
                          datetime.datetime(2031, 1, 1), [], {})
    _notifier(dep, dep.event_topic).sample(
        {}, 'event', [signing.message_from_event(forged, 'wrong')])

    conn = storage.get_connection(dep.conf(), dep.database_url,
                                  'telemeter.event.storage')
    try:
        stored = receivers.wait_for(
            lambda: (lambda e: e if len(e) >= 3 else None)(
                list(conn.get_events(storage.EventFilter()))), 60,
            '3 events stored')
        collector.wait_for_log('notification signature invalid')
        by_id = {e.message_id: e for e in stored}
        assert set(by_id) == {e['id'] for e in events}
        for sent in events:
            event = by_id[sent['id']]
            assert event.event_type == 'backup.create.end'
            assert event.generated == datetime.datetime.fromisoformat(
                sent['generated'])
            assert event.raw == sent['raw']
            traits = {t.name: (t.dtype, t.value) for t in event.traits}
            i = sent['traits'][1][2] - 10
            assert traits == {
                'name': (1, f'backup-{i}'), 'size': (2, 10 + i),
                'ratio': (3, 0.5 * i),
                'created_at': (4, datetime.datetime(2031, 2, 3, 4))}
    finally:
        conn.dispose()


def test_notification_agent_samples_and_events_land_in_storage(deployment):
    """A cinder notification -> agent (meter and event definitions) ->
    notifier:// -> collector -> database dispatchers -> storage: one
    volume.size sample and one volume.create.end event."""
    dep = deployment()
    dep.run('telemeter-dbsync')
    collector = dep.start('telemeter-collector')
    notification = dep.start('telemeter-agent-notification')
    collector.wait_for_log('Collector listening on topic', count=2)
    notification.wait_for_log('Notification agent listening')
    volume = str(uuid.uuid4())
    _notifier(dep, dep.notification_topic, 'volume.cinder-01@lvm').info(
        {'user_id': 'u-1', 'project_id': 'p-1'}, 'volume.create.end',
        {'volume_id': volume, 'tenant_id': 'p-1', 'user_id': 'u-1',
         'display_name': 'data', 'size': 10, 'status': 'available',
         'availability_zone': 'nova',
         'created_at': '2031-02-03T04:05:06+00:00'})
    conn = storage.get_connection(dep.conf(), dep.database_url,
                                  'telemeter.event.storage')
    try:
        [event] = receivers.wait_for(
            lambda: list(conn.get_events(storage.EventFilter(
                event_type='volume.create.end'))), 60, 'the volume event')
        traits = {t.name: t.value for t in event.traits}
        assert traits['resource_id'] == volume
        assert traits['size'] == 10
        assert traits['project_id'] == 'p-1'
        assert traits['created_at'] == datetime.datetime(2031, 2, 3, 4, 5, 6)
    finally:
        conn.dispose()
    [stored] = _wait_stored(dep, 1, meter='volume.size')
    assert (stored.resource_id, stored.counter_volume, stored.counter_unit,
            stored.project_id) == (volume, 10, 'GB', 'p-1')
    assert signing.verify_signature(
        _file_dispatcher_records(dep)[stored.message_id], daemons.SECRET)


# --------------------------------------------------------------- udp ----

_UDP_PIPELINE = """\
sources: [{{name: s, meters: ["*"], sinks: [k]}}]
sinks: [{{name: k, publishers: ["udp://127.0.0.1:{port}"]}}]
"""


def test_udp_samples_from_polling_land_in_storage(deployment):
    port = _free_udp_port()
    dep = deployment(pipeline=_UDP_PIPELINE.format(port=port))
    _configure(dep, extra=f"""
        [collector]
        udp_address = 127.0.0.1
        udp_port = {port}
        """)
    dep.run('telemeter-dbsync')
    collector = dep.start('telemeter-collector')
    collector.wait_for_log('UDP receiver bound to 127.0.0.1 port')
    notification = dep.start('telemeter-agent-notification')
    notification.wait_for_log('Notification agent listening')
    dep.start('telemeter-polling', '--polling-namespaces', 'compute')
    # Two polling cycles (interval 2 s) of the ten host meters.
    stored = _wait_stored(dep, 20, resource=dep.host)
    assert {s.counter_name for s in stored} >= {'host.cpu.time',
                                                'host.memory.used'}
    received = _file_dispatcher_records(dep)
    for s in stored:
        assert signing.verify_signature(received[s.message_id],
                                        daemons.SECRET)
    udp, bus = _stop_and_read_stats(collector)
    # Everything came over UDP; the bus endpoint got nothing.
    [(datagrams, dispatched, undecodable, rejected, failed, dropped)] = udp
    assert datagrams == dispatched >= len(stored)
    assert (undecodable, rejected, failed, dropped) == (0, 0, 0, 0)
    assert ('sample', 0, 0, 0, 0) in bus


def test_two_workers_share_the_port_and_count_bad_datagrams(deployment):
    port = _free_udp_port()
    dep = deployment()
    _configure(dep, extra=f"""
        [collector]
        workers = 2
        udp_address = 127.0.0.1
        udp_port = {port}
        """)
    dep.run('telemeter-dbsync')
    collector = dep.start('telemeter-collector')
    collector.wait_for_log('UDP receiver bound to 127.0.0.1 port', count=2)
    good = [_signed('udp.good', f'r-{i}') for i in range(16)]
    bad = [msgpack.packb(_signed('udp.forged', secret='not-the-secret')),
           msgpack.packb(_signed('udp.forged.2', secret='')),
           msgpack.packb(['a', 'list']),
           b'\x00\xff garbage', b'\xc1', b'']
    # One socket per datagram: the kernel spreads sources over the two
    # workers' sockets (all 22 on one worker: probability 2 * 2**-22).
    for datagram in [msgpack.packb(g) for g in good] + bad:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(datagram, ('127.0.0.1', port))
    stored = _wait_stored(dep, 16, meter='udp.good')
    assert {s.message_id for s in stored} == {g['message_id'] for g in good}
    assert _stored(dep, meter='udp.forged') == []
    assert _stored(dep, meter='udp.forged.2') == []
    time.sleep(1)
    assert collector.alive()
    udp, _ = _stop_and_read_stats(collector)
    assert len(udp) == 2, udp
    totals = [sum(column) for column in zip(*udp, strict=True)]
    # 22 datagrams: 16 stored; b'\x00\xff...', b'\xc1' and b'' cannot be
    # decoded; the two bad signatures and the list are rejected.
    assert totals == [22, 16, 3, 3, 0, 0]
    assert all(worker[0] > 0 for worker in udp), udp
    assert 'UDP: Cannot decode data sent by' in collector.log()
    assert 'sample signature invalid, discarding' in collector.log()


# ------------------------------------------- failure, then recovery ----

_FLAKY_PLUGIN = '''
"""Test-only dispatcher: the database dispatcher, but its first calls fail
(alternately before and after writing, as a crash before or after the
commit would)."""
import os

from oslo_log import log

from telemeter.dispatcher import database

LOG = log.getLogger(__name__)


class FlakyDatabaseDispatcher(database.MeterDatabaseDispatcher):
    def __init__(self, conf):
        super().__init__(conf)
        self.failures = int(os.environ['TELEMETER_FLAKY_FAILURES'])
        self.calls = 0

    def record_metering_data(self, data):
        self.calls += 1
        if self.calls > self.failures:
            return super().record_metering_data(data)
        if self.calls % 2 == 0:
            super().record_metering_data(data)
            LOG.warning('flaky: failing call %d after writing %d',
                        self.calls, len(data))
        else:
            LOG.warning('flaky: failing call %d before writing %d',
                        self.calls, len(data))
        raise ConnectionError('flaky dispatcher failure %d' % self.calls)
'''


@pytest.fixture
def flaky_plugin(tmp_path, monkeypatch):
    """Register a ``flaky`` meter dispatcher for the daemons started by
    the test: a module and a dist-info with its entry point, on the
    daemons' PYTHONPATH only."""
    root = tmp_path / 'plugins'
    info = root / 'telemeter_flaky_test-0.0.dist-info'
    info.mkdir(parents=True)
    (root / 'telemeter_flaky_test.py').write_text(_FLAKY_PLUGIN)
    (info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: telemeter-flaky-test\nVersion: 0.0\n')
    (info / 'entry_points.txt').write_text(
        '[telemeter.dispatcher.meter]\n'
        'flaky = telemeter_flaky_test:FlakyDatabaseDispatcher\n')
    monkeypatch.setenv('PYTHONPATH', str(root))
    return monkeypatch


def test_dispatcher_failing_n_times_then_recovering_stores_exactly_once(
        deployment, flaky_plugin):
    failures = 4
    flaky_plugin.setenv('TELEMETER_FLAKY_FAILURES', str(failures))
    dep = deployment()
    _configure(dep, meter_dispatchers=['flaky'], extra="""
        [collector]
        batch_size = 50
        batch_timeout = 1
        """)
    dep.run('telemeter-dbsync')
    total = 400
    notifier = _notifier(dep, dep.metering_topic)
    sent = {}
    for i in range(total):
        message = _signed('flaky.meter', f'r-{i % 5}', volume=i)
        sent[message['message_id']] = message
        notifier.sample({}, 'metering', [message])
    # The queue is full before the collector starts, so batches are full.
    collector = dep.start('telemeter-collector')
    stored = _wait_stored(dep, total, meter='flaky.meter', timeout=120)
    time.sleep(3)  # a duplicate from a redelivery would show up now
    stored = _stored(dep, meter='flaky.meter')
    assert len(stored) == total
    assert {s.message_id for s in stored} == set(sent)
    assert sorted(s.counter_volume for s in stored) == list(range(total))
    log = collector.log()
    assert len(re.findall(r'flaky: failing call \d+ before writing 50',
                          log)) == 2
    assert len(re.findall(r'flaky: failing call \d+ after writing 50',
                          log)) == 2
    assert log.count('Dispatcher failed to handle the notification, '
                     're-queuing it') == failures
    _, bus = _stop_and_read_stats(collector)
    [(_, received, rejected, dispatched, requeued)] = [
        b for b in bus if b[0] == 'sample']
    # Each requeued batch of 50 was delivered twice: 400 + 4 * 50.
    assert (received, rejected, dispatched, requeued) == (
        total + failures * 50, 0, total, failures)


def _admin(server_url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(server_url, isolation_level='AUTOCOMMIT',
                                    poolclass=pool.NullPool)


@pytest.mark.timeout(400)
def test_postgresql_outage_then_recovery_stores_exactly_once(
        deployment, postgresql_function_url, postgresql_server_url):
    dep = deployment(database_url=postgresql_function_url)
    _configure(dep, extra="""
        [collector]
        batch_size = 20
        batch_timeout = 1
        """)
    dep.run('telemeter-dbsync')
    name = urllib.parse.urlsplit(postgresql_function_url).path.lstrip('/')
    collector = dep.start('telemeter-collector')
    collector.wait_for_log('Collector listening on topic', count=2)
    notifier = _notifier(dep, dep.metering_topic)
    sent = set()

    def publish(count, offset):
        for i in range(offset, offset + count):
            message = _signed('outage.meter', f'r-{i % 3}', volume=i)
            sent.add(message['message_id'])
            notifier.sample({}, 'metering', [message])

    publish(100, 0)
    _wait_stored(dep, 100, meter='outage.meter')
    dep.storage().dispose()  # the test's own connection to that database
    admin = _admin(postgresql_server_url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute(sqlalchemy.text(
                'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                'WHERE datname = :name AND pid <> pg_backend_pid()'),
                {'name': name})
        publish(100, 100)
        # The collector cannot write: batches are requeued, not acked.
        collector.wait_for_log('Dispatcher failed to handle the '
                               'notification, re-queuing it.', count=3,
                               timeout=120)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()
    publish(50, 200)
    _wait_stored(dep, 250, meter='outage.meter', timeout=180)
    time.sleep(3)
    stored = _stored(dep, meter='outage.meter')
    assert len(stored) == 250
    assert {s.message_id for s in stored} == sent
    assert collector.alive()


# -------------------------------------------------------------- http ----

def test_http_dispatcher_forwards_meters_and_events(deployment):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    dep = deployment()
    _configure(dep, meter_dispatchers=['http'], event_dispatchers=['http'],
               extra=f"""
        [dispatcher_http]
        target = http://127.0.0.1:{port}/meters
        event_target = http://127.0.0.1:{port}/events
        batch_mode = true
        [collector]
        batch_size = 10
        batch_timeout = 1
        """)
    collector = dep.start('telemeter-collector')
    collector.wait_for_log('Collector listening on topic', count=2)
    samples_sent = [_signed('http.meter', f'r-{i}') for i in range(5)]
    event = models.Event(str(uuid.uuid4()), 'image.upload',
                         datetime.datetime(2031, 1, 1), [], {'a': 1})
    # Nothing listens on the target yet: the batches are requeued.
    _notifier(dep, dep.metering_topic).sample({}, 'metering', samples_sent)
    _notifier(dep, dep.event_topic).sample(
        {}, 'event', [signing.message_from_event(event, daemons.SECRET)])
    collector.wait_for_log('Dispatcher failed to handle the notification',
                           count=2)
    server = receivers.HTTPReceiver(port=port)
    try:
        receivers.wait_for(
            lambda: {r.path for r in server.requests} == {'/meters',
                                                          '/events'},
            60, 'meters and events posted')
        meters = [r for r in server.requests if r.path == '/meters']
        events = [r for r in server.requests if r.path == '/events']
        # batch_mode: the list of one bus batch in one POST.
        posted = [m for r in meters for m in r.json()]
        assert {m['message_id'] for m in posted} == {
            s['message_id'] for s in samples_sent}
        assert all(signing.verify_signature(m, daemons.SECRET)
                   for m in posted)
        [[posted_event]] = [r.json() for r in events]
        assert posted_event['message_id'] == event.message_id
    finally:
        server.close()


def test_sigusr2_writes_every_threads_stack_and_the_daemon_goes_on(
        deployment):
    dep = deployment()
    dep.run('telemeter-dbsync')
    collector = dep.start('telemeter-collector')
    collector.wait_for_log('Collector listening on topic')
    before = collector.log()
    os.killpg(collector.pid, signal.SIGUSR2)
    # The master and its worker each write their stacks to stderr (the
    # log here); the worker's include its batch listener's loop.
    text = collector.wait_for_log(r'most recent call first',
                                  count=before.count('most recent call')
                                  + 2, timeout=10)
    dump = text[len(before):]
    assert re.search(r'File ".*telemeter/messaging/rabbit\.py", line \d+ '
                     r'in _run', dump), dump[-3000:]
    assert collector.alive()
    notifier = _notifier(dep, dep.metering_topic)
    for i in range(3):
        notifier.sample({}, 'metering', [_signed('usr2.meter', f'r-{i}')])
    assert len(_wait_stored(dep, 3, meter='usr2.meter')) == 3
    code, _ = collector.stop(signal.SIGTERM)
    assert code == 0, collector.log()[-3000:]
