"""Event pipelines: a source's event-type filter coupled to a sink's
publishers. Event sinks have no transformers."""

from __future__ import annotations

from typing import Any

from oslo_log import log

from telemeter.pipeline import base
from telemeter.pipeline.sample import PipelineSource, Sink

LOG = log.getLogger(__name__)


class EventSource(PipelineSource):
    """A ``sources`` entry of event_pipeline.yaml."""

    def __init__(self, cfg: dict) -> None:
        super().__init__(cfg)
        self.events: list[str] = cfg.get('events') or []
        self.check_source_filtering(self.events, 'events')
        self.support_event = base.NameFilter(self.events)


class EventSink(Sink):
    """Sends events to every publisher.

    With a single publisher its error propagates, which is what lets the
    notification agent requeue on ``ack_on_event_error = False``.
    """

    def publish_events(self, events: list[Any]) -> None:
        if not events:
            return
        count = len(events)
        self.received += count
        self.emitted += count
        for publisher, outcome in zip(self.publishers, self.outcomes,
                                      strict=True):
            try:
                publisher.publish_events(events)
            except Exception as err:
                outcome.failure(count, err)
                if len(self.publishers) == 1:
                    LOG.error('Pipeline %s: Exit after error from publisher '
                              '%s', self, publisher, exc_info=True)
                    raise
                LOG.error('Pipeline %s: Continue after error from publisher '
                          '%s', self, publisher, exc_info=True)
            else:
                outcome.ok(count)

    def flush(self) -> None:
        """Events are never held back, so there is nothing to flush."""


class EventPipeline:
    """One event source coupled with one of its sinks."""

    def __init__(self, source: EventSource, sink: EventSink) -> None:
        self.source = source
        self.sink = sink
        name = (source.name if source.name == sink.name
                else f'{source.name}:{sink.name}')
        self.name = 'event:' + name
        #: Events offered and passed to the sink (the rest were filtered).
        self.received = 0
        self.accepted = 0
        self.invalid = 0

    def __str__(self) -> str:
        return self.name

    def publish_data(self, events: Any) -> None:
        if not isinstance(events, list):
            events = [events]
        kept = [e for e in events if self.source.support_event(e.event_type)]
        self.received += len(events)
        self.accepted += len(kept)
        self.sink.publish_events(kept)

    def flush(self) -> None:
        self.sink.flush()
