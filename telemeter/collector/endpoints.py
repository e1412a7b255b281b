"""Bus endpoints of the collector: verify, then dispatch the whole batch."""

from __future__ import annotations

import time
from typing import Any

import oslo_messaging
from oslo_log import log

from telemeter.dispatcher import errors
from telemeter.publisher import utils

LOG = log.getLogger(__name__)


class CollectorEndpoint:
    """Verifies every dict of a batch and hands the good ones to the
    dispatchers; nothing is acknowledged before it is stored.

    When a dispatcher cannot reach its database or endpoint the whole
    batch is requeued (``REQUEUE``). Any other dispatcher error is raised:
    the listener then splits the batch to isolate the message it fails on
    and quarantines that one (:mod:`telemeter.messaging.dispatch`).

    Counters: ``received`` dicts, ``rejected`` ones (bad signature or
    shape), ``dispatched`` ones every dispatcher took, ``requeued``
    batches and the ``requeued_items`` in them.
    """

    method = 'record_metering_data'
    kind = 'notification'

    def __init__(self, secret: str | None, dispatcher_manager: Any,
                 requeue_delay: float = 0.0) -> None:
        self.secret = secret
        self.dispatcher_manager = dispatcher_manager
        self.requeue_delay = requeue_delay
        self.received = 0
        self.rejected = 0
        self.dispatched = 0
        self.requeued = 0
        self.requeued_items = 0

    def sample(self, messages: list[dict]) -> Any:
        """Handle a batch of ``sample``-priority notifications."""
        goods = []
        for message in messages:
            payload = message.get('payload')
            if not isinstance(payload, list):
                self.received += 1
                self.rejected += 1
                LOG.warning('%s payload is not a list, discarding: %s',
                            self.kind, message)
                continue
            self.received += len(payload)
            for item in payload:
                if (isinstance(item, dict)
                        and utils.verify_signature(item, self.secret)):
                    goods.append(item)
                else:
                    self.rejected += 1
                    LOG.warning('notification signature invalid, '
                                'discarding: %s', item)
        try:
            self.dispatcher_manager.map_method(self.method, goods)
        except Exception as err:
            if not errors.unreachable(err):
                raise
            self.requeued += 1
            self.requeued_items += len(goods)
            LOG.error('Dispatcher failed to handle the notification, '
                      're-queuing it: %s', err)
            # Held (unacknowledged) a moment where the listener does not
            # back off itself: an immediate requeue would be redelivered
            # at once and fail again in a busy loop.
            time.sleep(self.requeue_delay)
            return oslo_messaging.NotificationResult.REQUEUE
        self.dispatched += len(goods)
        return None

    def stats(self) -> dict[str, int]:
        return {'received': self.received, 'rejected': self.rejected,
                'dispatched': self.dispatched, 'requeued': self.requeued,
                'requeued_items': self.requeued_items}


class SampleEndpoint(CollectorEndpoint):
    """Endpoint of the ``metering`` topic."""

    kind = 'sample'


class EventEndpoint(CollectorEndpoint):
    """Endpoint of the ``event`` topic."""

    method = 'record_events'
    kind = 'event'
