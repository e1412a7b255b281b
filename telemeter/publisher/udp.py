"""The ``udp://`` publisher: one msgpack datagram per signed sample.

``udp://host[:port]`` (IPv6 literals in brackets) sends to the collector's
UDP receiver; the port defaults to ``[collector] udp_port``. UDP has no
acknowledgement: a datagram the receiver drops is lost, which is why the
collector's receiver drains its socket in a thread of its own.
"""

from __future__ import annotations

import socket
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


def socket_family(host: str) -> int:
    """AF_INET6 if ``host`` resolves as IPv6, else AF_INET."""
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            socket.getaddrinfo(host, None, family, socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError):
            continue
        return family
    LOG.warning('Cannot resolve host %s, creating AF_INET socket...', host)
    return socket.AF_INET


def pack(message: Mapping[str, Any]) -> bytes:
    """msgpack bytes of a signed dict (str values stay str on the wire;
    anything msgpack cannot carry, e.g. a datetime, travels as its str(),
    which is also what the signature was computed over)."""
    return msgpack.packb(message, use_bin_type=True, default=str)


class UDPPublisher(publisher.ConfigPublisherBase):
    """Sends each sample as its own datagram; errors are logged and the
    remaining samples still go out."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url)
        self.host, self.port = netutils.parse_host_port(
            parsed_url.netloc, default_port=conf.collector.udp_port)
        self.socket = socket.socket(socket_family(self.host),
                                    socket.SOCK_DGRAM)

    def publish_samples(self, samples: list[Sample]) -> None:
        secret = self.conf.publisher.telemetry_secret
        for s in samples:
            message = utils.meter_message_from_counter(s, secret)
            LOG.debug('Publishing sample %(msg)s over UDP to '
                      '%(host)s:%(port)d',
                      {'msg': message, 'host': self.host, 'port': self.port})
            try:
                self.socket.sendto(pack(message), (self.host, self.port))
            except Exception:
                LOG.exception('Unable to send sample over UDP')

    def close(self) -> None:
        self.socket.close()

    def publish_events(self, events: list[Event]) -> None:
        raise telemeter.NotImplementedError('The udp publisher does not '
                                            'support events')
