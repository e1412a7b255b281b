"""Heartbeat of the polling agent on a unix socket (polling.md §8).

Enabled by ``[polling] heartbeat_socket_dir``. The polling agent's
:class:`HeartbeatReporter` puts ``{'pollster': name, 'timestamp': ts}`` on a
``multiprocessing.Queue`` after each pollster call;
:class:`HeartBeatService` keeps the last timestamp of every pollster and
answers each connection to ``<dir>/telemeter-<namespaces>.socket`` with one
``"<pollster> <timestamp>"`` line per pollster, then closes it.
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_mod
import socket
import threading
from typing import Any, Protocol

import cotyledon
from cotyledon import types as cotyledon_types
from oslo_config import cfg
from oslo_log import log

LOG = log.getLogger(__name__)

POLL_TIMEOUT = 0.5


class HeartBeatException(Exception):
    """The heartbeat socket cannot be created."""


def socket_path(conf: cfg.ConfigOpts, namespaces: list[str]) -> str:
    """``<heartbeat_socket_dir>/telemeter-<sorted namespaces>.socket``."""
    name = 'telemeter-{}.socket'.format('-'.join(sorted(namespaces)))
    return os.path.join(conf.polling.heartbeat_socket_dir, name)


class HeartbeatQueue(Protocol):
    """The queue between the agent and :class:`HeartBeatService` (a
    ``multiprocessing.Queue``); items are ``{'pollster', 'timestamp'}``."""

    def put_nowait(self, obj: Any) -> None:
        """Put an item; raise ``queue.Full`` when full."""
        ...

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take an item; raise ``queue.Empty`` after ``timeout``."""
        ...


class HeartbeatReporter:
    """The polling agent's side: report each pollster call to the queue.

    :param queue: the queue shared with :class:`HeartBeatService`, or None
        (no heartbeat service: reports are dropped)
    """

    def __init__(self, queue: HeartbeatQueue | None = None) -> None:
        self.queue = queue

    def update(self, pollster_name: str, timestamp: str) -> None:
        """Tell the heartbeat service that ``pollster_name`` just polled."""
        if self.queue is None:
            return
        item = {'pollster': pollster_name, 'timestamp': timestamp}
        try:
            self.queue.put_nowait(item)
        except queue_mod.Full:
            LOG.warning('Heartbeat queue full. Update failed: %s', item)


class HeartBeatService(cotyledon.Service):
    """Serves the last polling time of every pollster on a unix socket."""

    name = 'polling-heartbeat'

    def __init__(self, worker_id: int, conf: cfg.ConfigOpts,
                 queue: HeartbeatQueue, namespaces: list[str]) -> None:
        super().__init__(cotyledon_types.WorkerId(worker_id))
        self.conf = conf
        self.queue = queue
        self.path = socket_path(conf, namespaces)
        self.status: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock: socket.socket | None = None

    def _bind(self) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            sock.listen()
        except OSError as err:
            sock.close()
            raise HeartBeatException(
                f'Unable to bind the heartbeat socket {self.path}: {err}'
            ) from err
        sock.settimeout(POLL_TIMEOUT)
        return sock

    def report(self) -> str:
        """The text sent to a client."""
        with self._lock:
            return '\n'.join(f'{name} {ts}'
                             for name, ts in self.status.items())

    def _read_queue(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.queue.get(timeout=POLL_TIMEOUT)
            except queue_mod.Empty:
                continue
            except (EOFError, OSError):
                return
            with self._lock:
                self.status[item['pollster']] = item['timestamp']

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.sendall(self.report().encode('utf-8'))
                except OSError as err:
                    LOG.warning('Heartbeat reply failed: %s', err)

    def run(self) -> None:
        """Bind the socket and start serving (non-blocking)."""
        self._sock = self._bind()
        LOG.info('Polling heartbeat listening on %s', self.path)
        for target, args in ((self._read_queue, ()),
                             (self._serve, (self._sock,))):
            thread = threading.Thread(target=target, args=args, daemon=True)
            self._threads.append(thread)
            thread.start()

    def reload(self) -> None:
        """SIGHUP: keep serving (and keep the pollsters' status).

        cotyledon's default would restart the worker; a new
        ``heartbeat_socket_dir`` needs a restart of the agent anyway.
        """

    def terminate(self) -> None:
        """Stop serving and remove the socket file."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        super().terminate()
