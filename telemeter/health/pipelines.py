"""Ledger readings of sample and event pipelines (the agent's, and the
polling agent's none) and the publishers' health.

Per pipeline ``pipeline:<name>``: received (every sample or event the
handlers published: each pipeline sees all of them), filtered (not
selected by the source), dropped (``invalid_volume``). Per sink
``sink:<name>``: sink (direction ``in``: into the transformers; ``out``:
out of them, flushes included), published and publish_failed per
publisher. A ``notifier://`` publisher adds dropped (``policy``: given up
by ``policy=drop`` or beyond ``max_queue_length``) and queued (held in
memory for a retry).

Identities: per pipeline, received = filtered + dropped + sink in (the
code counts received, accepted and dropped, so ``filtered`` is what is
left); per sink and publisher, sink out = published + publish_failed +
unsettled (a publish in progress); for ``notifier://``, published = sent +
queued + dropped(policy). Transformers make and absorb samples, so sink
in and sink out differ by design.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Any

from telemeter.health.checks import Check, last_call
from telemeter.health.ledger import FAMILIES, Labels, Reading, reading


def safe_url(url: str) -> str:
    """A publisher URL without credentials or query (a metric label)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ''
        if ':' in host:
            host = f'[{host}]'
        port = f':{parts.port}' if parts.port else ''
    except ValueError:
        return url.split('://', 1)[0] + '://'
    return f'{parts.scheme}://{host}{port}{parts.path}'


def publisher_labels(urls: list[str]) -> list[str]:
    """:func:`safe_url` of each URL of a sink, ``#2``, ``#3``... added to
    those that would repeat an earlier one (URLs differing in their
    query only)."""
    labels: list[str] = []
    for url in urls:
        label = base = safe_url(url)
        index = 1
        while label in labels:
            index += 1
            label = f'{base}#{index}'
        labels.append(label)
    return labels


def _sinks(pipelines: Iterable[Any]) -> list[Any]:
    sinks: dict[int, Any] = {}
    for pipeline in pipelines:
        sinks.setdefault(id(pipeline.sink), pipeline.sink)
    return list(sinks.values())


def readings(manager: Any, kind: str) -> list[Reading]:
    """Counter readings of every pipeline, sink and publisher of a
    pipeline manager (gauges: :func:`gauges`)."""
    found = []
    for p in manager.pipelines:
        stage = f'pipeline:{p.name}'
        found += [
            reading('received', p.received, stage=stage, kind=kind),
            reading('filtered', p.received - p.accepted - p.invalid,
                    stage=stage, kind=kind),
        ]
        if kind == 'sample':
            found.append(reading('dropped', p.invalid, stage=stage,
                                 kind=kind, reason='invalid_volume'))
    publishers: dict[int, tuple[str, Any]] = {}
    for sink in _sinks(manager.pipelines):
        stage = f'sink:{sink.name}'
        found += [
            reading('sink', sink.received, stage=stage, kind=kind,
                    direction='in'),
            reading('sink', sink.emitted, stage=stage, kind=kind,
                    direction='out'),
        ]
        for label, publisher, outcome in zip(
                publisher_labels(sink.urls), sink.publishers, sink.outcomes,
                strict=True):
            publishers.setdefault(id(publisher), (label, publisher))
            found += [
                reading('published', outcome.published, stage=stage,
                        kind=kind, publisher=label),
                reading('publish_failed', outcome.failed, stage=stage,
                        kind=kind, publisher=label),
            ]
    for label, publisher in publishers.values():
        if hasattr(publisher, 'dropped'):
            found.append(reading('dropped', publisher.dropped,
                                 stage=f'publisher:{label}', kind=kind,
                                 reason='policy'))
    return found


def gauges(manager: Any, kind: str) -> list[Reading]:
    """``queued`` of the publishers that hold data, ``unsettled`` of each
    sink (items out of the transformers not yet accounted for by one of
    its publishers)."""
    found = []
    for sink in _sinks(manager.pipelines):
        stage = f'sink:{sink.name}'
        left = [sink.emitted - o.published - o.failed for o in sink.outcomes]
        found.append(reading('unsettled', max(left, default=0), stage=stage,
                             kind=kind))
        for label, publisher in zip(publisher_labels(sink.urls),
                                    sink.publishers, strict=True):
            queued = getattr(publisher, 'queued', None)
            if callable(queued):
                found.append(reading('queued', queued(), stage=stage,
                                     kind=kind, publisher=label))
    return found


def publisher_checks(manager: Any) -> list[Check]:
    """Fails for a publisher whose last publish raised, or that holds data
    it could not send."""
    results = []
    for sink in _sinks(manager.pipelines):
        for label, publisher, outcome in zip(
                publisher_labels(sink.urls), sink.publishers, sink.outcomes,
                strict=True):
            name = f'publisher:{sink.name}:{label}'
            queued = getattr(publisher, 'queued', None)
            held = queued() if callable(queued) else 0
            failed = last_call(name, outcome, 'publish')
            if failed is not None:
                results.append(failed)
            elif held:
                results.append(Check(name, False, f'{held} item(s) held in '
                                     f'memory: the last sends failed'))
            else:
                results.append(Check(name, True, 'last publish ok'
                                     if outcome.last_ok else
                                     'nothing published yet'))
    return results


class Retired:
    """Counter totals of pipeline managers replaced by a reload, so the
    ledger's counters never go back."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, Labels], float] = {}

    def absorb(self, found: Iterable[Reading]) -> None:
        for item in found:
            if FAMILIES[item.metric].type == 'counter':
                key = (item.metric, item.labels)
                self.totals[key] = self.totals.get(key, 0) + item.value

    def merged(self, current: list[Reading]) -> list[Reading]:
        """``current`` plus the retired totals, one reading per label
        set."""
        sums = dict(self.totals)
        for item in current:
            key = (item.metric, item.labels)
            sums[key] = sums.get(key, 0) + item.value
        return [Reading(metric, labels, value)
                for (metric, labels), value in sums.items()]
