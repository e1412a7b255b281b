"""The ``tcp://`` publisher: length-prefixed msgpack over one connection.

``tcp://host[:port]`` (port 4952 by default) frames each signed sample as an
8-byte little-endian unsigned length followed by the msgpack body. The dict
carries ``publisher_id`` = ``[DEFAULT] host``. A failed send reconnects once
and resends; if that fails too the rest of the batch is abandoned.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgpack
from oslo_config import cfg
from oslo_log import log
from oslo_utils import netutils

import telemeter
from telemeter import publisher
from telemeter.publisher import utils

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

LOG = log.getLogger(__name__)

DEFAULT_PORT = 4952
CONNECT_TIMEOUT = 10.0
_LENGTH = struct.Struct('<Q')


def frame(message: Mapping[str, Any]) -> bytes:
    """Length prefix + msgpack body of one signed dict."""
    body = msgpack.packb(message, use_bin_type=True, default=str)
    return _LENGTH.pack(len(body)) + body


class TCPPublisher(publisher.ConfigPublisherBase):
    """Keeps one connection to the receiver and reconnects on failure."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url)
        self.host, self.port = netutils.parse_host_port(
            parsed_url.netloc, default_port=DEFAULT_PORT)
        self.socket: socket.socket | None = None
        # Pipelines publish from several threads; frames must not
        # interleave on the one connection.
        self._lock = threading.Lock()
        self.connect_socket()

    def connect_socket(self) -> bool:
        """(Re)connect; log why it failed and leave the socket unset."""
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port),
                                            timeout=CONNECT_TIMEOUT)
        except socket.gaierror:
            LOG.error('Unable to resolv the remote %(host)s',
                      {'host': self.host})
        except TimeoutError:
            LOG.error('Unable to connect to the remote endpoint '
                      '%(host)s:%(port)d. The connection timed out.',
                      {'host': self.host, 'port': self.port})
        except ConnectionRefusedError:
            LOG.error('Unable to connect to the remote endpoint '
                      '%(host)s:%(port)d. Connection refused.',
                      {'host': self.host, 'port': self.port})
        except OSError as err:
            LOG.error('Unable to connect to the remote endpoint '
                      '%(host)s:%(port)d: %(err)s',
                      {'host': self.host, 'port': self.port, 'err': err})
        else:
            # Blocking sends from now on: the timeout only bounds connect.
            sock.settimeout(None)
            self.socket = sock
            return True
        return False

    def close(self) -> None:
        if self.socket is not None:
            try:
                self.socket.close()
            except OSError:
                pass
            self.socket = None

    def _peer_closed(self) -> bool:
        """True if the receiver closed the connection (a send into it
        would be accepted by the kernel and then lost)."""
        if self.socket is None:
            return True
        try:
            data = self.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return data == b''

    def publish_samples(self, samples: list[Sample]) -> None:
        with self._lock:
            self._publish(samples)

    def _publish(self, samples: list[Any]) -> None:
        secret = self.conf.publisher.telemetry_secret
        if self.socket is not None and self._peer_closed():
            LOG.warning('The TCP receiver %(host)s:%(port)d closed the '
                        'connection, reconnecting',
                        {'host': self.host, 'port': self.port})
            self.close()
        for s in samples:
            message = utils.meter_message_from_counter(s, secret,
                                                       self.conf.host)
            LOG.debug('Publishing sample %(msg)s over TCP to '
                      '%(host)s:%(port)d',
                      {'msg': message, 'host': self.host, 'port': self.port})
            data = frame(message)
            if self.socket is not None:
                try:
                    self.socket.sendall(data)
                    continue
                except OSError:
                    LOG.warning('Unable to send sample over TCP, trying to '
                                'reconnect and resend the message')
            try:
                if not self.connect_socket() or self.socket is None:
                    raise ConnectionError('not connected')
                self.socket.sendall(data)
            except OSError:
                LOG.error('Unable to reconnect and resend sample over TCP')
                self.close()
                return

    def publish_events(self, events: list[Event]) -> None:
        raise telemeter.NotImplementedError('The tcp publisher does not '
                                            'support events')
