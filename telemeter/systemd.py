"""Readiness and shutdown notices to systemd (``sd_notify``), no dependency.

A ``Type=notify`` unit gets the address of the service manager's datagram
socket in ``$NOTIFY_SOCKET``: a path, or a name in the abstract namespace
written with a leading ``@``. Each notice is one datagram of
``KEY=value`` lines (``READY=1``, ``STOPPING=1``, ``STATUS=...``).

cotyledon sends ``READY=1`` itself as soon as its master process starts,
before any worker has connected to anything, and then removes
``$NOTIFY_SOCKET`` from the environment. :func:`attach` takes the address
away from it first (the master calls it before ``ServiceManager.run()``),
so the forked workers still know where to write and say ``READY=1`` when
they really consume or poll (:func:`ready`), and the master says
``STOPPING=1`` when it begins a graceful shutdown. Workers are not the
unit's main process: the unit needs ``NotifyAccess=all``, and their notices
carry ``MAINPID=`` of the master.

Everything is a no-op when the daemon does not run under systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable
from typing import Any

LOG = logging.getLogger(__name__)

#: The address taken from the environment by :func:`attach`.
_address: str | None = None
#: PID of the process that called :func:`attach` (the cotyledon master).
_main_pid: int | None = None


def address() -> str | None:
    """The notification socket address, or None outside systemd."""
    return _address if _address is not None else (
        os.environ.get('NOTIFY_SOCKET') or None)


def notify(*lines: str) -> bool:
    """Send one datagram made of ``lines`` to the service manager.

    Returns whether it was sent; False when there is no socket or the send
    failed (logged at debug level: systemd's absence is no error).
    """
    target = address()
    if not target or not lines:
        return False
    if target.startswith('@'):
        target = '\0' + target[1:]
    elif not target.startswith('/'):
        LOG.debug('Ignoring NOTIFY_SOCKET %r: not a unix socket', target)
        return False
    payload = '\n'.join(lines).encode('utf-8')
    try:
        with socket.socket(socket.AF_UNIX,
                           socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(payload, target)
    except OSError as err:
        LOG.debug('sd_notify to %s failed: %s', target, err)
        return False
    return True


def _with_main_pid(lines: list[str]) -> list[str]:
    if _main_pid is not None and _main_pid != os.getpid():
        lines.append(f'MAINPID={_main_pid}')
    return lines


def ready(status: str | None = None) -> bool:
    """``READY=1`` (and ``STATUS=``): the daemon does its job now."""
    lines = ['READY=1']
    if status:
        lines.append(f'STATUS={status}')
    return notify(*_with_main_pid(lines))


def stopping(status: str | None = None) -> bool:
    """``STOPPING=1``: a graceful shutdown has begun."""
    lines = ['STOPPING=1']
    if status:
        lines.append(f'STATUS={status}')
    return notify(*lines)


def ready_when(events: Iterable[threading.Event], status: str,
               stop: threading.Event | None = None) -> threading.Thread:
    """Call :func:`ready` from a daemon thread once every event is set.

    Gives up silently if ``stop`` is set first (the worker is terminating).
    The thread is started and returned.
    """
    pending = list(events)

    def _wait() -> None:
        for event in pending:
            while not event.wait(0.5):
                if stop is not None and stop.is_set():
                    return
        if stop is None or not stop.is_set():
            ready(status)

    thread = threading.Thread(target=_wait, name='sd-notify-ready',
                              daemon=True)
    thread.start()
    return thread


def attach(manager: Any) -> None:
    """Take ``$NOTIFY_SOCKET`` for the workers of ``manager`` and have the
    master send ``STOPPING=1`` on SIGTERM.

    ``manager`` is a ``cotyledon.ServiceManager`` not yet running; call
    this in the master process. The variable leaves the environment, so
    cotyledon's own early ``READY=1`` is not sent and the programs the
    daemon runs (ipmitool, ...) do not inherit it.
    """
    global _address, _main_pid
    found = os.environ.pop('NOTIFY_SOCKET', None)
    if found:
        _address = found
    _main_pid = os.getpid()
    manager.register_hooks(on_terminate=_on_terminate)


def _on_terminate() -> None:
    stopping('Stopping: finishing the work in flight')
