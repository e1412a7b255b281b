"""/metrics and /healthz of the real daemons, scraped over HTTP.

The collector and the notification agent run as processes against the
session's RabbitMQ and a fresh PostgreSQL database; their ledgers must
equal what the database holds, and the collector's /healthz must turn 503
while PostgreSQL is stopped and 200 again when it is back.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from prometheus_client import parser

from telemeter import messaging, storage
from tests.functional import daemons
from tests.functional.fixtures import services
from tests.functional.test_end_to_end import _notifier, _signed

NOTIFICATIONS = 30
PER_NOTIFICATION = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def deployment(tmp_path, rabbit_url, postgresql_function_url):
    ports = {'collector': _free_port(), 'notification': _free_port()}
    dep = daemons.Deployment(
        tmp_path / 'deployment', rabbit_url,
        database_url=postgresql_function_url,
        extra_conf=f"""\
            [health]
            enabled = true
            collector_port = {ports['collector']}
            notification_port = {ports['notification']}
            """)
    dep.ports = ports
    dep.run('telemeter-dbsync')
    yield dep
    dep.cleanup()
    messaging.cleanup()


def _get(port: int, path: str) -> tuple[int, str]:
    url = f'http://127.0.0.1:{port}{path}'
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _metrics(port: int) -> list:
    status, text = _get(port, '/metrics')
    assert status == 200
    return [s for family in parser.text_string_to_metric_families(text)
            for s in family.samples]


def _value(found: list, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(s.value for s in found
               if s.name == name and wanted <= set(s.labels.items()))


def _healthz(port: int) -> tuple[int, dict]:
    status, text = _get(port, '/healthz')
    return status, json.loads(text)


def _wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f'{what} not reached within {timeout}s')


def _start(dep, name: str, ready: str, port: int):
    daemon = dep.start(name)
    daemon.wait_for_log(ready)
    daemon.wait_for_log(f'Health endpoints on http://127.0.0.1:{port}')
    return daemon


class Scraper(threading.Thread):
    """Scrapes both daemons every 0.1 s while the test runs."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__(daemon=True)
        self.ports = ports
        self.stopping = threading.Event()
        self.statuses: list[int] = []
        self.received: dict[int, list[float]] = {p: [] for p in ports}

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            for port in self.ports:
                found = _metrics(port)
                self.received[port].append(_value(
                    found, 'telemeter_received_total'))
                self.statuses.append(_healthz(port)[0])


def test_counters_equal_the_database(deployment):
    dep = deployment
    ports = dep.ports
    collector = _start(dep, 'telemeter-collector',
                       'Collector listening on topic', ports['collector'])
    agent = _start(dep, 'telemeter-agent-notification',
                   'Notification agent listening', ports['notification'])
    scraper = Scraper([ports['collector'], ports['notification']])
    scraper.start()

    polling = _notifier(dep, dep.notification_topic, 'telemeter.polling')
    metering = _notifier(dep, dep.metering_topic, 'intruder')
    for n in range(NOTIFICATIONS):
        polling.sample({}, 'telemetry.polling', {'samples': [
            _signed('health.meter', f'r-{n}-{i}', volume=i)
            for i in range(PER_NOTIFICATION)]})
    # Straight to the collector: a forged signature, and a sample the
    # database cannot store (a NUL in its resource id).
    metering.sample({}, 'metering', [_signed('health.forged', 'r', 'bad')])
    metering.sample({}, 'metering', [_signed('health.nul', 'r\x00x')])

    total = NOTIFICATIONS * PER_NOTIFICATION
    conn = dep.storage()

    def settled():
        found = _metrics(ports['collector'])
        done = (_value(found, 'telemeter_stored_total',
                       stage='dispatcher:database') == total
                and _value(found, 'telemeter_unsettled') == 0)
        return found if done else None
    col = _wait_until(settled, 90, f'{total} samples stored and settled')
    scraper.stopping.set()
    scraper.join(10)

    stored = list(conn.get_samples(storage.SampleFilter()))
    assert len(stored) == total
    assert {s.counter_name for s in stored} == {'health.meter'}

    # Collector: received = dropped + dispatched (+ unsettled, 0 now);
    # per dispatcher taken = stored + dropped by storage.
    def c(name, **labels):
        return _value(col, f'telemeter_{name}', **labels)
    assert c('received_total', stage='bus', kind='sample') == total + 2
    assert c('dropped_total', stage='bus', reason='signature') == 1
    assert c('dispatched_total', stage='bus', kind='sample') == total + 1
    assert c('dispatcher_taken_total', stage='dispatcher:database') == (
        total + 1)
    assert c('dispatcher_taken_total', stage='dispatcher:file') == total + 1
    assert c('stored_total', stage='dispatcher:database') == len(stored)
    assert c('dropped_total', stage='storage:database',
             reason='unstorable') == 1
    assert c('dispatch_failed_total') == 0
    # Messages: the agent packs up to 100 samples in one.
    assert c('received_total', stage='listener:sample',
             kind='message') >= total // 100 + 2
    assert c('quarantined_total', stage='listener:sample') == 0
    assert c('acknowledged_total', stage='listener:sample') == c(
        'received_total', stage='listener:sample')
    assert c('received_total', stage='bus') == (
        c('dropped_total', stage='bus') + c('dispatched_total', stage='bus')
        + c('unsettled', stage='bus'))

    # Agent: every notification received and handled, every sample
    # produced, passed by the pipeline and published.
    ag = _metrics(ports['notification'])

    def a(name, **labels):
        return _value(ag, f'telemeter_{name}', **labels)
    assert a('received_total', stage='listener:0') == NOTIFICATIONS
    assert a('quarantined_total', stage='listener:0') == 0
    assert a('acknowledged_total', stage='listener:0') == NOTIFICATIONS
    assert a('requeued_total') == 0
    assert a('produced_total', kind='sample') == total
    assert a('received_total', stage='pipeline:meter_source:meter_sink') == (
        total)
    assert a('filtered_total') == 0
    assert a('published_total', stage='sink:meter_sink',
             publisher='notifier://') == total
    assert a('publish_failed_total') == 0
    assert a('queued') == 0
    assert a('healthy') == 1

    # The scrapes during the run all answered; counters never went back.
    assert scraper.statuses and set(scraper.statuses) == {200}
    for series in scraper.received.values():
        assert series == sorted(series)
    for port in ports.values():
        status, body = _healthz(port)
        assert status == 200, body
    assert collector.alive() and agent.alive()


