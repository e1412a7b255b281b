"""The quarantine queue: bus messages no daemon could handle, kept.

A message goes there unchanged (body, content type, headers) with
``x-quarantine-*`` headers saying why, from which exchange and routing
key, when and by which host. It is published with a broker confirm
before the original is acknowledged, so it is never in neither place.
``telemeter-quarantine`` lists, shows, replays (to where it came from)
and purges what the queue holds.

On quorum queues RabbitMQ can also count deliveries itself: with the
policy of :func:`dead_letter_policy` (``telemeter-quarantine policy``
prints the ``rabbitmqctl set_policy`` line) a message delivered more than
``[delivery] broker_delivery_limit`` times is dead-lettered to ``[delivery]
dead_letter_queue``, and ``telemeter-quarantine --dead-letter`` lists,
shows, replays and purges it like a quarantined one.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import amqp
from oslo_config import cfg

PREFIX = 'x-quarantine-'
#: Headers RabbitMQ adds when it dead-letters or redelivers a message.
BROKER_HEADERS = ('x-death', 'x-first-death-exchange',
                  'x-first-death-queue', 'x-first-death-reason',
                  'x-last-death-exchange', 'x-last-death-queue',
                  'x-last-death-reason', 'x-delivery-count')


def queue_arguments(conn: Any) -> dict[str, Any]:
    """A quorum queue when the transport uses quorum queues."""
    if getattr(conn, 'rabbit_quorum_queue', False):
        return {'x-queue-type': 'quorum'}
    return {}


def queue_pattern(conf: Any) -> str:
    """A regular expression of every queue telemeter consumes on the
    transport: ``<topic>.<priority>`` of the notification topics, the
    metering and event topics, and the ``telemeter-pipe-*`` queues."""
    topics = list(conf.oslo_messaging_notifications.topics)
    for group, name in (('publisher_notifier', 'metering_topic'),
                        ('publisher_notifier', 'event_topic')):
        try:
            topics.append(conf[group][name])
        except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
            continue
    names = '|'.join(re.escape(t) for t in dict.fromkeys(topics))
    return rf'^(({names})\.[a-z]+|telemeter-pipe-.+)$'


def dead_letter_policy(conf: Any) -> tuple[str, dict[str, Any]]:
    """(pattern, definition) of the RabbitMQ policy that makes the broker
    dead-letter a message of telemeter's quorum queues after
    ``[delivery] broker_delivery_limit`` deliveries into ``[delivery]
    dead_letter_queue`` (default exchange)."""
    group = conf.delivery
    return queue_pattern(conf), {
        'delivery-limit': group.broker_delivery_limit,
        'dead-letter-exchange': '',
        'dead-letter-routing-key': group.dead_letter_queue}


def set_policy_command(conf: Any, name: str = 'telemeter-dead-letter',
                       vhost: str = '/') -> list[str]:
    """The ``rabbitmqctl set_policy`` arguments of :func:`dead_letter_policy`
    (a policy, since the queues' arguments must stay those every service
    declares them with). ``--apply-to queues``: RabbitMQ 3.10 (Debian 12)
    knows no ``quorum_queues``; classic queues ignore ``delivery-limit``."""
    pattern, definition = dead_letter_policy(conf)
    return ['set_policy', '-p', vhost, '--apply-to', 'queues', name,
            pattern, json.dumps(definition, sort_keys=True)]


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
        body = raw.body if isinstance(raw.body, bytes) else (
            str(raw.body).encode())
        if PREFIX + 'id' not in headers and headers.get('x-death'):
            return cls.from_dead_letter(raw, headers, body)

        def header(name: str) -> str:
            return str(headers.get(PREFIX + name, ''))
        return cls(header('id'), header('reason'), header('exchange'),
                   header('routing-key'), header('time'), header('host'),
                   body, raw)

    @classmethod
    def from_dead_letter(cls, raw: Any, headers: dict[str, Any],
                         body: bytes) -> Item:
        """A message RabbitMQ dead-lettered: origin and reason from its
        first ``x-death`` entry; the id is a digest of the body (stable
        across listings)."""
        death = headers['x-death'][0]
        keys = death.get('routing-keys') or ['']
        when = death.get('time')
        if isinstance(when, datetime.datetime):
            when = when.isoformat()
        ident = hashlib.sha1(body, usedforsecurity=False).hexdigest()[:12]
        reason = (f"dead-lettered by the broker: {death.get('reason')} "
                  f"from queue {death.get('queue')} "
                  f"(count {death.get('count')})")
        return cls(ident, reason, str(death.get('exchange') or ''),
                   str(keys[0]), str(when or ''), 'broker', body, raw)


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
               if not k.startswith(PREFIX) and k not in BROKER_HEADERS}
    channel.basic_publish(_message(item.raw, headers),
                          exchange=item.exchange,
                          routing_key=item.routing_key)
    channel.basic_ack(item.raw.delivery_tag)


def purge(channel: Any, item: Item) -> None:
    """Remove ``item`` from the quarantine queue for good."""
    channel.basic_ack(item.raw.delivery_tag)
