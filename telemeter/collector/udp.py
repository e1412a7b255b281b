"""The collector's UDP receiver: one msgpack-encoded signed sample per
datagram, as sent by the ``udp://`` publisher.

UDP has no flow control, so a datagram that arrives while the socket buffer
is full is lost without trace. Two threads keep that from happening: the
receiving thread only moves datagrams from the socket into memory, the
dispatching thread decodes, verifies and hands them to the dispatchers,
several at a time (``[collector] udp_batch_size``) when they arrive faster
than one by one. Bad datagrams are logged and counted, never fatal.
"""

from __future__ import annotations

import collections
import os
import select
import socket
import threading
import time
from typing import Any

import msgpack
from oslo_config import cfg
from oslo_log import log
from oslo_utils import netutils

from telemeter.publisher import utils

LOG = log.getLogger(__name__)

MAX_DATAGRAM = 64 * 1024
SELECT_TIMEOUT = 10.0
# Asked of the kernel for the socket (capped by net.core.rmem_max).
RECEIVE_BUFFER = 4 * 1024 * 1024
# Datagrams received but not yet dispatched, in bytes; beyond it new
# datagrams are dropped and counted as overflow.
MAX_PENDING_BYTES = 64 * 1024 * 1024
STATS_INTERVAL = 60.0
#: How much of a rejected datagram's content a log line shows.
LOGGED_CHARS = 200
_DRAIN_MAX = 1000

COUNTERS = ('received', 'dispatched', 'undecodable', 'rejected', 'failed',
            'overflow')


