"""The ledger and checks of a ``telemeter-collector`` worker.

Counts, per ``kind`` (``sample`` / ``event``):

* ``listener:<kind>`` (messages, :mod:`.bus`): received,
  acknowledged, requeued, quarantined (malformed included), batches;
* ``bus`` (the items inside the messages, the endpoints' ``stats()``):
  received, dropped (``signature``: bad signature or shape), dispatched
  (every dispatcher took them), requeued (``kind=batch``: batches);
* ``udp`` (samples, the receiver's ``stats()``): received, dropped
  (``undecodable``, ``signature``, ``overflow``, ``dispatch_failed``),
  dispatched;
* ``dispatcher:<name>`` (:mod:`.storage`): dispatcher_taken,
  dispatch_failed, stored; ``storage:<name>``: dropped (``unstorable``).

Identities (:func:`unsettled` computes the first two on every scrape):

* bus, per kind: received = dropped + dispatched + quarantined + unsettled,
  where unsettled is what is in flight plus the items of deliveries that
  failed (requeued, received again when redelivered, or quarantined as
  whole messages: ``quarantined`` of ``listener:<kind>``); 0 when idle and
  nothing failed;
* udp: received = dropped + dispatched + unsettled (the backlog);
* per dispatcher: dispatcher_taken = stored + dropped(storage);
  with one dispatcher, dispatcher_taken = dispatched(bus) + dispatched(udp).
"""

from __future__ import annotations

from typing import Any

from telemeter.health import bus, checks, ledger, storage
from telemeter.health.ledger import Reading, reading, total

_ENDPOINT = {
    'received': ('received', {}),
    'rejected': ('dropped', {'reason': 'signature'}),
    'dispatched': ('dispatched', {}),
    'quarantined': ('quarantined', {}),
}
_UDP = {
    'received': ('received', {}),
    'undecodable': ('dropped', {'reason': 'undecodable'}),
    'rejected': ('dropped', {'reason': 'signature'}),
    'overflow': ('dropped', {'reason': 'overflow'}),
    'failed': ('dropped', {'reason': 'dispatch_failed'}),
    'dispatched': ('dispatched', {}),
}


def watch(service: Any, conf: Any) -> tuple[ledger.Ledger, checks.Checks]:
    """The ledger and checks of a :class:`~telemeter.collector.service.
    CollectorService` (its dispatchers are counted from now on)."""
    dispatchers = (storage.count(service.meter_manager, 'sample')
                   + storage.count(service.event_manager, 'event'))
    book = ledger.Ledger('collector', service.worker_id)

    def listeners() -> list[tuple[str, Any]]:
        return [(e.kind, listener) for e, listener
                in zip(service.endpoints, service.listeners, strict=False)]

    book.add(bus.readings(listeners, 'message'))
    book.add(lambda: endpoint_readings(service.endpoints))
    book.add(lambda: udp_readings(service.udp_receiver))
    book.add(lambda: storage.readings(dispatchers))
    book.derive(unsettled)

    health = checks.Checks()
    health.add(bus.check(listeners,
                         expected=lambda: bool(service.endpoints)))
    health.add(lambda: _udp_check(service))
    for d in dispatchers:
        health.add(checks.TimedProbe(f'storage:{d.name}:{d.kind}',
                                     lambda d=d: storage.ping(d),
                                     conf.health.probe_timeout))
        health.add(lambda d=d: [storage.last_write(d)])
    return book, health


def endpoint_readings(endpoints: list[Any]) -> list[Reading]:
    found = []
    for endpoint in endpoints:
        counts = endpoint.stats()
        for key, (metric, labels) in _ENDPOINT.items():
            if key in counts:
                found.append(reading(metric, counts[key], stage='bus',
                                     kind=endpoint.kind, **labels))
        found.append(reading('requeued', counts.get('requeued', 0),
                             stage='bus', kind='batch'))
        if 'requeued_items' in counts:
            found.append(reading('requeued', counts['requeued_items'],
                                 stage='bus', kind=endpoint.kind))
    return found


def udp_readings(receiver: Any) -> list[Reading]:
    if receiver is None:
        return []
    counts = receiver.stats()
    return [reading(metric, counts[key], stage='udp', kind='sample',
                    **labels)
            for key, (metric, labels) in _UDP.items() if key in counts]


def unsettled(found: list[Reading]) -> list[Reading]:
    """What the bus and UDP received and did not yet account for."""
    result = []
    for kind in sorted({r.label('kind') for r in found
                        if r.label('stage') == 'bus'} - {'batch'}):
        left = total(found, 'received', stage='bus', kind=kind)
        for metric in ('dropped', 'dispatched', 'quarantined', 'requeued'):
            left -= total(found, metric, stage='bus', kind=kind)
        result.append(reading('unsettled', left, stage='bus', kind=kind))
    if any(r.label('stage') == 'udp' for r in found):
        left = total(found, 'received', stage='udp')
        for metric in ('dropped', 'dispatched'):
            left -= total(found, metric, stage='udp')
        result.append(reading('unsettled', left, stage='udp', kind='sample'))
    return result


def _udp_check(service: Any) -> list[checks.Check]:
    thread = service.udp_thread
    if thread is None:
        return []
    if thread.is_alive():
        return [checks.Check('udp', True, 'receiving')]
    return [checks.Check('udp', False, 'the UDP receiver has stopped')]
