"""The pre-load: notifications put on the broker before the daemon starts,
and the queues purged and counted around it.

The first message of every (exchange, routing key) goes through
``telemeter.messaging.send_notification``, so the exchange and the queue
are declared exactly as oslo.messaging's driver declares them (durability,
quorum and HA settings of ``[oslo_messaging_rabbit]``); every other
message is published with kombu without a broker confirm each (the same
AMQP body, about ten times faster: 20,000 notifications take ~1 s instead
of ~9 s), and the queue depth is checked afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from telemeter.messaging import envelope
from tools.bench.e2e.errors import BenchError

from .console import say


@dataclasses.dataclass
class WireMessage:
    """One notification to pre-load: where it goes and what it says.

    ``exchange`` None is the transport's control exchange (``telemeter``),
    where the ``notifier://`` publisher sends.
    """

    exchange: str | None
    routing_key: str
    message: dict[str, Any]


def wire_body(message: dict[str, Any]) -> bytes:
    """The AMQP body oslo.messaging's ``messagingv2`` driver (and
    ``telemeter.messaging.rabbit_send.notify``) writes for ``message``: the
    2.0 envelope, with a ``_unique_id`` of its own."""
    wrapped = envelope.wrap(dict(message, _unique_id=uuid.uuid4().hex))
    return json.dumps(wrapped).encode('utf-8')


def amqp_url(transport_url: str) -> str:
    """The kombu URL of an oslo.messaging ``rabbit://`` URL."""
    return transport_url.replace('rabbit://', 'amqp://', 1)


def check_loopback(url: str) -> None:
    """Refuse a broker elsewhere: the bench purges queues."""
    host = urllib.parse.urlsplit(url).hostname or ''
    if host != 'localhost' and not host.startswith('127.') and host != '::1':
        raise BenchError(f'refusing to purge and pre-load queues on '
                         f'{host!r}: the bench only uses a loopback broker')


class Broker:
    """The bench's connections to the broker: the daemons' transport for
    declaring sends, and a kombu connection for the rest."""

    def __init__(self, conf: Any) -> None:
        import kombu
        import oslo_messaging

        from telemeter import messaging
        self.om = oslo_messaging
        self.messaging = messaging
        check_loopback(conf.transport_url)
        self.transport = messaging.get_transport(conf, cache=False)
        self.connection = kombu.Connection(amqp_url(conf.transport_url))
        self.control_exchange = conf.control_exchange

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.release()
        with contextlib.suppress(Exception):
            self.transport.cleanup()

    # -- queues ------------------------------------------------------------

    def _queue_op(self, name: str, op: str) -> tuple[int, int] | None:
        """(ready, consumers) after ``op`` (``declare`` or ``purge``) on
        an existing queue; None when it does not exist."""
        from amqp.exceptions import NotFound
        channel = self.connection.channel()
        try:
            if op == 'purge':
                channel.queue_purge(name)
            _, ready, consumers = channel.queue_declare(name, passive=True)
            return int(ready), int(consumers)
        except NotFound:
            return None
        finally:
            with contextlib.suppress(Exception):
                channel.close()

    def depths(self, queues: Iterable[str]) -> dict[str, tuple[int, int]]:
        """(ready, consumers) of each of ``queues`` that exists."""
        found = {}
        for name in queues:
            state = self._queue_op(name, 'declare')
            if state is not None:
                found[name] = state
        return found

    def ready(self, queues: Iterable[str]) -> int:
        """Messages ready in ``queues``."""
        return sum(r for r, _ in self.depths(queues).values())

    def purge(self, queues: Iterable[str]) -> None:
        """Empty ``queues``; refuse if anything consumes from them (a
        daemon left running would eat the pre-load)."""
        for name in queues:
            state = self._queue_op(name, 'purge')
            if state is not None and state[1]:
                raise BenchError(f'queue {name} has {state[1]} consumer(s) '
                                 f'with the daemon stopped: stop whatever '
                                 f'consumes from it')

    # -- the pre-load --------------------------------------------------------

    def preload(self, messages: Sequence[WireMessage],
                bodies: Sequence[bytes], queues: Sequence[str],
                timeout: float = 60.0) -> float:
        """Publish every message; return the seconds it took until the
        broker held them all in ``queues``."""
        from kombu import Producer
        started = time.monotonic()
        declared: set[tuple[str | None, str]] = set()
        channel = self.connection.channel()
        producer = Producer(channel, auto_declare=False)
        try:
            for wire, body in zip(messages, bodies, strict=True):
                target = (wire.exchange, wire.routing_key)
                if target not in declared:
                    self.messaging.send_notification(
                        self.transport, self.om.Target(
                            exchange=wire.exchange, topic=wire.routing_key),
                        wire.message)
                    declared.add(target)
                    continue
                producer.publish(
                    body, exchange=wire.exchange or self.control_exchange,
                    routing_key=wire.routing_key,
                    content_type='application/json',
                    content_encoding='utf-8')
        finally:
            with contextlib.suppress(Exception):
                channel.close()
        self.wait_ready(queues, len(messages), timeout)
        return time.monotonic() - started

    def wait_ready(self, queues: Sequence[str], expected: int,
                   timeout: float) -> None:
        """Until the broker holds ``expected`` ready messages in
        ``queues`` (publishing is asynchronous)."""
        deadline = time.monotonic() + timeout
        held = self.ready(queues)
        while held < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            held = self.ready(queues)
        if held != expected:
            raise BenchError(f'pre-loaded {expected:,} messages but the '
                             f'broker holds {held:,} in {list(queues)}')
        say(f'broker holds the {expected:,} messages')
