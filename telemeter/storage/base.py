"""Base classes of the storage drivers (the models' base, Model, is
re-exported here from :mod:`.models`, its path in the spec)."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

import telemeter
from telemeter import storage
from telemeter.storage import models

if TYPE_CHECKING:
    from telemeter.storage import (
        EventFilter,
        MeterFilter,
        ResourceFilter,
        SampleFilter,
    )

#: The models' base class, at the spec's path (defined with the models).
Model = models.Model


def make_capabilities(supported: bool) -> dict:
    """The metering capability tree with every leaf set to ``supported``."""
    query = {'simple': supported, 'metadata': supported}
    return {
        'meters': {'query': dict(query)},
        'resources': {'query': dict(query)},
        'samples': {'query': dict(query, complex=supported)},
        'statistics': {
            'groupby': supported,
            'query': dict(query),
            'aggregation': {
                'standard': supported,
                'selectable': dict.fromkeys(
                    ('max', 'min', 'sum', 'avg', 'count', 'stddev',
                     'cardinality'), supported),
            },
        },
    }


def make_event_capabilities(supported: bool) -> dict:
    """The event capability tree with every leaf set to ``supported``."""
    return {'events': {'query': {'simple': supported}}}


def make_storage_capabilities(production_ready: bool) -> dict:
    """The ``{'storage': {'production_ready': B}}`` tree."""
    return {'storage': {'production_ready': production_ready}}


class Driver:
    """What every storage driver has: built ``cls(conf, url)``, a schema
    to create or migrate and to drop, connections to close, and the
    capabilities it declares."""

    CAPABILITIES: dict = {}
    STORAGE_CAPABILITIES = make_storage_capabilities(False)

    def __init__(self, conf: cfg.ConfigOpts, url: str) -> None:
        self.conf = conf

    def upgrade(self) -> None:
        """Create or migrate the schema (idempotent)."""

    def clear(self) -> None:
        """Remove all stored data (the schema's tables with it)."""

    def dispose(self) -> None:
        """Close the driver's connections (its pool); nothing to close
        by default."""

    @classmethod
    def get_capabilities(cls) -> dict:
        """The driver's query capabilities."""
        return cls.CAPABILITIES

    @classmethod
    def get_storage_capabilities(cls) -> dict:
        """The driver's storage capabilities."""
        return cls.STORAGE_CAPABILITIES


class Connection(Driver, abc.ABC):
    """Base class for metering storage drivers.

    A driver must write and expire samples; query methods of a driver that
    lacks them raise :class:`telemeter.NotImplementedError`.
    """

    CAPABILITIES = make_capabilities(False)

    @abc.abstractmethod
    def record_metering_data(self, data: dict) -> None:
        """Write one metering dict (``timestamp`` a naive UTC datetime)."""

    def record_metering_data_batch(self, samples: Iterable[dict]) -> None:
        """Record a list of metering dicts; the default loops."""
        for sample in samples:
            self.record_metering_data(sample)

    @abc.abstractmethod
    def clear_expired_metering_data(self, ttl: int) -> None:
        """Delete samples older than ``ttl`` seconds."""

    def get_resources(self, user: str | None = None,
                      project: str | None = None,
                      source: str | None = None,
                      start_timestamp: Any = None,
                      start_timestamp_op: str | None = None,
                      end_timestamp: Any = None,
                      end_timestamp_op: str | None = None,
                      metaquery: dict | None = None,
                      resource: str | None = None,
                      limit: int | None = None) -> list[models.Resource]:
        """Return the Resource models: :meth:`find_resources` of these
        parameters (the spec's keyword form)."""
        return self.find_resources(storage.ResourceFilter(
            user=user, project=project, source=source,
            start_timestamp=start_timestamp,
            start_timestamp_op=start_timestamp_op,
            end_timestamp=end_timestamp, end_timestamp_op=end_timestamp_op,
            metaquery=metaquery, resource=resource, limit=limit))

    def find_resources(self, resource_filter: ResourceFilter
                       ) -> list[models.Resource]:
        """Return the Resource models ``resource_filter`` selects."""
        raise telemeter.NotImplementedError('Resources not implemented')

    def get_meters(self, user: str | None = None,
                   project: str | None = None,
                   resource: str | None = None,
                   source: str | None = None,
                   metaquery: dict | None = None,
                   limit: int | None = None,
                   unique: bool = False) -> list[models.Meter]:
        """Return the Meter models: :meth:`find_meters` of these
        parameters (the spec's keyword form)."""
        return self.find_meters(storage.MeterFilter(
            user=user, project=project, resource=resource, source=source,
            metaquery=metaquery, limit=limit, unique=unique))

    def find_meters(self, meter_filter: MeterFilter) -> list[models.Meter]:
        """Return the Meter models ``meter_filter`` selects."""
        raise telemeter.NotImplementedError('Meters not implemented')

    def get_samples(self, sample_filter: SampleFilter,
                    limit: int | None = None) -> list[models.Sample]:
        """Return the Sample models, newest first."""
        raise telemeter.NotImplementedError('Samples not implemented')

    def query_samples(self, filter_expr: dict | None = None,
                      orderby: list | None = None,
                      limit: int | None = None) -> list[models.Sample]:
        """Return Sample models matching a complex filter expression."""
        raise telemeter.NotImplementedError('Complex query for samples '
                                            'is not implemented.')

    def get_meter_statistics(self, sample_filter: SampleFilter,
                             period: int | None = None,
                             groupby: list | None = None,
                             aggregate: list | None = None
                             ) -> list[models.Statistics]:
        """Return Statistics models for the samples matching the filter."""
        raise telemeter.NotImplementedError('Statistics not implemented')



class EventConnection(Driver, abc.ABC):
    """Base class for event storage drivers.

    A driver must write and expire events; query methods of a driver that
    lacks them raise :class:`telemeter.NotImplementedError`.
    """

    CAPABILITIES = make_event_capabilities(False)

    @abc.abstractmethod
    def record_events(self, events: Iterable[models.Event]) -> None:
        """Write a list of Event models."""

    def get_events(self, event_filter: EventFilter,
                   limit: int | None = None) -> list[models.Event]:
        """Return Event models matching ``event_filter``."""
        raise telemeter.NotImplementedError('Events not implemented.')

    def get_event_types(self) -> list[str]:
        """Return all event types, sorted."""
        raise telemeter.NotImplementedError('Events not implemented.')

    def get_trait_types(self, event_type: str) -> list[dict[str, Any]]:
        """Return ``{'name', 'data_type'}`` for every trait of a type."""
        raise telemeter.NotImplementedError('Events not implemented.')

    def get_traits(self, event_type: str,
                   trait_type: str | None = None) -> list[models.Trait]:
        """Return Trait models of all events of ``event_type``."""
        raise telemeter.NotImplementedError('Events not implemented.')

    @abc.abstractmethod
    def clear_expired_event_data(self, ttl: int) -> None:
        """Delete events older than ``ttl`` seconds."""

