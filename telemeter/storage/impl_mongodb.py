"""MongoDB storage driver (pymongo) for samples and events: the classes
behind the ``mongodb`` entry points.

Layout, indexes and TTL follow storage.md §6; the work is done in
:mod:`telemeter.storage.mongo`. Connecting checks the server version
(>= 2.4), authenticates with the URL's credentials and runs
:meth:`upgrade` (indexes and TTL indexes). Expiry is left to MongoDB's TTL
indexes, so ``clear_expired_*`` do nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pymongo
from oslo_config import cfg
from oslo_log import log

from telemeter.storage import base, models, validation
from telemeter.storage.event_checker import EventChecker
from telemeter.storage.mongo import connection, events, metering, statistics

if TYPE_CHECKING:
    from telemeter.storage import (
        EventFilter,
        MeterFilter,
        ResourceFilter,
        SampleFilter,
    )

LOG = log.getLogger(__name__)

ASC, DESC = pymongo.ASCENDING, pymongo.DESCENDING


class _MongoBase:
    """Client and database shared by both connection classes."""

    def __init__(self, url: str) -> None:
        self._client, self._db = connection.connect(url)

    @property
    def db(self) -> Any:
        """The pymongo database (for tools and tests)."""
        return self._db

    def dispose(self) -> None:
        """Close the client."""
        self._client.close()


class Connection(_MongoBase, base.Connection):
    """Metering storage in MongoDB."""

    CAPABILITIES = base.make_capabilities(True)
    STORAGE_CAPABILITIES = base.make_storage_capabilities(True)

    def __init__(self, conf: cfg.ConfigOpts, url: str) -> None:
        base.Connection.__init__(self, conf, url)
        _MongoBase.__init__(self, url)
        self.checker = validation.SampleChecker()
        self.upgrade()

    def upgrade(self) -> None:
        """Create the indexes; create, change or drop the TTL indexes
        per ``[database] metering_time_to_live``."""
        meter, resource = self._db.meter, self._db.resource
        connection.ensure_index(
            meter, [('resource_id', ASC), ('user_id', ASC),
                    ('counter_name', ASC), ('timestamp', ASC)],
            'meter_idx')
        connection.ensure_index(
            meter, [('resource_id', ASC), ('project_id', ASC),
                    ('counter_name', ASC), ('timestamp', ASC)],
            'meter_project_idx', background=True)
        connection.ensure_index(meter, [('timestamp', DESC)],
                                'timestamp_idx')
        connection.ensure_index(meter, [('counter_name', ASC),
                                        ('timestamp', ASC)],
                                'meter_name_timestamp_idx')
        # Idempotent writes: a stored message id is not stored again.
        connection.ensure_index(meter, [('message_id', ASC)],
                                'meter_message_id_idx', unique=True,
                                sparse=True)
        connection.ensure_index(
            resource, [('user_id', DESC), ('project_id', DESC),
                       ('last_sample_timestamp', DESC)],
            'resource_user_project_timestamp')
        connection.ensure_index(resource,
                                [('last_sample_timestamp', DESC)],
                                'last_sample_timestamp_idx')
        ttl = self.conf.database.metering_time_to_live
        connection.set_ttl_index(meter, 'timestamp', 'meter_ttl', ttl)
        connection.set_ttl_index(resource, 'last_sample_timestamp',
                                 'resource_ttl', ttl)

    def clear(self) -> None:
        """Drop the metering collections."""
        self._db.drop_collection('meter')
        self._db.drop_collection('resource')

    def record_metering_data(self, data: dict) -> None:
        """Record one metering dict."""
        self.record_metering_data_batch([data])

    def record_metering_data_batch(self, samples: Iterable[dict]) -> None:
        """Record metering dicts; known message ids are skipped, samples
        other drivers would reject logged and dropped."""
        metering.record_batch(self._db, self.checker.valid(samples))

    def clear_expired_metering_data(self, ttl: int) -> None:
        """Nothing to do: MongoDB's TTL indexes expire samples."""
        LOG.info('Clearing expired metering data is based on native '
                 'MongoDB time to live feature and going in background.')

    def get_samples(self, sample_filter: SampleFilter,
                    limit: int | None = None) -> list[models.Sample]:
        """Samples matching ``sample_filter``, newest first."""
        return metering.get_samples(self._db, sample_filter, limit)

    def query_samples(self, filter_expr: dict | None = None,
                      orderby: list | None = None,
                      limit: int | None = None) -> list[models.Sample]:
        """Samples matching a complex filter expression."""
        return metering.query_samples(self._db, filter_expr, orderby, limit)

    def find_resources(self, resource_filter: ResourceFilter
                       ) -> list[models.Resource]:
        """One Resource per resource id with matching samples."""
        return metering.get_resources(self._db, resource_filter)

    def find_meters(self, meter_filter: MeterFilter) -> list[models.Meter]:
        """One Meter per (meter, resource), or per meter if unique."""
        return metering.get_meters(self._db, meter_filter)

    def get_meter_statistics(self, sample_filter: SampleFilter,
                             period: int | None = None,
                             groupby: list | None = None,
                             aggregate: list | None = None
                             ) -> list[models.Statistics]:
        """Statistics of the matching samples (storage.md §3)."""
        return statistics.get_meter_statistics(
            self._db, sample_filter, period=period, groupby=groupby,
            aggregate=aggregate)


class EventConnection(_MongoBase, base.EventConnection):
    """Event storage in MongoDB."""

    CAPABILITIES = base.make_event_capabilities(True)
    STORAGE_CAPABILITIES = base.make_storage_capabilities(True)

    def __init__(self, conf: cfg.ConfigOpts, url: str) -> None:
        base.EventConnection.__init__(self, conf, url)
        _MongoBase.__init__(self, url)
        # Events that cannot be stored are counted here.
        self.checker = EventChecker()
        self.upgrade()

    def upgrade(self) -> None:
        """Create the event index; keep the ``event_ttl`` TTL index in
        line with ``[database] event_time_to_live``."""
        event = self._db.event
        connection.ensure_index(event, [('event_type', ASC),
                                        ('timestamp', ASC)],
                                'event_type_idx')
        connection.set_ttl_index(event, 'timestamp', 'event_ttl',
                                 self.conf.database.event_time_to_live)

    def clear(self) -> None:
        """Drop the event collection."""
        self._db.drop_collection('event')

    def record_events(self, events_: Iterable[models.Event]) -> None:
        """Insert a batch at once; duplicates skipped, events that cannot
        be stored logged, counted (``checker``) and dropped."""
        events.record_events(self._db, events_, self.checker)

    def clear_expired_event_data(self, ttl: int) -> None:
        """Nothing to do: MongoDB's TTL index expires events."""
        LOG.info('Clearing expired event data is based on native MongoDB '
                 'time to live feature and going in background.')

    def get_events(self, event_filter: EventFilter,
                   limit: int | None = None) -> list[models.Event]:
        """Events matching ``event_filter``, oldest first."""
        return events.get_events(self._db, event_filter, limit)

    def get_event_types(self) -> list[str]:
        """All event types, sorted."""
        return events.get_event_types(self._db)

    def get_trait_types(self, event_type: str) -> list[dict]:
        """``{'name', 'data_type'}`` per distinct trait of a type."""
        return events.get_trait_types(self._db, event_type)

    def get_traits(self, event_type: str,
                   trait_type: str | None = None) -> list[models.Trait]:
        """Trait models of every event of ``event_type``."""
        return events.get_traits(self._db, event_type, trait_type)
