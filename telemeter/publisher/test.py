"""The ``test://`` publisher: keeps what it is given, for tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from telemeter import publisher

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event


class TestPublisher(publisher.ConfigPublisherBase):
    """Records published samples and events and counts the calls."""

    __test__ = False  # not a pytest test class

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url)
        self.samples: list[Any] = []
        self.events: list[Any] = []
        self.calls = 0

    def publish_samples(self, samples: list[Sample]) -> None:
        self.samples.extend(samples)
        self.calls += 1

    def publish_events(self, events: list[Event]) -> None:
        self.events.extend(events)
        self.calls += 1
