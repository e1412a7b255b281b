"""How often a failing message is delivered again, and how soon.

A message that an endpoint raises on is requeued and counted; after
``[delivery] max_deliveries`` failed deliveries (or at once, when it was
isolated from batch-mates that went through, which shows the next hop
works) it is moved to the quarantine queue (:mod:`.quarantine`). Requeued
messages are held back for a growing delay first, so that an outage does
not turn into a busy redelivery loop.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from oslo_config import cfg

OPTS = [
    cfg.IntOpt('max_deliveries',
               default=5,
               min=1,
               help='Deliveries of a bus message that a daemon fails to '
                    'handle (an error other than its next hop being '
                    'unreachable) before it is moved to the quarantine '
                    'queue. A message that fails while the rest of its '
                    'batch is handled is quarantined at once. See '
                    'telemeter-quarantine.'),
    cfg.FloatOpt('requeue_backoff',
                 default=0.5,
                 min=0,
                 help='Seconds a batch that must be requeued is held '
                      '(unacknowledged) before it is requeued; doubled for '
                      'each consecutive batch that is requeued, up to '
                      'requeue_backoff_max.'),
    cfg.FloatOpt('requeue_backoff_max',
                 default=10.0,
                 min=0,
                 help='Longest hold before a requeue, in seconds.'),
    cfg.StrOpt('quarantine_queue',
               default='telemeter.quarantine',
               help='Durable queue, on the default exchange of the '
                    'transport, that receives the messages no daemon could '
                    'handle, unchanged, with the reason in their headers.'),
    cfg.StrOpt('dead_letter_queue',
               default='telemeter.dead-letter',
               help='Quorum queue, on the default exchange, where RabbitMQ '
                    'puts a message of a telemeter queue delivered more '
                    'than broker_delivery_limit times (only once the '
                    'policy printed by "telemeter-quarantine policy" is '
                    'set). Inspect and replay it with "telemeter-'
                    'quarantine --dead-letter".'),
    cfg.IntOpt('broker_delivery_limit',
               default=20,
               min=1,
               help='The delivery-limit of that policy: deliveries of one '
                    'message after which RabbitMQ dead-letters it from a '
                    'quorum queue. A safety net for what the daemons cannot '
                    'count (a message that kills the consumer, a failure '
                    'alone in its batch that keeps being requeued), so it '
                    'should be above max_deliveries.'),
    cfg.FloatOpt('backlog_check_interval',
                 default=30,
                 min=0,
                 help='Seconds between two looks at how many messages wait '
                      'in each queue a worker consumes (RabbitMQ; 0: '
                      'never). The depth is the "backlog" gauge of '
                      '/metrics, and a queue that holds more than '
                      'backlog_warning messages and more than at the '
                      'previous look is logged as falling behind.'),
    cfg.IntOpt('backlog_warning',
               default=10000,
               min=1,
               help='Messages waiting in a consumed queue above which a '
                    'growing backlog is logged as a warning.'),
]

GROUP = 'delivery'


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)


@dataclasses.dataclass(frozen=True)
class DeliveryPolicy:
    """The ``[delivery]`` options a listener applies."""

    max_deliveries: int = 5
    requeue_backoff: float = 0.5
    requeue_backoff_max: float = 10.0
    quarantine_queue: str = 'telemeter.quarantine'
    backlog_check_interval: float = 0.0
    backlog_warning: int = 10000

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> DeliveryPolicy:
        register_opts(conf)
        group = conf[GROUP]
        return cls(group.max_deliveries, group.requeue_backoff,
                   group.requeue_backoff_max, group.quarantine_queue,
                   group.backlog_check_interval, group.backlog_warning)


class Backoff:
    """The hold before requeuing: grows while batches keep failing."""

    def __init__(self, policy: DeliveryPolicy) -> None:
        self.policy = policy
        self.streak = 0

    def next_delay(self) -> float:
        """The hold for one more requeued batch."""
        self.streak += 1
        delay = self.policy.requeue_backoff * 2 ** min(self.streak - 1, 16)
        return min(delay, self.policy.requeue_backoff_max)

    def reset(self) -> None:
        """A batch went through without a requeue."""
        self.streak = 0


class FailedDeliveries:
    """Failed deliveries per message, remembered for the most recent
    :attr:`LIMIT` failing messages.

    A message is known by its queue and body. RabbitMQ's quorum queues
    count deliveries themselves (``x-delivery-count``); the larger count
    wins, so a restarted daemon does not start a quorum queue's message
    from zero.
    """

    LIMIT = 10000

    def __init__(self) -> None:
        self._counts: collections.OrderedDict[Any, int] = (
            collections.OrderedDict())

    @staticmethod
    def key(message: Any) -> Any:
        info = getattr(message, 'delivery_info', None) or {}
        return info.get('routing_key'), hash(message.body)

    def failed(self, message: Any) -> int:
        """Count one more failed delivery of ``message``; return the
        number of failed deliveries so far."""
        key = self.key(message)
        count = self._counts.pop(key, 0) + 1
        headers = getattr(message, 'headers', None) or {}
        previous = headers.get('x-delivery-count')
        if isinstance(previous, int):
            count = max(count, previous + 1)
        self._counts[key] = count
        if len(self._counts) > self.LIMIT:
            self._counts.popitem(last=False)
        return count

    def forget(self, messages: list[Any]) -> None:
        """Messages that were handled (or quarantined)."""
        if self._counts:
            for message in messages:
                self._counts.pop(self.key(message), None)

    def __len__(self) -> int:
        return len(self._counts)