def _postgresql(url: str) -> services.ManagedService:
    port = urllib.parse.urlsplit(url.replace('+psycopg', '')).port
    managed = services.ManagedService(services.SERVICES['postgresql'], port)
    if not managed.is_running():
        pytest.fail(f'PostgreSQL on port {port} is not run by '
                    f'tools/services.sh: cannot stop it for this test')
    return managed


def test_healthz_turns_503_while_postgresql_is_stopped(deployment):
    dep = deployment
    port = dep.ports['collector']
    pg = _postgresql(dep.database_url)
    collector = _start(dep, 'telemeter-collector',
                       'Collector listening on topic', port)
    metering = _notifier(dep, dep.metering_topic, 'health')
    metering.sample({}, 'metering', [_signed('before.outage', 'r')])
    conn = dep.storage()
    _wait_until(lambda: list(conn.get_samples(storage.SampleFilter())), 60,
                'the first sample stored')
    status, body = _healthz(port)
    assert status == 200, body

    pg.stop()
    try:
        status, body = _wait_until(
            lambda: (lambda r: r if r[0] == 503 else None)(_healthz(port)),
            30, '/healthz 503')
        assert body['status'] == 'unavailable'
        assert any(r.startswith('storage:database:sample:')
                   for r in body['reasons']), body
        # A sample sent during the outage fails its write and is requeued.
        metering.sample({}, 'metering', [_signed('during.outage', 'r')])
        _wait_until(lambda: _value(_metrics(port),
                                   'telemeter_dispatch_failed_total') > 0,
                    60, 'a failed write')
        status, body = _healthz(port)
        assert status == 503
        assert any('the last write failed' in r for r in body['reasons'])
    finally:
        pg.start()

    status, body = _wait_until(
        lambda: (lambda r: r if r[0] == 200 else None)(_healthz(port)),
        60, '/healthz 200 again')
    found = _metrics(port)
    assert _value(found, 'telemeter_stored_total',
                  stage='dispatcher:database') == 2
    # The sample requeued during the outage is counted as requeued, then
    # received again and dispatched: nothing left unaccounted for.
    assert _value(found, 'telemeter_requeued_total', stage='bus',
                  kind='sample') > 0
    assert _value(found, 'telemeter_unsettled', stage='bus') == 0
    assert _value(found, 'telemeter_requeued_total', kind='batch') > 0
    assert len(list(conn.get_samples(storage.SampleFilter()))) == 2
    assert collector.alive()


def test_a_health_port_in_use_stops_the_daemon(deployment):
    dep = deployment
    with socket.socket() as holder:
        holder.bind(('127.0.0.1', dep.ports['collector']))
        holder.listen(1)
        daemon = dep.start('telemeter-collector')
        code = daemon.process.wait(60)
    assert code != 0
    assert '[health] collector_port' in daemon.log()
