"""What the batch listener does with a message its endpoints failed on.

:class:`~telemeter.messaging.rabbit.RabbitBatchListener` hands a batch to
the dispatcher, which isolates the messages an endpoint raised on
(:class:`~telemeter.messaging.dispatch.Outcome`). :class:`Triage` then
decides, per message:

* alone in failing while the rest of its batch went through: it is the
  message's fault, so it goes to the quarantine queue at once;
* failing with its batch (the next hop may be away): requeued, until it
  has failed ``[delivery] max_deliveries`` deliveries
  (:class:`~telemeter.messaging.delivery.FailedDeliveries`), then
  quarantined;
* rejected by an endpoint (it cannot handle it, and says so): acknowledged,
  with a copy kept in the quarantine queue.

A message that cannot be moved to the quarantine queue is requeued
instead, so nothing is acknowledged without being kept somewhere.
"""

from __future__ import annotations

from typing import Any

from oslo_log import log

from telemeter.messaging import delivery, dispatch, quarantine

LOG = log.getLogger(__name__)

#: (raw AMQP message, why it is set aside)
Poison = tuple[Any, str]


def queue_of(message: Any) -> str:
    """The routing key a raw AMQP message came with (for logs)."""
    info = getattr(message, 'delivery_info', None) or {}
    return info.get('routing_key') or 'the bus'


class Triage:
    """Quarantine or requeue decisions of one listener.

    ``stats`` is the listener's :class:`~telemeter.messaging.rabbit.Stats`
    (``failed_deliveries`` and ``quarantined`` are counted here).
    """

    def __init__(self, policy: delivery.DeliveryPolicy, stats: Any) -> None:
        self.policy = policy
        self.stats = stats
        self.failed_deliveries = delivery.FailedDeliveries()
        self._declared_on: Any = None

    def judge(self, outcome: dispatch.Outcome[Any], poison: list[Poison],
              requeue: list[Any]) -> None:
        """Add what the endpoints raised on to ``poison`` (to quarantine)
        or to ``requeue``."""
        for failure in outcome.failures:
            message = failure.handle
            self.stats.failed_deliveries += 1
            count = self.failed_deliveries.failed(message)
            if failure.alone and outcome.path_works:
                poison.append((message, failure.reason))
            elif count >= self.policy.max_deliveries:
                poison.append((message, f'{failure.reason} (failed '
                                        f'{count} deliveries)'))
            else:
                LOG.warning('A message from %s failed (delivery %d of at '
                            'most %d): %s', queue_of(message), count,
                            self.policy.max_deliveries, failure.reason)
                requeue.append(message)

    def keep_copies(self, conn: Any, rejected: list[Poison],
                    requeue: list[Any]) -> None:
        """Copy what endpoints rejected to the quarantine (once per
        message; not what is requeued anyway). They are acknowledged all
        the same: if the copy fails, they are only logged, as before."""
        if not rejected:
            return
        skip = {id(m) for m in requeue}
        copies: dict[int, tuple[Any, str]] = {}
        for message, reason in rejected:
            if id(message) not in skip:
                copies.setdefault(id(message), (message, reason))
        for message in self.quarantine(conn, list(copies.values()),
                                       'Rejected'):
            LOG.error('Not kept: a message from %s that an endpoint could '
                      'not handle', queue_of(message))

    def quarantine(self, conn: Any, poison: list[Poison],
                   what: str = 'Quarantined') -> list[Any]:
        """Move ``poison`` to the quarantine queue (declared with the
        arguments of ``conn``, the driver's connection); return the
        messages that could not be moved (to be requeued instead)."""
        if not poison:
            return []
        name = self.policy.quarantine_queue
        kept = []
        for message, reason in poison:
            channel = message.channel
            try:
                if self._declared_on is not channel:
                    quarantine.declare(channel, name,
                                       quarantine.queue_arguments(conn))
                    self._declared_on = channel
                ident = quarantine.put(channel, name, message, reason)
            except Exception as err:
                LOG.error('Could not quarantine a message from %s (%s); '
                          'requeuing it', queue_of(message), err)
                kept.append(message)
                continue
            self.stats.quarantined += 1
            LOG.error('%s message %s from %s, kept in queue %s: %s. '
                      'Inspect it with telemeter-quarantine show %s', what,
                      ident, queue_of(message), name, reason, ident)
        return kept

    def settled(self, raw: list[Any], requeue: list[Any]) -> None:
        """Forget the failures of the messages of ``raw`` that were not
        requeued: they will not be delivered again."""
        if self.failed_deliveries:
            chosen = {id(m) for m in requeue}
            self.failed_deliveries.forget(
                [m for m in raw if id(m) not in chosen])
