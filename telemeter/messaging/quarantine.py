"""The quarantine queue: bus messages no daemon could handle, kept.

A message goes there unchanged (body, content type, headers) with
``x-quarantine-*`` headers saying why, from which exchange and routing
key, when and by which host. It is published with a broker confirm
before the original is acknowledged, so it is never in neither place.
``telemeter-quarantine`` lists, shows, replays (to where it came from)
and purges what the queue holds.
"""

from __future__ import annotations

import dataclasses
import datetime
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import amqp

PREFIX = 'x-quarantine-'


def queue_arguments(conn: Any) -> dict[str, Any]:
    """A quorum queue when the transport uses quorum queues."""
    if getattr(conn, 'rabbit_quorum_queue', False):
        return {'x-queue-type': 'quorum'}
    return {}


def declare(channel: Any, name: str, arguments: dict[str, Any]) -> None:
    channel.queue_declare(queue=name, durable=True, auto_delete=False,
                          arguments=arguments)


def put(channel: Any, name: str, message: Any, reason: str) -> str:
    """Publish ``message`` (as received) to the quarantine queue ``name``
    on ``channel``; return its quarantine id. The channel must be the
    one ``message`` came on, in confirm mode (the driver's are), so this
    returns only once the broker has the copy."""
    info = getattr(message, 'delivery_info', None) or {}
    ident = uuid.uuid4().hex[:12]
    headers = dict(message.headers or {})
    headers.update({
        PREFIX + 'id': ident,
        PREFIX + 'reason': reason[:1000],
        PREFIX + 'exchange': info.get('exchange') or '',
        PREFIX + 'routing-key': info.get('routing_key') or '',
        PREFIX + 'time': datetime.datetime.now(
            datetime.UTC).isoformat(),
        PREFIX + 'host': socket.gethostname(),
    })
    channel.basic_publish(_message(message, headers), exchange='',
                          routing_key=name)
    return ident


def _message(message: Any, headers: dict[str, Any]) -> amqp.Message:
    properties = {'application_headers': headers, 'delivery_mode': 2}
    for name in ('content_type', 'content_encoding'):
        value = getattr(message, name, None)
        if value:
            properties[name] = value
    return amqp.Message(message.body, **properties)


@dataclasses.dataclass
class Item:
    """One quarantined message, as the inspection commands see it."""

    ident: str
    reason: str
    exchange: str
    routing_key: str
    time: str
    host: str
    body: bytes
    raw: Any

    @classmethod
    def from_message(cls, raw: Any) -> Item:
        headers = raw.headers or {}

        def header(name: str) -> str:
            return str(headers.get(PREFIX + name, ''))
        body = raw.body if isinstance(raw.body, bytes) else (
            str(raw.body).encode())
        return cls(header('id'), header('reason'), header('exchange'),
                   header('routing-key'), header('time'), header('host'),
                   body, raw)


def browse(channel: Any, name: str) -> Iterator[Item]:
    """Every message of the queue, fetched unacknowledged: whatever the
    caller neither acknowledges nor rejects goes back to the queue when
    the channel closes."""
    while True:
        raw = channel.basic_get(queue=name, no_ack=False)
        if raw is None:
            return
        yield Item.from_message(raw)


def replay(channel: Any, item: Item) -> None:
    """Send ``item`` back where it came from (without its quarantine
    headers), then remove it from the quarantine queue."""
    headers = {k: v for k, v in (item.raw.headers or {}).items()
               if not k.startswith(PREFIX)}
    channel.basic_publish(_message(item.raw, headers),
                          exchange=item.exchange,
                          routing_key=item.routing_key)
    channel.basic_ack(item.raw.delivery_tag)


def purge(channel: Any, item: Item) -> None:
    """Remove ``item`` from the quarantine queue for good."""
    channel.basic_ack(item.raw.delivery_tag)
