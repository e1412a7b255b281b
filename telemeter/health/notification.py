"""The ledger and checks of a ``telemeter-agent-notification`` worker.

Counts:

* ``listener:<n>`` (notifications, :mod:`.bus`; ``listener:pipe`` for the
  workload-partitioning queues, whose counts restart when queues move):
  received, acknowledged, requeued, quarantined (malformed included),
  batches;
* ``handler:<class>``: produced (samples or events handed to the
  pipelines), dropped (``handler_error``: notifications that could not be
  processed; for the events handler also events whose publishing failed
  with ``ack_on_event_error``);
* pipelines, sinks and publishers: :mod:`.pipelines` (they survive a
  SIGHUP reload: the replaced pipelines' counts are kept).

Identities: per listener, received = acknowledged + requeued + unsettled
(computed when the listener counts ``acknowledged``); per pipeline,
received = Σ produced of the handlers of its kind (each pipeline sees
every sample) = filtered + dropped + sink in; per sink and publisher,
sink out = published + publish_failed (+ a publish in progress).
"""

from __future__ import annotations

from typing import Any

from telemeter.health import bus, checks, ledger, pipelines
from telemeter.health.ledger import Reading, reading


def watch(service: Any) -> tuple[ledger.Ledger, checks.Checks]:
    """The ledger and checks of a :class:`~telemeter.notification.service.
    NotificationService`."""
    book = ledger.Ledger('notification', service.worker_id)
    retired = {'sample': pipelines.Retired(), 'event': pipelines.Retired()}
    service.on_pipelines_replaced = (
        lambda old, kind: retired[kind].absorb(pipelines.readings(old, kind)))

    def listeners() -> list[tuple[str, Any]]:
        named = [(str(i), listener)
                 for i, listener in enumerate(service.listeners)]
        ownership = service.ownership
        if ownership is not None and ownership.listener is not None:
            named.append(('pipe', ownership.listener))
        return named

    def managers() -> list[tuple[str, Any]]:
        return [(kind, reloadable.current) for kind, reloadable
                in (('sample', service.sample_pipelines),
                    ('event', service.event_pipelines))
                if reloadable is not None]

    def pipeline_readings() -> list[Reading]:
        found = []
        for kind, manager in managers():
            found += retired[kind].merged(pipelines.readings(manager, kind))
            found += pipelines.gauges(manager, kind)
        return found

    book.add(bus.readings(listeners, 'notification'))
    book.add(lambda: handler_readings(service.endpoints))
    book.add(pipeline_readings)

    health = checks.Checks()
    health.add(bus.check(listeners))
    health.add(lambda: [c for _, manager in managers()
                        for c in pipelines.publisher_checks(manager)])
    return book, health


def handler_readings(endpoints: list[Any]) -> list[Reading]:
    found = []
    for endpoint in endpoints:
        stage = f'handler:{type(endpoint).__name__}'
        kind = 'event' if hasattr(endpoint, 'event_converter') else 'sample'
        found += [
            reading('produced', getattr(endpoint, 'produced', 0),
                    stage=stage, kind=kind),
            reading('dropped', getattr(endpoint, 'failures', 0),
                    stage=stage, kind='notification',
                    reason='handler_error'),
        ]
    return found
