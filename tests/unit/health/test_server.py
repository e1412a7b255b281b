"""The health HTTP server over real sockets on loopback."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import parser

from telemeter.health import checks, ledger, server
from telemeter.health.ledger import reading


class Counts:
    received = 0


@pytest.fixture
def health_conf(conf):
    conf.set_override('enabled', True, group='health')
    conf.set_override('collector_port', 0, group='health')
    yield conf
    for sock in server._BOUND.values():
        sock.close()
    server._BOUND.clear()


@pytest.fixture
def running(health_conf):
    counts = Counts()
    book = ledger.Ledger('collector', 0)
    book.add(lambda: [reading('received', counts.received, stage='bus',
                              kind='sample'),
                      reading('dropped', 2, stage='udp', kind='sample',
                              reason='overflow')])
    state = {'ok': True}
    health = checks.Checks()
    health.add(lambda: [checks.Check('database', state['ok'],
                                     'answers' if state['ok'] else 'down')])
    srv = server.serve(health_conf, book, health)
    yield srv, counts, state
    srv.stop()


def _get(srv, path):
    host, port = srv.address
    try:
        with urllib.request.urlopen(f'http://{host}:{port}{path}',
                                    timeout=5) as answer:
            return answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def _metrics(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parser.text_string_to_metric_families(text)
            for s in family.samples}


def test_metrics_are_read_at_scrape_time(running):
    srv, counts, _ = running
    status, headers, text = _get(srv, '/metrics')
    assert status == 200
    assert headers['Content-Type'].startswith('text/plain')
    found = _metrics(text)
    key = ('telemeter_received_total', (('kind', 'sample'), ('stage', 'bus')))
    assert found[key] == 0
    assert found[('telemeter_dropped_total', (
        ('kind', 'sample'), ('reason', 'overflow'), ('stage', 'udp')))] == 2
    assert found[('telemeter_healthy', ())] == 1
    assert found[('telemeter_check', (('check', 'database'),))] == 1
    assert ('process_resident_memory_bytes', ()) in found
    counts.received = 41
    assert _metrics(_get(srv, '/metrics')[2])[key] == 41


def test_healthz_is_200_then_503_with_the_reason(running):
    srv, _, state = running
    status, headers, text = _get(srv, '/healthz')
    body = json.loads(text)
    assert status == 200 and headers['Content-Type'] == 'application/json'
    assert body['status'] == 'ok' and body['reasons'] == []
    assert (body['daemon'], body['worker']) == ('collector', 0)
    state['ok'] = False
    status, _, text = _get(srv, '/healthz')
    body = json.loads(text)
    assert status == 503
    assert body['status'] == 'unavailable'
    assert body['reasons'] == ['database: down']
    assert body['checks'] == [{'name': 'database', 'ok': False,
                               'detail': 'down'}]
    assert _metrics(_get(srv, '/metrics')[2])[('telemeter_healthy', ())] == 0


def test_other_paths_are_404(running):
    assert _get(running[0], '/')[0] == 404


def test_a_slow_client_does_not_block_others(running):
    srv = running[0]
    with socket.create_connection(srv.address) as idle:
        idle.sendall(b'GET /met')   # never finishes its request
        begin = time.monotonic()
        assert _get(srv, '/healthz')[0] == 200
        assert time.monotonic() - begin < 2


def test_stop_closes_the_port(health_conf):
    srv = server.serve(health_conf, ledger.Ledger('collector'),
                       checks.Checks())
    address = srv.address
    srv.stop()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1).close()
    assert not any(t.name == 'health-http' for t in threading.enumerate())


def test_disabled_serves_nothing(conf):
    assert server.serve(conf, ledger.Ledger('collector'),
                        checks.Checks()) is None
    server.bind_ports(conf, 'collector', 3)
    assert server._BOUND == {}


def _busy_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(1)
    return sock, sock.getsockname()[1]


def _two_free_ports() -> int:
    """A port p with p + 1 free as well (the kernel only vouches for p:
    try again when p + 1 is taken, e.g. by an outgoing connection)."""
    for _ in range(50):
        holder, port = _busy_port()
        with holder, socket.socket() as second:
            try:
                second.bind(('127.0.0.1', port + 1))
            except OSError:
                continue
        return port
    raise AssertionError('no two free consecutive ports on 127.0.0.1')


def test_workers_get_port_plus_their_id_bound_by_the_master(health_conf):
    port = _two_free_ports()
    health_conf.set_override('collector_port', port, group='health')
    server.bind_ports(health_conf, 'collector', 2)
    assert [s.getsockname()[1] for s in server._BOUND.values()] == [
        port, port + 1]
    srv = server.serve(health_conf, ledger.Ledger('collector', 1),
                       checks.Checks())
    try:
        assert srv.address == ('127.0.0.1', port + 1)
        assert _get(srv, '/healthz')[0] == 200
    finally:
        srv.stop()


def test_a_port_in_use_names_the_option(health_conf, caplog):
    holder, port = _busy_port()
    with holder:
        health_conf.set_override('notification_port', port, group='health')
        with pytest.raises(server.PortInUse,
                           match=r'\[health\] notification_port'):
            server.bind_ports(health_conf, 'notification', 1)
        with pytest.raises(SystemExit, match=f'127.0.0.1:{port}'):
            server.bind_or_exit(health_conf, 'notification', 1)
        with pytest.raises(server.PortInUse):
            server.serve(health_conf, ledger.Ledger('notification'),
                         checks.Checks())
    assert 'Cannot serve the health endpoints' in caplog.text
