"""telemeter.systemd against real AF_UNIX datagram sockets."""

from __future__ import annotations

import os
import socket
import threading
import uuid

import pytest

from telemeter import systemd


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch):
    monkeypatch.delenv('NOTIFY_SOCKET', raising=False)
    monkeypatch.setattr(systemd, '_address', None)
    monkeypatch.setattr(systemd, '_main_pid', None)


@pytest.fixture
def listener(tmp_path, monkeypatch):
    """A bound datagram socket; NOTIFY_SOCKET points at it."""
    path = str(tmp_path / 'notify.sock')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    monkeypatch.setenv('NOTIFY_SOCKET', path)
    yield sock
    sock.close()


def _lines(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split('\n')


def test_nothing_sent_without_socket():
    assert systemd.address() is None
    assert systemd.notify('READY=1') is False
    assert systemd.ready() is False
    assert systemd.stopping() is False


def test_ready_datagram(listener):
    assert systemd.ready('consuming') is True
    assert _lines(listener) == ['READY=1', 'STATUS=consuming']


def test_stopping_datagram(listener):
    assert systemd.stopping() is True
    assert _lines(listener) == ['STOPPING=1']


def test_abstract_namespace_socket(monkeypatch):
    name = f'telemeter-test-{uuid.uuid4().hex}'
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind('\0' + name)
    sock.settimeout(2)
    monkeypatch.setenv('NOTIFY_SOCKET', '@' + name)
    try:
        assert systemd.notify('READY=1', 'STATUS=x') is True
        assert _lines(sock) == ['READY=1', 'STATUS=x']
    finally:
        sock.close()


def test_unreachable_socket_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv('NOTIFY_SOCKET', str(tmp_path / 'absent.sock'))
    assert systemd.ready() is False


def test_non_unix_address_ignored(monkeypatch):
    monkeypatch.setenv('NOTIFY_SOCKET', 'vsock:2:1234')
    assert systemd.ready() is False


class _Manager:
    def __init__(self):
        self.hooks = []

    def register_hooks(self, on_terminate=None, **_kwargs):
        self.hooks.append(on_terminate)


def test_attach_takes_the_socket_and_stops(listener):
    path = os.environ['NOTIFY_SOCKET']
    manager = _Manager()
    systemd.attach(manager)
    # Gone from the environment (cotyledon's own READY=1 is not sent) ...
    assert 'NOTIFY_SOCKET' not in os.environ
    assert systemd.address() == path
    # ... the master's notices carry no MAINPID ...
    assert systemd.ready() is True
    assert _lines(listener) == ['READY=1']
    # ... and the terminate hook says STOPPING=1.
    manager.hooks[0]()
    assert _lines(listener)[0] == 'STOPPING=1'


def test_worker_sends_master_pid(listener, monkeypatch):
    systemd.attach(_Manager())
    # In a forked worker the PID recorded by attach() is the master's.
    monkeypatch.setattr(systemd, '_main_pid', os.getpid() + 1)
    assert systemd.ready('worker') is True
    assert _lines(listener) == ['READY=1', 'STATUS=worker',
                                f'MAINPID={os.getpid() + 1}']


def test_ready_when_waits_for_every_event(listener):
    first, second = threading.Event(), threading.Event()
    thread = systemd.ready_when([first, second], 'consuming')
    first.set()
    listener.settimeout(0.3)
    with pytest.raises(TimeoutError):
        listener.recv(4096)
    second.set()
    listener.settimeout(2)
    assert _lines(listener) == ['READY=1', 'STATUS=consuming']
    thread.join(2)
    assert not thread.is_alive()


def test_ready_when_gives_up_on_stop(listener):
    never, stop = threading.Event(), threading.Event()
    thread = systemd.ready_when([never], 'x', stop=stop)
    stop.set()
    thread.join(3)
    assert not thread.is_alive()
    listener.settimeout(0.2)
    with pytest.raises(TimeoutError):
        listener.recv(4096)
