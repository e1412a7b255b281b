"""Hands a batch of decoded notifications to batch endpoints.

The rules are those of oslo.messaging's batch notification dispatcher, so
the same endpoints run under either listener: notifications are grouped
by priority; each endpoint with a method of that name receives the group
(minus what its ``filter_rule`` screens out); an endpoint that returns
``REQUEUE`` requeues the whole group, and the endpoints after it do not
see the group.

What differs is an endpoint that *raises*. oslo.messaging requeues the
whole group, so one notification the endpoint can never handle (a sample
the database rejects) sends its batch-mates round with it for ever. Here
the group is split in halves and each half given to the endpoint again,
down to the notifications that fail on their own; everything else goes
on. ``REQUEUE`` stays the way to say "not now, all of it" (the database
is down): that is never split.

Endpoints may change the notifications they are given (the collector's
dispatchers turn timestamps into datetimes in place), so the halves are
made of fresh copies when the caller can give them (``reload``).

An endpoint may also return :class:`Rejected`: it handled its batch but
for some notifications, which it names with the reason. Those are
acknowledged like the rest (other endpoints may have handled them) and a
copy of each is kept in the quarantine for inspection and replay.

An endpoint that cannot reach its next hop and raises instead would be
split to the last notification; to bound that, isolation stops once
:data:`ISOLATION_LIMIT` calls failed while none succeeded, and the rest
of the group is reported as failed together (``alone`` false).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import oslo_messaging
from oslo_log import log

from telemeter.messaging import envelope

LOG = log.getLogger(__name__)

REQUEUE = oslo_messaging.NotificationResult.REQUEUE

#: Failed calls, with no call succeeding, after which isolation gives up.
ISOLATION_LIMIT = 8

#: Whatever the listener needs to settle a message (acknowledge/requeue).
Handle = TypeVar('Handle')

BatchMethod = Callable[[list[envelope.Notification]], Any]
Callback = tuple[Any, BatchMethod]


def _screen(rule: Any, notification: envelope.Notification) -> bool:
    return rule.match(notification['ctxt'], notification['publisher_id'],
                      notification['event_type'], notification['metadata'],
                      notification['payload'])


class Rejected(list[tuple[envelope.Notification, str]]):
    """An endpoint's result: ``(notification, reason)`` of the
    notifications of its batch it could not handle (it handled the
    others)."""


@dataclasses.dataclass
class Failure(Generic[Handle]):
    """A notification an endpoint raised on."""

    handle: Handle
    #: The exception, as ``Class: message``.
    reason: str
    #: Whether it failed on its own, i.e. was isolated from the others.
    alone: bool


@dataclasses.dataclass
class Outcome(Generic[Handle]):
    """What became of one batch; every handle not listed was handled."""

    #: To be requeued as they are: an endpoint answered ``REQUEUE``.
    requeue: list[Handle] = dataclasses.field(default_factory=list)
    #: Notifications an endpoint raised on.
    failures: list[Failure[Handle]] = dataclasses.field(default_factory=list)
    #: ``(handle, reason)`` of notifications an endpoint rejected.
    rejected: list[tuple[Handle, str]] = dataclasses.field(
        default_factory=list)
    #: Notifications no endpoint took (no method for their priority, or
    #: screened out by every filter): acknowledged with nothing to do.
    unhandled: int = 0
    #: Endpoint calls that returned normally.
    succeeded: int = 0
    #: Endpoint calls that raised.
    failed: int = 0

    @property
    def path_works(self) -> bool:
        """Whether some call succeeded, which shows that what failed
        failed because of the notifications themselves."""
        return self.succeeded > 0


class BatchDispatcher(Generic[Handle]):
    """Calls the endpoints' priority methods for one batch at a time."""

    def __init__(self, endpoints: Sequence[Any],
                 reload: Callable[[Handle], envelope.Notification] | None
                 = None) -> None:
        self.endpoints = list(endpoints)
        #: Decodes a handle's notification again, for isolation.
        self.reload = reload
        self.callbacks: dict[str, list[Callback]] = {}
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
                                             Handle]]) -> Outcome[Handle]:
        """Run one batch of ``(priority, notification, handle)``."""
        groups: dict[str, list[tuple[envelope.Notification, Handle]]] = {}
        for priority, notification, handle in batch:
            groups.setdefault(priority, []).append((notification, handle))
        outcome: Outcome[Handle] = Outcome()
        for priority in sorted(groups):
            group = groups[priority]
            taken: set[int] = set()
            self._run(self.callbacks.get(priority, []), 0, group, outcome,
                      taken)
            outcome.unhandled += sum(1 for n, _ in group
                                     if id(n) not in taken)
        return outcome

    def _run(self, callbacks: list[Callback], start: int,
             group: list[tuple[envelope.Notification, Handle]],
             outcome: Outcome[Handle], taken: set[int] | None = None
             ) -> None:
        """Give ``group`` to the endpoints from ``start`` on (adding the
        ids of the notifications some endpoint chose to ``taken``)."""
        for index in range(start, len(callbacks)):
            rule, method = callbacks[index]
            chosen = [n for n, _ in group if rule is None or _screen(rule, n)]
            if not chosen:
                continue
            if taken is not None and len(taken) < len(group):
                taken.update(map(id, chosen))
            try:
                result = method(chosen)
            except Exception as err:
                outcome.failed += 1
                if outcome.failed == 1:
                    LOG.exception('Endpoint %s raised on %d notification(s); '
                                  'isolating the ones it fails on', method,
                                  len(chosen))
                else:
                    LOG.debug('Endpoint %s raised on %d notification(s): %s',
                              method, len(chosen), err)
                self._isolate(callbacks, index, group, err, outcome)
                return
            if result == REQUEUE:
                outcome.requeue.extend(handle for _, handle in group)
                return
            outcome.succeeded += 1
            if isinstance(result, Rejected):
                handles = {id(n): handle for n, handle in group}
                outcome.rejected.extend(
                    (handles[id(n)], reason) for n, reason in result
                    if id(n) in handles)

    def _isolate(self, callbacks: list[Callback], index: int,
                 group: list[tuple[envelope.Notification, Handle]],
                 err: Exception, outcome: Outcome[Handle]) -> None:
        """Endpoint ``index`` raised ``err`` on ``group``: split it."""
        reason = f'{type(err).__name__}: {err}'[:500]
        if len(group) == 1:
            outcome.failures.append(Failure(group[0][1], reason, True))
            return
        middle = len(group) // 2
        for half in (group[:middle], group[middle:]):
            if outcome.failed >= ISOLATION_LIMIT and not outcome.succeeded:
                outcome.failures.extend(Failure(handle, reason, False)
                                        for _, handle in half)
                continue
            if self.reload is not None:
                half = [(self.reload(handle), handle) for _, handle in half]
            self._run(callbacks, index, half, outcome)
