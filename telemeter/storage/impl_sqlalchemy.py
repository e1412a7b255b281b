"""SQL storage driver (PostgreSQL, MySQL/MariaDB, SQLite) for samples and
events: the classes behind the ``sqlite``, ``mysql`` and ``postgresql``
entry points.

The work is done in :mod:`telemeter.storage.sqlalchemy`: ``tables``
(schema), ``migration`` (Alembic), ``engine`` (connections), ``writer``
(batched sample writes), ``metering`` and ``complex_query`` (sample,
resource and meter queries), ``statistics``, ``events`` and ``expiry``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from oslo_config import cfg
from oslo_log import log
from sqlalchemy.engine import Engine

from telemeter.storage import base, models
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import (
    events,
    expiry,
    metering,
    statistics,
    tables,
    writer,
)

if TYPE_CHECKING:
    from telemeter.storage import (
        EventFilter,
        MeterFilter,
        ResourceFilter,
        SampleFilter,
    )

LOG = log.getLogger(__name__)

# ``migration`` (Alembic, ~10 MB) is imported by upgrade() and clear() only:
# the collector never needs it.


class _SQLDatabase(base.Driver):
    """The engine and the schema's life, shared by both connection
    classes; ``SCHEMA`` names the schema (``metering`` or ``event``)."""

    SCHEMA: str

    def __init__(self, conf: cfg.ConfigOpts, url: str) -> None:
        super().__init__(conf, url)
        self._engine = db_engine.create_engine(conf, url)
        # Fail now (and let get_connection_from_config retry) rather than
        # on the first write.
        with self._engine.connect():
            pass

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests)."""
        return self._engine

    def upgrade(self) -> None:
        """Create or migrate the schema (idempotent)."""
        from telemeter.storage.sqlalchemy import migration
        migration.upgrade(self._engine, migration.SCHEMAS[self.SCHEMA])

    def clear(self) -> None:
        """Drop every table of the schema."""
        from telemeter.storage.sqlalchemy import migration
        migration.drop(self._engine, migration.SCHEMAS[self.SCHEMA])
        self._forget()

    def _forget(self) -> None:
        """Drop what the connection remembers of rows (ids it cached)."""

    def dispose(self) -> None:
        """Close the pooled database connections."""
        self._engine.dispose()


