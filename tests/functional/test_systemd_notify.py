"""Readiness (``Type=notify``) of the real daemons.

Each daemon is started with ``NOTIFY_SOCKET`` pointing at a datagram
socket the test binds, as systemd would. ``READY=1`` must come from a
worker once it consumes (the broker lists its consumer at that moment) or,
for the polling agent, once its tasks are scheduled; it must not come at
all while the broker is unreachable; SIGTERM must give ``STOPPING=1``.
"""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from tests.functional import daemons


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A bound AF_UNIX datagram socket; the daemons inherit its path."""
    path = tmp_path / 'notify.sock'
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv('NOTIFY_SOCKET', str(path))
    yield sock
    sock.close()


@pytest.fixture
def deployment(tmp_path, rabbit_url):
    deps = []

    def _make(url: str = rabbit_url, **kwargs):
        dep = daemons.Deployment(tmp_path / f'dep{len(deps)}', url, **kwargs)
        deps.append(dep)
        return dep
    yield _make
    for dep in deps:
        dep.cleanup()


def _receive(sock: socket.socket, timeout: float) -> dict[str, str] | None:
    """The next notice as a dict, or None after ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return None
    return dict(line.split('=', 1) for line in data.decode().splitlines())


def _wait_for(sock: socket.socket, key: str, timeout: float,
              daemon: daemons.Daemon) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notice = _receive(sock, max(0.1, deadline - time.monotonic()))
        if notice is not None and key in notice:
            return notice
    raise AssertionError(f'no {key}=1 within {timeout}s (alive='
                         f'{daemon.alive()}); log tail:\n'
                         + '\n'.join(daemon.log().splitlines()[-30:]))


def _consumers(rabbit_admin, queue: str) -> int:
    out = rabbit_admin.rabbitmqctl('list_queues', '-q', '--formatter',
                                   'json', 'name', 'consumers')
    return sum(int(q['consumers']) for q in json.loads(out or '[]')
               if q['name'] == queue)


def _stop_and_expect_stopping(sock, daemon) -> None:
    daemon.send_signal(signal.SIGTERM)
    notice = _wait_for(sock, 'STOPPING', 30, daemon)
    assert notice['STOPPING'] == '1'
    code, _ = daemon.stop(timeout=60)
    assert code == 0, daemon.log()[-3000:]


def test_collector_ready_once_consuming(deployment, notify_socket,
                                        rabbit_admin):
    dep = deployment()
    dep.run('telemeter-dbsync')
    queue = f'{dep.metering_topic}.sample'
    collector = dep.start('telemeter-collector')
    notice = _wait_for(notify_socket, 'READY', 90, collector)
    # The broker already lists the worker as a consumer of the queue.
    assert _consumers(rabbit_admin, queue) >= 1
    assert notice['READY'] == '1'
    # Sent by the worker on behalf of the master, the unit's main process.
    assert notice['MAINPID'] == str(collector.pid)
    assert 'consuming' in notice['STATUS']
    _stop_and_expect_stopping(notify_socket, collector)


def test_collector_not_ready_without_broker(deployment, notify_socket):
    # A port nothing listens on: cotyledon alone would say READY=1 at once.
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    dep = deployment(f'rabbit://guest:guest@127.0.0.1:{port}/')
    dep.run('telemeter-dbsync')
    collector = dep.start('telemeter-collector')
    collector.wait_for_log(r'Connection failed', timeout=60)
    notice = _receive(notify_socket, 8)
    assert notice is None or 'READY' not in notice, notice
    assert collector.alive()
    _stop_and_expect_stopping(notify_socket, collector)


def test_notification_agent_ready_once_consuming(deployment, notify_socket,
                                                 rabbit_admin):
    dep = deployment()
    agent = dep.start('telemeter-agent-notification')
    notice = _wait_for(notify_socket, 'READY', 90, agent)
    assert _consumers(rabbit_admin, f'{dep.notification_topic}.info') >= 1
    assert notice['MAINPID'] == str(agent.pid)
    _stop_and_expect_stopping(notify_socket, agent)


def test_polling_ready_once_scheduled(deployment, notify_socket):
    dep = deployment()
    agent = dep.start('telemeter-polling', '--polling-namespaces', 'compute')
    notice = _wait_for(notify_socket, 'READY', 90, agent)
    assert notice['MAINPID'] == str(agent.pid)
    assert notice['STATUS'].startswith('1 polling task(s)')
    _stop_and_expect_stopping(notify_socket, agent)
