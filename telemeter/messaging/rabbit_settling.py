"""How :class:`~telemeter.messaging.rabbit.RabbitBatchListener` handles a
batch and settles it.

Each body is decoded once (:mod:`.envelope`); what cannot be decoded is
quarantined (:mod:`.triage`). The rest goes through the
:class:`~.dispatch.BatchDispatcher`, whose outcome :class:`~.triage.Triage`
judges. If anything must be requeued the batch is held back first
(:class:`.delivery.Backoff`); then the requeued messages are rejected one
by one and the others acknowledged with one ``basic.ack(multiple=True)``.
Deliveries that were neither handled nor settled are given back to the
broker after an idle spell (:mod:`.settlement`).
"""

from __future__ import annotations

import threading
from typing import Any

import kombu.compression
from oslo_log import log

from telemeter.messaging import (
    delivery,
    dispatch,
    envelope,
    rabbit_consumers,
    settlement,
    triage,
)

#: The listener's logger: what its parts log keeps the name it had.
LOG = log.getLogger('telemeter.messaging.rabbit')


class BatchSettling(rabbit_consumers.ConsumerHealth):
    """Handling a raw batch: decode, dispatch, triage, back off, settle.

    A part of :class:`~telemeter.messaging.rabbit.RabbitBatchListener`,
    which sets these attributes.
    """

    dispatcher: dispatch.BatchDispatcher[Any]
    backoff: delivery.Backoff
    triage: triage.Triage
    settlement: settlement.SettlementWatch
    _stopping: threading.Event

    def _handle(self, raw: list[Any]) -> None:
        batch = []
        poison: list[tuple[Any, str]] = []
        for message in raw:
            try:
                priority, notification = envelope.decode(body_of(message))
            except Exception as err:
                # MalformedMessage, or what a bad compression header makes
                # kombu raise: the same message fails the same way again.
                self.stats.malformed += 1
                LOG.error('Quarantining a malformed message from %s: %s '
                          '(body %.200r)', triage.queue_of(message), err,
                          message.body)
                poison.append((message, f'malformed: {err}'))
                continue
            batch.append((priority, notification, message))
        self.stats.received += len(raw)
        self.stats.batches += 1
        requeue: list[Any] = []
        if batch:
            outcome = self.dispatcher.dispatch(batch)
            self.stats.unhandled += outcome.unhandled
            requeue.extend(outcome.requeue)
            self.triage.judge(outcome, poison, requeue)
            self.triage.keep_copies(self._conn, outcome.rejected, requeue)
        if requeue:
            delay = self.backoff.next_delay()
            LOG.warning('Requeuing %d of %d message(s) in %.1f s',
                        len(requeue), len(raw), delay)
            self._stopping.wait(delay)
        else:
            self.backoff.reset()
        requeue.extend(self.triage.quarantine(self._conn, poison))
        self._settle(raw, requeue)
        self.triage.settled(raw, requeue)

    def _settle(self, raw: list[Any], requeue: list[Any]) -> None:
        """Requeue ``requeue``, then acknowledge every other message of
        ``raw`` with one ``basic.ack(multiple=True)``."""
        try:
            for message in requeue:
                message.channel.basic_reject(message.delivery_tag,
                                             requeue=True)
            self.stats.requeued += len(requeue)
            chosen = {id(m) for m in requeue}
            last = next((m for m in reversed(raw) if id(m) not in chosen),
                        None)
            if last is not None:
                last.channel.basic_ack(last.delivery_tag, multiple=True)
                self.stats.acknowledged += len(raw) - len(requeue)
            self.settlement.settled(raw)
        except Exception as err:
            self.stats.settle_failed += len(raw)
            LOG.warning('Settling a batch of %d message(s) failed (%s); the '
                        'broker will redeliver them', len(raw), err)
            self._restart_consumers(f'settling failed: {err!r}')

    def _release_unsettled(self) -> None:
        """Requeue deliveries of the channel that were neither handled nor
        settled (:mod:`.settlement`); they would stay unacknowledged for the
        life of the connection."""
        conn = self._conn
        if conn is None or not conn.connection.connected:
            return  # a lost connection gives its deliveries back itself
        channel = conn.channel
        if not getattr(channel, 'is_open', False):
            return
        found = self.settlement.unsettled(channel, len(self._received))
        if found is None:
            return
        first, last = found
        LOG.warning('Deliveries %d to %d of this listener\'s channel were '
                    'never settled; asking the broker to deliver them again',
                    first, last)
        try:
            channel.basic_recover(requeue=True)
        except Exception as err:
            LOG.warning('Returning unsettled deliveries failed (%s); they '
                        'go back to their queue when the connection '
                        'closes', err)
            return
        self.stats.released += last - first + 1


def body_of(message: Any) -> bytes | str:
    """The body of a raw AMQP message, decompressed if the sender used
    ``[oslo_messaging_rabbit] kombu_compression``."""
    headers = message.headers or {}
    compression = headers.get('compression')
    if compression:
        return kombu.compression.decompress(message.body, compression)
    return message.body


def notification_of(message: Any) -> envelope.Notification:
    """The notification of a raw AMQP message, decoded afresh (the
    dispatcher's ``reload``)."""
    return envelope.decode(body_of(message))[1]