class Connection(_SQLDatabase, base.Connection):
    """Metering storage in a SQL database.

    Constructed ``Connection(conf, url)``; ``url`` is any SQLAlchemy URL,
    ``postgresql://`` and ``mysql://`` defaulting to psycopg 3 and PyMySQL.
    """

    CAPABILITIES = base.make_capabilities(True)
    STORAGE_CAPABILITIES = base.make_storage_capabilities(True)

    # Deadlock retries of a batch write (storage.md §5).
    MAX_WRITE_ATTEMPTS = 10
    WRITE_RETRY_INTERVAL = 10.0

    SCHEMA = 'metering'

    def __init__(self, conf: cfg.ConfigOpts, url: str) -> None:
        super().__init__(conf, url)
        self._writer = writer.SampleWriter(
            self._engine, max_attempts=self.MAX_WRITE_ATTEMPTS,
            retry_interval=self.WRITE_RETRY_INTERVAL)
        # Samples the database would reject are counted here.
        self.checker = self._writer.checker

    def _forget(self) -> None:
        self._writer.forget_ids()

    def analyse(self) -> None:
        """Refresh the planner statistics (after a bulk load)."""
        name = self._engine.dialect.name
        statement = {'postgresql': 'ANALYZE', 'sqlite': 'ANALYZE'}.get(name)
        if statement:
            with self._engine.connect() as conn:
                conn.exec_driver_sql(statement)
                conn.commit()
        elif name == 'mysql':
            with self._engine.connect() as conn:
                for table in tables.metering_metadata.sorted_tables:
                    conn.exec_driver_sql(f'ANALYZE TABLE {table.name}')
                conn.commit()

    # -- writes -----------------------------------------------------------

    def record_metering_data(self, data: dict) -> None:
        """Record one metering dict (a batch of one)."""
        self.record_metering_data_batch([data])

    def record_metering_data_batch(self, samples: Iterable[dict]) -> None:
        """Record metering dicts in one transaction; known message ids are
        skipped, samples the database would reject logged and dropped."""
        self._writer.record(samples)

    def clear_expired_metering_data(self, ttl: int) -> None:
        """Delete samples older than ``ttl`` seconds, then (unless
        ``sql_expire_samples_only``) meters and resources left without
        samples."""
        sample = tables.sample
        removed = expiry.delete_in_chunks(
            self._engine, sample, sample.c.id,
            sample.c.timestamp < expiry.cutoff(ttl), what='samples')
        LOG.info('%d samples removed from database', removed)
        if self.conf.database.sql_expire_samples_only:
            return
        meters, resources = expiry.delete_residual_metering(self._engine)
        self._writer.forget_ids()
        LOG.debug('%(meters)d meters and %(resources)d resources without '
                  'samples removed', {'meters': meters,
                                      'resources': resources})
        LOG.info('Expired residual resource and meter definition data')

    # -- queries ----------------------------------------------------------

    def get_samples(self, sample_filter: SampleFilter,
                    limit: int | None = None) -> list[models.Sample]:
        """Samples matching ``sample_filter``, newest first."""
        return metering.get_samples(self._engine, sample_filter, limit)

    def query_samples(self, filter_expr: dict | None = None,
                      orderby: list | None = None,
                      limit: int | None = None) -> list[models.Sample]:
        """Samples matching a complex filter expression."""
        return metering.query_samples(self._engine, filter_expr, orderby,
                                      limit)

    def find_resources(self, resource_filter: ResourceFilter
                       ) -> list[models.Resource]:
        """One Resource per resource_id with matching samples."""
        return metering.get_resources(self._engine, resource_filter)

    def find_meters(self, meter_filter: MeterFilter) -> list[models.Meter]:
        """One Meter per (meter, resource), or per meter if unique."""
        return metering.get_meters(self._engine, meter_filter)

    def get_meter_statistics(self, sample_filter: SampleFilter,
                             period: int | None = None,
                             groupby: list | None = None,
                             aggregate: list | None = None
                             ) -> list[models.Statistics]:
        """Statistics of the matching samples (storage.md §3)."""
        return statistics.get_meter_statistics(
            self._engine, sample_filter, period=period, groupby=groupby,
            aggregate=aggregate)


class EventConnection(_SQLDatabase, base.EventConnection):
    """Event storage in a SQL database."""

    CAPABILITIES = base.make_event_capabilities(True)
    STORAGE_CAPABILITIES = base.make_storage_capabilities(True)

    # Deadlock retries of a batch write, as for samples.
    MAX_WRITE_ATTEMPTS = 10
    WRITE_RETRY_INTERVAL = 10.0

    SCHEMA = 'event'

    def __init__(self, conf: cfg.ConfigOpts, url: str) -> None:
        super().__init__(conf, url)
        self._store = events.EventStore(
            self._engine, max_attempts=self.MAX_WRITE_ATTEMPTS,
            retry_interval=self.WRITE_RETRY_INTERVAL)
        # Events the database would refuse are counted here.
        self.checker = self._store.checker

    def _forget(self) -> None:
        self._store.forget_event_types()

    def record_events(self, events: Iterable[models.Event]) -> None:
        """Store a batch in one transaction; duplicates skipped, events
        the database would refuse logged and dropped."""
        self._store.record_events(events)

    def clear_expired_event_data(self, ttl: int) -> None:
        """Delete events older than ``ttl`` seconds with their traits."""
        self._store.clear_expired_event_data(ttl)

    def get_events(self, event_filter: EventFilter,
                   limit: int | None = None) -> list[models.Event]:
        """Events matching ``event_filter``, oldest first."""
        return self._store.get_events(event_filter, limit)

    def get_event_types(self) -> list[str]:
        """All event types, sorted."""
        return self._store.get_event_types()

    def get_trait_types(self, event_type: str) -> list[dict]:
        """``{'name', 'data_type'}`` per distinct trait of a type."""
        return self._store.get_trait_types(event_type)

    def get_traits(self, event_type: str,
                   trait_type: str | None = None) -> list[models.Trait]:
        """Trait models of every event of ``event_type``."""
        return self._store.get_traits(event_type, trait_type)
