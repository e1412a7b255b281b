"""The collector's UDP receiver: one msgpack-encoded signed sample per
datagram, as sent by the ``udp://`` publisher."""

from __future__ import annotations

import os
import select
import socket
import threading
from typing import Any

import msgpack
from oslo_config import cfg
from oslo_log import log
from oslo_utils import netutils

from telemeter.publisher import utils

LOG = log.getLogger(__name__)

MAX_DATAGRAM = 64 * 1024
SELECT_TIMEOUT = 10.0


class UDPReceiver:
    """Receives datagrams until :meth:`stop`; never dies on bad input."""

    def __init__(self, conf: cfg.ConfigOpts, dispatcher_manager: Any) -> None:
        self.conf = conf
        self.dispatcher_manager = dispatcher_manager
        self.running = threading.Event()
        self.received = 0
        self.undecodable = 0
        self.rejected = 0
        self.failed = 0
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
        sock.bind((address, self.conf.collector.udp_port))
        return sock

    def run(self) -> None:
        """Loop until stopped; wakes at least every 10 s to notice it."""
        self.running.set()
        secret = self.conf.publisher.telemetry_secret
        while self.running.is_set():
            ready, _, _ = select.select([self.socket, self._wake_r], [], [],
                                        SELECT_TIMEOUT)
            if self.socket in ready:
                data, source = self.socket.recvfrom(MAX_DATAGRAM)
                self.handle_datagram(data, source, secret)
        self.socket.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def handle_datagram(self, data: bytes, source: Any,
                        secret: str | None) -> None:
        """Decode, verify and dispatch one datagram."""
        self.received += 1
        try:
            sample = msgpack.unpackb(data, raw=False)
        except Exception:
            self.undecodable += 1
            LOG.warning('UDP: Cannot decode data sent by %s', source)
            return
        if (not isinstance(sample, dict)
                or not utils.verify_signature(sample, secret)):
            self.rejected += 1
            LOG.warning('sample signature invalid, discarding: %s', sample)
            return
        LOG.debug('UDP: Storing %s', sample)
        try:
            self.dispatcher_manager.map_method('record_metering_data', sample)
        except Exception:
            self.failed += 1
            LOG.exception('UDP: Unable to store meter')

    def stop(self) -> None:
        self.running.clear()
        os.write(self._wake_w, b'x')