class UDPReceiver:
    """Receives datagrams until :meth:`stop`; never dies on bad input.

    Counters (cumulative, also logged every minute when they change and at
    stop): ``received`` datagrams, ``dispatched`` samples handed to every
    dispatcher, ``undecodable`` datagrams, ``rejected`` samples (bad
    signature or not a dict), ``failed`` samples a dispatcher raised on,
    ``overflow`` datagrams dropped because the backlog was full.
    """

    def __init__(self, conf: cfg.ConfigOpts, dispatcher_manager: Any) -> None:
        self.conf = conf
        self.dispatcher_manager = dispatcher_manager
        self.batch_size = conf.collector.udp_batch_size
        self.secret = conf.publisher.telemetry_secret
        self.running = threading.Event()
        for name in COUNTERS:
            setattr(self, name, 0)
        self._pending: collections.deque[tuple[bytes, Any]] = (
            collections.deque())
        self._pending_bytes = 0
        self._cond = threading.Condition()
        self._finishing = False
        self._dispatch_thread: threading.Thread | None = None
        self._last_stats: tuple[int, ...] = (0,) * len(COUNTERS)
        self.socket = self._bind()
        # stop() writes to this pipe so select() wakes at once instead of
        # at its next timeout.
        self._wake_r, self._wake_w = os.pipe()

    def _bind(self) -> socket.socket:
        address = self.conf.collector.udp_address
        family = (socket.AF_INET6 if netutils.is_valid_ipv6(address)
                  else socket.AF_INET)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except (AttributeError, OSError):
            LOG.warning('System does not support socket.SO_REUSEPORT option. '
                        'Only one worker will be able to process incoming '
                        'data.')
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                            RECEIVE_BUFFER)
        except OSError:
            pass
        try:
            sock.bind((address, self.conf.collector.udp_port))
        except OSError as err:
            sock.close()
            raise OSError(
                err.errno,
                f'cannot bind the UDP receiver to {address} port '
                f'{self.conf.collector.udp_port}: {err.strerror}; check '
                f'[collector] udp_address and udp_port (another program '
                f'may hold the port), or set udp_address to an empty value '
                f'to disable UDP') from err
        sock.setblocking(False)
        LOG.info('UDP receiver bound to %s port %d (receive buffer %d '
                 'bytes)', address, self.conf.collector.udp_port,
                 sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        return sock

    def stats(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def log_stats(self, force: bool = False) -> None:
        current = tuple(getattr(self, name) for name in COUNTERS)
        if force or current != self._last_stats:
            self._last_stats = current
            LOG.info('UDP receiver: %(received)d datagrams received, '
                     '%(dispatched)d samples dispatched, %(undecodable)d '
                     'undecodable, %(rejected)d rejected, %(failed)d failed '
                     'to store, %(overflow)d dropped (backlog full)',
                     self.stats())

    def run(self) -> None:
        """Receive until stopped, then dispatch what is left and return.

        ``select`` wakes at least every 10 s, and at once on :meth:`stop`.
        """
        self.running.set()
        self._dispatch_thread = threading.Thread(
            target=self._dispatch_loop, name='udp-dispatcher', daemon=True)
        self._dispatch_thread.start()
        next_stats = time.monotonic() + STATS_INTERVAL
        try:
            while self.running.is_set():
                ready, _, _ = select.select([self.socket, self._wake_r], [],
                                            [], SELECT_TIMEOUT)
                if self.socket in ready:
                    self._drain()
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + STATS_INTERVAL
                    self.log_stats()
        finally:
            self.socket.close()
            with self._cond:
                self._finishing = True
                self._cond.notify()
            self._dispatch_thread.join()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self.log_stats(force=True)

    def _drain(self) -> None:
        """Move every queued datagram from the socket into the backlog."""
        batch = []
        size = 0
        for _ in range(_DRAIN_MAX):
            try:
                data, source = self.socket.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            batch.append((data, source))
            size += len(data)
        if not batch:
            return
        with self._cond:
            self.received += len(batch)
            room = MAX_PENDING_BYTES - self._pending_bytes
            if size > room:
                kept, dropped = self._fit(batch, room)
                self.overflow += dropped
                batch = kept
                LOG.warning('UDP: backlog full, dropped %d datagrams: the '
                            'dispatchers are slower than the incoming '
                            'samples', dropped)
            self._pending.extend(batch)
            self._pending_bytes += sum(len(d) for d, _ in batch)
            self._cond.notify()

    @staticmethod
    def _fit(batch: list[tuple[bytes, Any]], room: int
             ) -> tuple[list[tuple[bytes, Any]], int]:
        kept = []
        for item in batch:
            if len(item[0]) > room:
                break
            room -= len(item[0])
            kept.append(item)
        return kept, len(batch) - len(kept)

    def _dispatch_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._finishing:
                    self._cond.wait()
                if not self._pending:
                    return
                count = min(self.batch_size, len(self._pending))
                taken = [self._pending.popleft() for _ in range(count)]
                self._pending_bytes -= sum(len(d) for d, _ in taken)
            try:
                samples = [s for s in (self.decode(d, src)
                                       for d, src in taken)
                           if s is not None]
                if samples:
                    self.dispatch(samples)
            except Exception:
                # Never let this thread die: the backlog would only grow.
                self.failed += len(taken)
                LOG.exception('UDP: Unable to store meter')

    def decode(self, data: bytes, source: Any) -> dict | None:
        """The verified sample dict of a datagram, or None (logged and
        counted) if it cannot be decoded or its signature is wrong."""
        try:
            sample = msgpack.unpackb(data, raw=False)
        except Exception:
            self.undecodable += 1
            LOG.warning('UDP: Cannot decode data sent by %s', source)
            return None
        try:
            valid = (isinstance(sample, dict)
                     and utils.verify_signature(sample, self.secret))
        except Exception as err:
            # msgpack carries what JSON cannot (bytes keys among str ones,
            # lists nested past the recursion limit): the signature rule
            # raises on those, and the sample cannot be verified.
            LOG.debug('UDP: cannot verify the signature of a datagram from '
                      '%s: %s: %s', source, type(err).__name__, err)
            valid = False
        if not valid:
            self.rejected += 1
            # At most LOGGED_CHARS of what could be a 64 KiB datagram.
            LOG.warning('sample signature invalid, discarding: %s',
                        _shown(sample))
            return None
        LOG.debug('UDP: Storing %s', sample)
        return sample

    def dispatch(self, samples: list[dict]) -> None:
        """Hand ``samples`` to every dispatcher: a single dict on its own,
        several as a list. If a dispatcher fails on a list, each sample is
        retried alone with it, so one bad sample costs only itself."""
        failed: set[int] = set()
        for ext in self.dispatcher_manager:
            try:
                ext.obj.record_metering_data(
                    samples[0] if len(samples) == 1 else samples)
                continue
            except Exception:
                if len(samples) == 1:
                    LOG.exception('UDP: Unable to store meter')
                    failed.add(0)
                    continue
            for index, sample in enumerate(samples):
                try:
                    ext.obj.record_metering_data(sample)
                except Exception:
                    LOG.exception('UDP: Unable to store meter')
                    failed.add(index)
        self.failed += len(failed)
        self.dispatched += len(samples) - len(failed)

    def stop(self) -> None:
        """Make :meth:`run` return (after dispatching the backlog)."""
        self.running.clear()
        os.write(self._wake_w, b'x')


def _shown(sample: Any) -> str:
    """``repr`` of ``sample`` cut at :data:`LOGGED_CHARS`."""
    try:
        text = repr(sample)
    except Exception as err:  # RecursionError of a deeply nested list
        return f'<{type(sample).__name__}: {type(err).__name__}>'
    if len(text) > LOGGED_CHARS:
        return f'{text[:LOGGED_CHARS]}... ({len(text)} characters)'
    return text
