"""Consuming queues and exchanges that someone else declared otherwise.

telemeter declares its queues and exchanges durable by default; an
OpenStack service left on oslo.messaging's default declares the same
``notifications.<priority>`` queue and its exchange transient. RabbitMQ
refuses to declare an existing queue or exchange with another durability
(``PRECONDITION_FAILED - inequivalent arg 'durable'``), and
oslo.messaging's own fallback redeclares both transient, which fails in
turn when the exchange is durable: the worker died and was forked again
for ever.

:func:`adopt_existing` asks the broker first, on a scratch channel, and
takes the durability each one already has, with a warning that says what
to set on which side. What does not exist yet is declared as configured.

:func:`topic_consumer` builds the consumer the batch listener declares:
the driver's own, with this adoption, handing raw AMQP messages on.
"""

from __future__ import annotations

import re
from typing import Any

import amqp.exceptions
import kombu
from oslo_log import log
from oslo_messaging._drivers import impl_rabbit

LOG = log.getLogger(__name__)

_MISMATCH = re.compile(
    r"inequivalent arg 'durable' for (exchange|queue) '([^']*)' in vhost "
    r"'[^']*': received '(?:true|false)' but current is '(true|false)'")


def adopt_existing(consumer: Any, connection: Any) -> None:
    """Make ``consumer`` (an oslo.messaging ``impl_rabbit.Consumer``)
    declare its exchange and queue with the durability they have on the
    broker, if they exist with another one; ``connection`` is the kombu
    connection."""
    exchange = consumer.exchange
    current = _existing_durability(connection, 'exchange', lambda ch: (
        ch.exchange_declare(exchange=consumer.exchange_name,
                            type=consumer.type, durable=exchange.durable,
                            auto_delete=exchange.auto_delete)))
    if current is not None:
        consumer.exchange = kombu.entity.Exchange(
            name=consumer.exchange_name, type=consumer.type,
            durable=current, auto_delete=exchange.auto_delete)
        _warn('exchange', consumer.exchange_name, current)
    current = _existing_durability(connection, 'queue', lambda ch: (
        ch.queue_declare(queue=consumer.queue_name, durable=consumer.durable,
                         auto_delete=consumer.queue_auto_delete,
                         arguments=consumer.queue_arguments)))
    if current is not None:
        consumer.durable = current
        _warn('queue', consumer.queue_name, current)


def _existing_durability(connection: Any, kind: str, declare: Any
                         ) -> bool | None:
    """None when ``declare`` (on a channel of its own) succeeds, else the
    durability the broker says the existing entity has."""
    channel = connection.channel()
    try:
        declare(channel)
    except amqp.exceptions.PreconditionFailed as err:
        found = _MISMATCH.search(str(err))
        if found is None or found.group(1) != kind:
            return None  # another difference: the declaration reports it
        return found.group(3) == 'true'
    finally:
        try:
            channel.close()
        except Exception:
            LOG.debug('Closing a scratch channel failed', exc_info=True)
    return None


def _warn(kind: str, name: str, durable: bool) -> None:
    if durable:
        LOG.warning('The %(kind)s %(name)s already exists durable: consuming '
                    'it as it is. Set [oslo_messaging_rabbit] '
                    'amqp_durable_queues = true here too.',
                    {'kind': kind, 'name': name})
        return
    LOG.warning('The %(kind)s %(name)s already exists transient (declared '
                'by a service with [oslo_messaging_rabbit] '
                'amqp_durable_queues = false): consuming it as it is, and '
                'what it holds is lost if the broker restarts. Set '
                'amqp_durable_queues = true on the services that send to '
                'it, then delete it once (README, "Delivery").',
                {'kind': kind, 'name': name})


class _RawConsumer(impl_rabbit.Consumer):
    """The driver's consumer (same declarations), handing the raw AMQP
    message to the listener instead of decoding it on the way."""

    def __init__(self, sink: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sink = sink

    def _callback(self, message: Any) -> None:
        self.sink(message)

    def declare(self, conn: Any) -> None:
        """Declare as the driver does, with the durability the exchange
        and queue already have if someone declared them otherwise."""
        adopt_existing(self, conn.connection)
        super().declare(conn)


def topic_consumer(conn: impl_rabbit.Connection, sink: Any,
                   exchange_name: str, topic: str,
                   queue_name: str | None = None) -> _RawConsumer:
    """What ``Connection.declare_topic_consumer`` builds, feeding ``sink``.

    The arguments are the driver's, read from the connection, so queue
    durability, quorum and HA settings follow ``[oslo_messaging_rabbit]``.
    """
    return _RawConsumer(
        sink,
        exchange_name=exchange_name,
        queue_name=queue_name or topic,
        routing_key=topic,
        type='topic',
        durable=conn.durable,
        exchange_auto_delete=conn.amqp_auto_delete,
        queue_auto_delete=conn.amqp_auto_delete,
        callback=None,
        rabbit_ha_queues=conn.rabbit_ha_queues,
        enable_cancel_on_failover=conn.enable_cancel_on_failover,
        rabbit_quorum_queue=conn.rabbit_quorum_queue,
        rabbit_quorum_queue_config=conn.rabbit_quorum_queue_config)
