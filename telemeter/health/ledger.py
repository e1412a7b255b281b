"""The ledger of one daemon worker: what it received, produced, published,
stored, filtered, dropped, quarantined and requeued.

The ledger keeps no counts of its own. Each part of a daemon (a listener,
an endpoint, a pipeline, a dispatcher...) already counts what it does with
plain integer attributes; the ledger holds *sources*, functions that read
those attributes when ``/metrics`` is scraped and return
:class:`Reading` s. Derived sources then compute what follows from the
others (``stored``, ``unsettled``), so the identities of the daemon can be
checked on any scrape (see :mod:`telemeter.health.reconcile`).

Every metric has a ``stage`` label (where in the daemon the count is
taken: ``listener:metering``, ``bus``, ``udp``, ``pipeline:<name>``,
``sink:<name>``, ``dispatcher:<name>``, ``storage:<name>``...) and a
``kind`` label (what is counted: ``message``, ``notification``,
``sample``, ``event``, ``datagram``, ``batch``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Literal

from oslo_log import log

LOG = log.getLogger(__name__)

Labels = tuple[tuple[str, str], ...]
MetricType = Literal['counter', 'gauge']


@dataclasses.dataclass(frozen=True)
class Family:
    """One metric: its type, help text and label names."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ('stage', 'kind')


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family('received', 'counter',
           'Items taken in (deliveries: a redelivered message counts again).'),
    Family('produced', 'counter',
           'Samples or events built by a notification handler.'),
    Family('filtered', 'counter',
           "Items a pipeline source did not select (by name)."),
    Family('sink', 'counter',
           'Samples into a sink\'s transformers (direction=in) and out of '
           'them, flushes included (direction=out).',
           ('stage', 'kind', 'direction')),
    Family('published', 'counter',
           'Items a publisher accepted (returned without error).',
           ('stage', 'kind', 'publisher')),
    Family('publish_failed', 'counter',
           'Items a publisher raised on (given up by the sink).',
           ('stage', 'kind', 'publisher')),
    Family('dispatched', 'counter',
           'Items every dispatcher took (collector).'),
    Family('dispatcher_taken', 'counter',
           'Items in dispatcher calls that returned (collector).'),
    Family('dispatch_failed', 'counter',
           'Items in dispatcher calls that raised (their bus batch is '
           'requeued; a UDP sample is lost).'),
    Family('stored', 'counter',
           'Items a dispatcher took minus those its storage dropped as '
           'unstorable (a redelivered item storage already had counts '
           'again).'),
    Family('dropped', 'counter',
           'Items given up, by reason.', ('stage', 'kind', 'reason')),
    Family('quarantined', 'counter', 'Items set aside as poison.'),
    Family('failed', 'counter',
           'Deliveries whose handling raised (then requeued or '
           'quarantined).'),
    Family('requeued', 'counter', 'Items handed back to the broker.'),
    Family('acknowledged', 'counter',
           'Messages acknowledged to the broker (quarantined ones '
           'included).'),
    Family('settle_failed', 'counter',
           'Messages whose acknowledgement failed (the broker delivers '
           'them again).'),
    Family('released', 'counter',
           'Deliveries a listener held neither handled nor settled, handed '
           'back to the broker (should stay 0: report it).'),
    Family('consumer_restarts', 'counter',
           'Times a listener dropped its connection to start its consumers '
           'again after a failed settle, a cancelled consumer or a closed '
           'channel.'),
    Family('malformed', 'counter',
           'Messages that could not be decoded (quarantined).'),
    Family('batches', 'counter', 'Batches handled by a listener.'),
    Family('queued', 'gauge',
           'Items held in a publisher\'s memory for a later retry.',
           ('stage', 'kind', 'publisher')),
    Family('backlog', 'gauge',
           'Messages waiting in a consumed queue at the last look '
           '([delivery] backlog_check_interval).',
           ('stage', 'kind', 'queue')),
    Family('unsettled', 'gauge',
           'Items received and not yet accounted for: in flight, or '
           'requeued and to be received again. 0 when the daemon is idle '
           'and nothing failed; never negative.'),
    Family('healthy', 'gauge',
           '1 when /healthz answers 200, else 0.', ()),
    Family('check', 'gauge',
           'Each /healthz check: 1 passing, 0 failing.', ('check',)),
)}


@dataclasses.dataclass(frozen=True)
class Reading:
    """One value of one metric with its labels."""

    metric: str
    labels: Labels
    value: float

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, '')


def reading(metric: str, value: float, **labels: str) -> Reading:
    """A :class:`Reading` of ``metric``; its family's labels not given are
    empty."""
    family = FAMILIES[metric]
    unknown = set(labels) - set(family.labels)
    if unknown:
        raise ValueError(f'{metric} has no label {sorted(unknown)}')
    return Reading(metric,
                   tuple((n, str(labels.get(n, ''))) for n in family.labels),
                   value)


Source = Callable[[], Iterable[Reading]]
Derived = Callable[[list[Reading]], Iterable[Reading]]


class Ledger:
    """The counts of one worker process, read on demand."""

    def __init__(self, daemon: str, worker: int = 0) -> None:
        self.daemon = daemon
        self.worker = worker
        self._sources: list[Source] = []
        self._derived: list[Derived] = []

    def add(self, source: Source) -> None:
        """Read ``source`` on every scrape."""
        self._sources.append(source)

    def derive(self, derived: Derived) -> None:
        """Compute more readings from those of the sources."""
        self._derived.append(derived)

    def readings(self) -> list[Reading]:
        """Every reading now. A source that fails is logged and left out;
        the others are still read."""
        found: list[Reading] = []
        for source in self._sources:
            found.extend(_safely(source))
        base = list(found)
        for derived in self._derived:
            found.extend(_safely(lambda d=derived: d(base)))
        return found


def total(readings: Iterable[Reading], metric: str, **labels: str) -> float:
    """Sum of the ``metric`` readings whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(r.value for r in readings
               if r.metric == metric and wanted <= set(r.labels))


def _safely(source: Callable[[], Iterable[Reading]]) -> list[Reading]:
    try:
        return list(source())
    except Exception:
        LOG.exception('Reading the counts of %s failed', source)
        return []
