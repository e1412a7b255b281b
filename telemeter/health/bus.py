"""Counts and checks of the bus listeners, read from the listeners.

:class:`telemeter.messaging.rabbit.RabbitBatchListener` counts per message
(``stats.as_dict()``): ``received`` deliveries (a redelivered message
counts again), ``malformed`` ones (undecodable; quarantined, so also in
``quarantined``), ``requeued`` ones, ``batches``, ``failed_deliveries``
(handling raised: requeued or quarantined), ``quarantined`` (moved to the
quarantine queue), ``acknowledged`` (quarantined ones included),
``settle_failed`` (the broker will deliver them again), ``released``
(delivered but found neither handled nor settled after an idle spell, then
requeued with ``basic.recover``: :mod:`telemeter.messaging.settlement`),
``restarts`` (the consumers restarted on a new connection after a failure
the driver did not see) and ``unhandled`` (no endpoint took them:
acknowledged, counted as dropped).
oslo.messaging's own listener (other drivers) counts nothing and is only
checked for being there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from telemeter.health.checks import Check
from telemeter.health.ledger import Reading, reading

Named = Callable[[], Iterable[tuple[str, Any]]]

# stats key -> (metric, extra labels)
_STATS: dict[str, tuple[str, dict[str, str]]] = {
    'received': ('received', {}),
    'malformed': ('malformed', {}),
    'requeued': ('requeued', {}),
    'quarantined': ('quarantined', {}),
    'failed_deliveries': ('failed', {}),
    'batches': ('batches', {}),
    'acknowledged': ('acknowledged', {}),
    'unhandled': ('dropped', {'reason': 'unhandled'}),
    'settle_failed': ('settle_failed', {}),
    'released': ('released', {}),
    'restarts': ('consumer_restarts', {}),
}


def stats(listener: Any) -> dict[str, int]:
    """A listener's counters ({} if it keeps none)."""
    counters = getattr(listener, 'stats', None)
    as_dict = getattr(counters, 'as_dict', None)
    return dict(as_dict()) if as_dict is not None else {}


def readings(listeners: Named, kind: str) -> Callable[[], list[Reading]]:
    """A ledger source of the ``(name, listener)`` pairs ``listeners``
    returns; ``kind`` is what one message is (``message``,
    ``notification``)."""
    def source() -> list[Reading]:
        found = []
        for name, listener in listeners():
            counts = stats(listener)
            stage = f'listener:{name}'
            for key, (metric, labels) in _STATS.items():
                if key in counts:
                    found.append(reading(metric, counts[key], stage=stage,
                                         kind=kind, **labels))
            depth = getattr(getattr(listener, 'backlog', None), 'depth', {})
            for queue, messages in sorted(depth.items()):
                found.append(reading('backlog', messages, stage=stage,
                                     kind=kind, queue=queue))
            if 'acknowledged' in counts:
                # Every delivery is acknowledged, requeued, given back by
                # a failed settle, or in flight.
                found.append(reading(
                    'unsettled', counts['received'] - counts['acknowledged']
                    - counts.get('requeued', 0)
                    - counts.get('settle_failed', 0), stage=stage,
                    kind=kind))
        return found
    return source


def check(listeners: Named, expected: Callable[[], bool] = lambda: True
          ) -> Callable[[], list[Check]]:
    """A check that every listener consumes: its thread is alive and its
    broker connection is up. With no listener it fails if ``expected()``
    says there should be one."""
    def run() -> list[Check]:
        results = [listener_check(name, listener)
                   for name, listener in listeners()]
        if not results and expected():
            results.append(Check('listener', False, 'not consuming: no bus '
                                 'listener is running'))
        return results
    return run


def listener_check(name: str, listener: Any) -> Check:
    """Whether one listener consumes."""
    label = f'listener:{name}'
    if not hasattr(listener, 'alive'):
        # oslo.messaging's listener: nothing more to look at.
        return Check(label, True, 'running (not inspected)')
    if not listener.alive:
        return Check(label, False, 'not consuming (stopped, or the '
                                   'consumer thread died)')
    if not listener.connected:
        return Check(label, False, 'not connected to the broker '
                                   '(reconnecting)')
    return Check(label, True, 'consuming')
