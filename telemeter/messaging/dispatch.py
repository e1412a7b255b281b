"""Hands a batch of decoded notifications to batch endpoints.

The rules are those of oslo.messaging's batch notification dispatcher, so
the same endpoints run under either listener: notifications are grouped
by priority; each endpoint with a method of that name receives the group
(minus what its ``filter_rule`` screens out); an endpoint that returns
``REQUEUE`` or raises requeues the whole group, and the endpoints after it
do not see the group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import oslo_messaging
from oslo_log import log

from telemeter.messaging import envelope

LOG = log.getLogger(__name__)

REQUEUE = oslo_messaging.NotificationResult.REQUEUE

#: Whatever the listener needs to settle a message (acknowledge/requeue).
Handle = TypeVar('Handle')

BatchMethod = Callable[[list[envelope.Notification]], Any]


def _screen(rule: Any, notification: envelope.Notification) -> bool:
    return rule.match(notification['ctxt'], notification['publisher_id'],
                      notification['event_type'], notification['metadata'],
                      notification['payload'])


class BatchDispatcher(Generic[Handle]):
    """Calls the endpoints' priority methods for one batch at a time."""

    def __init__(self, endpoints: Sequence[Any]) -> None:
        self.endpoints = list(endpoints)
        self.callbacks: dict[str, list[tuple[Any, BatchMethod]]] = {}
        for endpoint in endpoints:
            rule = getattr(endpoint, 'filter_rule', None)
            for priority in sorted(envelope.PRIORITIES):
                method = getattr(endpoint, priority, None)
                if method is not None:
                    self.callbacks.setdefault(priority, []).append(
                        (rule, method))

    @property
    def priorities(self) -> list[str]:
        """The priorities some endpoint handles."""
        return sorted(self.callbacks)

    def dispatch(self, batch: Sequence[tuple[str, envelope.Notification,
                                             Handle]]) -> list[Handle]:
        """Run one batch of ``(priority, notification, handle)``; return
        the handles to requeue."""
        groups: dict[str, tuple[list[envelope.Notification],
                                list[Handle]]] = {}
        for priority, notification, handle in batch:
            notifications, handles = groups.setdefault(priority, ([], []))
            notifications.append(notification)
            handles.append(handle)
        requeue: list[Handle] = []
        for priority in sorted(groups):
            notifications, handles = groups[priority]
            for rule, method in self.callbacks.get(priority, ()):
                chosen = (notifications if rule is None else
                          [n for n in notifications if _screen(rule, n)])
                if not chosen:
                    continue
                try:
                    result = method(chosen)
                except Exception:
                    LOG.exception('Endpoint %s raised; requeuing its %d '
                                  'notification(s)', method, len(chosen))
                    result = REQUEUE
                if result == REQUEUE:
                    requeue.extend(handles)
                    break
        return requeue
