"""The ``log`` storage driver: logs writes, stores nothing.

Not production ready; every query returns ``[]`` and every capability is
False.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from oslo_log import log

from telemeter.storage import base

if TYPE_CHECKING:
    from telemeter.storage import models

LOG = log.getLogger(__name__)


class Connection(base.Connection):
    """Log the samples instead of storing them."""

    def record_metering_data(self, data: dict) -> None:
        """Log one metering dict at info level."""
        LOG.info('metering data %(counter_name)s for %(resource_id)s: '
                 '%(counter_volume)s',
                 {'counter_name': data['counter_name'],
                  'resource_id': data['resource_id'],
                  'counter_volume': data['counter_volume']})

    def clear_expired_metering_data(self, ttl: int) -> None:
        """Only log: there is nothing stored to expire."""
        LOG.info('Dropping metering data with TTL %d', ttl)

    def find_resources(self, *args: Any, **kwargs: Any) -> list:
        """Always ``[]``."""
        return []

    def find_meters(self, *args: Any, **kwargs: Any) -> list:
        """Always ``[]``."""
        return []

    def get_samples(self, *args: Any, **kwargs: Any) -> list:
        """Always ``[]``."""
        return []

    def query_samples(self, *args: Any, **kwargs: Any) -> list:
        """Always ``[]``."""
        return []

    def get_meter_statistics(self, *args: Any, **kwargs: Any) -> list:
        """Always ``[]``."""
        return []


class EventConnection(base.EventConnection):
    """Log the events instead of storing them."""

    def record_events(self, events: Iterable[models.Event]) -> None:
        """Log each event at info level."""
        for event in events:
            LOG.info('event %(type)s %(id)s generated at %(generated)s',
                     {'type': event.event_type, 'id': event.message_id,
                      'generated': event.generated})

    def clear_expired_event_data(self, ttl: int) -> None:
        """Only log: there is nothing stored to expire."""
        LOG.info('Dropping event data with TTL %d', ttl)

    def get_events(self, *args: Any, **kwargs: Any) -> list:
        """Always ``[]``."""
        return []

    def get_event_types(self) -> list:
        """Always ``[]``."""
        return []

    def get_trait_types(self, event_type: str) -> list:
        """Always ``[]``."""
        return []

    def get_traits(self, event_type: str,
                   trait_type: str | None = None) -> list:
        """Always ``[]``."""
        return []
