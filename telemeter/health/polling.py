"""The ledger and checks of a ``telemeter-polling`` worker.

Counts: ``pollster:<name>`` produced (samples polled and sent), and
``notifier`` published (``kind=notification``: ``telemetry.polling``
notifications handed to oslo.messaging's Notifier, which logs delivery
errors instead of raising them, so a failed send is not counted as such).

Identity: Σ produced = the samples inside the notifications published
(``[polling] batch_size`` per notification at most).

``/healthz`` checks that every polling thread is alive; the bus is not
probed (see above).
"""

from __future__ import annotations

from typing import Any

from telemeter.health import checks, ledger
from telemeter.health.ledger import Reading, reading


def watch(manager: Any) -> tuple[ledger.Ledger, checks.Checks]:
    """The ledger and checks of an :class:`~telemeter.polling.manager.
    AgentManager`."""
    book = ledger.Ledger('polling', manager.worker_id)
    book.add(lambda: readings(manager))
    health = checks.Checks()
    health.add(lambda: [threads_check(manager)])
    return book, health


def readings(manager: Any) -> list[Reading]:
    found = [reading('produced', count, stage=f'pollster:{name}',
                     kind='sample')
             for name, count in sorted(manager.produced.items())]
    found.append(reading('published', manager.notifications_sent,
                         stage='notifier', kind='notification',
                         publisher='telemetry.polling'))
    return found


def threads_check(manager: Any) -> checks.Check:
    workers = list(manager._workers)
    if not workers:
        return checks.Check('polling', False, 'no polling thread runs')
    dead = [w.name for w in workers if not w.is_alive()]
    if dead:
        return checks.Check('polling', False,
                            f'polling thread(s) stopped: {", ".join(dead)}')
    return checks.Check('polling', True, f'{len(workers)} polling '
                                         f'thread(s) running')
