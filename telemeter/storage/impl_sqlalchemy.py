"""SQL storage driver (PostgreSQL, MySQL/MariaDB, SQLite) for samples and
events.

The schema lives in :mod:`telemeter.storage.sqlalchemy.tables` and is
created / migrated by Alembic (:mod:`telemeter.storage.sqlalchemy.migration`);
batched sample writes are in :mod:`telemeter.storage.sqlalchemy.writer`.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from oslo_log import log
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine

import telemeter
from telemeter.storage import base, models
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import filters, migration, tables, writer

LOG = log.getLogger(__name__)

DELETE_CHUNK_SIZE = 5000
_IN_CHUNK = 500


def _json_loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _cutoff(ttl: int) -> datetime.datetime:
    return tables.utcnow() - datetime.timedelta(seconds=ttl)


def _connect(conf: cfg.ConfigOpts, url: str) -> Engine:
    engine = db_engine.create_engine(conf, url)
    # Fail now (and let get_connection_from_config retry) rather than on
    # the first write.
    with engine.connect():
        pass
    return engine


def _delete_in_chunks(engine: Engine, table: sa.Table,
                      id_column: sa.Column, condition: sa.ColumnElement,
                      children: Iterable[sa.Column] = (),
                      what: str = 'rows') -> int:
    """Delete matching rows (and child rows) chunk by chunk.

    Each chunk is its own transaction, so a large purge neither holds locks
    for long nor needs a huge undo log.
    """
    total = 0
    while True:
        with db_engine.write_transaction(engine) as conn:
            ids = conn.execute(sa.select(id_column).where(condition)
                               .limit(DELETE_CHUNK_SIZE)).scalars().all()
            if not ids:
                break
            for child in children:
                conn.execute(child.table.delete().where(child.in_(ids)))
            conn.execute(table.delete().where(id_column.in_(ids)))
        total += len(ids)
        if len(ids) == DELETE_CHUNK_SIZE:
            LOG.info('%(count)d expired %(what)s removed so far',
                     {'count': total, 'what': what})
        else:
            break
    return total


def _retry_on_integrity(func: Callable[[], Any], attempts: int = 3) -> Any:
    """Run ``func``, retrying when a concurrent writer broke a FK check."""
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except sa.exc.IntegrityError:
            if attempt == attempts:
                raise
            LOG.info('Concurrent write while deleting, retrying')
    return None


class Connection(base.Connection):
    """Metering storage in a SQL database.

    Constructed ``Connection(conf, url)``; ``url`` is any SQLAlchemy URL,
    ``postgresql://`` and ``mysql://`` defaulting to psycopg 3 and PyMySQL.
    """

    CAPABILITIES = base.make_capabilities(True)
    STORAGE_CAPABILITIES = base.make_storage_capabilities(True)

    # Deadlock retries of a batch write (storage.md §5).
    MAX_WRITE_ATTEMPTS = 10
    WRITE_RETRY_INTERVAL = 10.0

    def __init__(self, conf: cfg.ConfigOpts, url: str) -> None:
        super().__init__(conf, url)
        self._engine = _connect(conf, url)
        self._writer = writer.SampleWriter(
            self._engine, max_attempts=self.MAX_WRITE_ATTEMPTS,
            retry_interval=self.WRITE_RETRY_INTERVAL)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests)."""
        return self._engine

    def upgrade(self) -> None:
        """Create or migrate the metering schema (idempotent)."""
        migration.upgrade(self._engine, migration.METERING)

    def clear(self) -> None:
        """Drop every metering table."""
        migration.drop(self._engine, migration.METERING)
        self._writer.forget_meters()

    def dispose(self) -> None:
        """Close the pooled database connections."""
        self._engine.dispose()

    # -- writes -----------------------------------------------------------

    def record_metering_data(self, data: dict) -> None:
        """Record one metering dict (a batch of one)."""
        self.record_metering_data_batch([data])

    def record_metering_data_batch(self, samples: Iterable[dict]) -> None:
        """Record metering dicts in one transaction; known message ids are
        skipped."""
        self._writer.record(samples)

    def clear_expired_metering_data(self, ttl: int) -> None:
        """Delete samples older than ``ttl`` seconds, then (unless
        ``sql_expire_samples_only``) meters and resources left without
        samples."""
        sample = tables.sample
        removed = _delete_in_chunks(self._engine, sample, sample.c.id,
                                    sample.c.timestamp < _cutoff(ttl),
                                    what='samples')
        LOG.info('%d samples removed from database', removed)
        if self.conf.database.sql_expire_samples_only:
            return
        _retry_on_integrity(self._delete_residual_data)
        self._writer.forget_meters()
        LOG.info('Expired residual resource and meter definition data')

    def _delete_residual_data(self) -> None:
        sample, meter, resource = tables.sample, tables.meter, tables.resource
        with db_engine.write_transaction(self._engine) as conn:
            conn.execute(meter.delete().where(~sa.exists().where(
                sample.c.meter_id == meter.c.id)))
        with db_engine.write_transaction(self._engine) as conn:
            orphans = sa.select(resource.c.internal_id).where(
                ~sa.exists().where(
                    sample.c.resource_id == resource.c.internal_id))
            for table in (tables.metadata_text, tables.metadata_bool,
                          tables.metadata_int, tables.metadata_float):
                conn.execute(table.delete().where(table.c.id.in_(orphans)))
            conn.execute(resource.delete().where(~sa.exists().where(
                sample.c.resource_id == resource.c.internal_id)))

    # -- queries ----------------------------------------------------------

    def _read(self, query: sa.Select) -> list[sa.Row]:
        with self._engine.connect() as conn:
            return list(conn.execute(query))

    def get_samples(self, sample_filter: Any,
                    limit: int | None = None) -> list[models.Sample]:
        """Samples matching ``sample_filter``, newest first."""
        if limit == 0:
            return []
        sample, meter, resource = tables.sample, tables.meter, tables.resource
        query = (sa.select(
            resource.c.source_id, meter.c.name, meter.c.type, meter.c.unit,
            sample.c.volume, resource.c.user_id, resource.c.project_id,
            resource.c.resource_id, sample.c.timestamp,
            resource.c.resource_metadata, sample.c.message_id,
            sample.c.message_signature, sample.c.recorded_at)
            .select_from(sample
                         .join(meter, meter.c.id == sample.c.meter_id)
                         .join(resource, resource.c.internal_id
                               == sample.c.resource_id))
            .where(*filters.sample_conditions(sample_filter))
            .order_by(sample.c.timestamp.desc(), sample.c.id.desc()))
        if limit:
            query = query.limit(limit)
        return [models.Sample(
            source=row.source_id, counter_name=row.name,
            counter_type=row.type, counter_unit=row.unit,
            counter_volume=(None if row.volume is None
                            else float(row.volume)),
            user_id=row.user_id, project_id=row.project_id,
            resource_id=row.resource_id, timestamp=row.timestamp,
            resource_metadata=_json_loads(row.resource_metadata),
            message_id=row.message_id,
            message_signature=row.message_signature,
            recorded_at=row.recorded_at) for row in self._read(query)]

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
        """One Resource per resource_id with matching samples.

        First/last timestamps span the matching samples; user, project,
        source and metadata come from the resource row of the newest
        matching sample (ties: latest insert).
        """
        if limit == 0:
            return []
        sample, res = tables.sample, tables.resource
        conditions = filters.resource_conditions(
            user=user, project=project, source=source, resource=resource,
            metaquery=metaquery)
        conditions.extend(filters.timestamp_conditions(
            sample.c.timestamp, start_timestamp, start_timestamp_op,
            end_timestamp, end_timestamp_op))
        # First/last timestamps by GROUP BY; the newest sample per
        # resource_id by a window over narrow rows; the wide resource row
        # (metadata text) is joined for that winner only. (Aggregate
        # windows without ORDER BY are very slow on MariaDB.)
        joined = sample.join(res, res.c.internal_id == sample.c.resource_id)
        span = (sa.select(res.c.resource_id,
                          sa.func.min(sample.c.timestamp).label('first'),
                          sa.func.max(sample.c.timestamp).label('last'))
                .select_from(joined)
                .where(*conditions)
                .group_by(res.c.resource_id)
                .subquery())
        ranked = (sa.select(
            res.c.resource_id,
            sample.c.resource_id.label('internal_id'),
            sa.func.row_number().over(
                partition_by=res.c.resource_id,
                order_by=(sample.c.timestamp.desc(), sample.c.id.desc())
            ).label('rank'))
            .select_from(joined)
            .where(*conditions)
            .subquery())
        query = (sa.select(span.c.resource_id,
                           span.c.first.label('first_timestamp'),
                           span.c.last.label('last_timestamp'),
                           res.c.user_id, res.c.project_id,
                           res.c.source_id, res.c.resource_metadata)
                 .select_from(
                     ranked
                     .join(span, span.c.resource_id == ranked.c.resource_id)
                     .join(res, res.c.internal_id == ranked.c.internal_id))
                 .where(ranked.c.rank == 1)
                 .order_by(span.c.resource_id))
        if limit:
            query = query.limit(limit)
        return [models.Resource(
            resource_id=row.resource_id, project_id=row.project_id,
            first_sample_timestamp=row.first_timestamp,
            last_sample_timestamp=row.last_timestamp,
            source=row.source_id, user_id=row.user_id,
            metadata=_json_loads(row.resource_metadata))
            for row in self._read(query)]

    def get_meters(self, user: str | None = None,
                   project: str | None = None,
                   resource: str | None = None,
                   source: str | None = None,
                   metaquery: dict | None = None,
                   limit: int | None = None,
                   unique: bool = False) -> list[models.Meter]:
        """One Meter per (meter, resource_id), from its latest sample.

        With ``unique`` one Meter per meter, resource/project/source/user
        set to None.
        """
        if limit == 0:
            return []
        sample, meter, res = tables.sample, tables.meter, tables.resource
        # Latest sample per (meter, resource row), then per (meter,
        # resource_id): the inner GROUP BY can use the (meter_id,
        # resource_id) index and shrinks what the window has to sort.
        latest = (sa.select(sample.c.meter_id,
                            sample.c.resource_id.label('internal_id'),
                            sa.func.max(sample.c.id).label('sample_id'))
                  .group_by(sample.c.meter_id, sample.c.resource_id)
                  .subquery())
        ranked = (sa.select(
            latest.c.meter_id, latest.c.internal_id,
            sa.func.row_number().over(
                partition_by=(latest.c.meter_id, res.c.resource_id),
                order_by=latest.c.sample_id.desc()).label('rank'))
            .select_from(latest.join(
                res, res.c.internal_id == latest.c.internal_id))
            .subquery())
        conditions = filters.resource_conditions(
            user=user, project=project, source=source, resource=resource,
            metaquery=metaquery)
        joined = (ranked
                  .join(meter, meter.c.id == ranked.c.meter_id)
                  .join(res, res.c.internal_id == ranked.c.internal_id))
        if unique:
            query = (sa.select(meter.c.name, meter.c.type, meter.c.unit)
                     .select_from(joined)
                     .where(ranked.c.rank == 1, *conditions)
                     .distinct()
                     .order_by(meter.c.name, meter.c.type, meter.c.unit))
            if limit:
                query = query.limit(limit)
            return [models.Meter(name=row.name, type=row.type,
                                 unit=row.unit, resource_id=None,
                                 project_id=None, source=None, user_id=None)
                    for row in self._read(query)]
        query = (sa.select(meter.c.name, meter.c.type, meter.c.unit,
                           res.c.resource_id, res.c.project_id,
                           res.c.source_id, res.c.user_id)
                 .select_from(joined)
                 .where(ranked.c.rank == 1, *conditions)
                 .order_by(meter.c.name, res.c.resource_id))
        if limit:
            query = query.limit(limit)
        return [models.Meter(name=row.name, type=row.type, unit=row.unit,
                             resource_id=row.resource_id,
                             project_id=row.project_id,
                             source=row.source_id, user_id=row.user_id)
                for row in self._read(query)]

    def query_samples(self, filter_expr: dict | None = None,
                      orderby: list | None = None,
                      limit: int | None = None) -> list[models.Sample]:
        """Complex sample queries: not implemented yet."""
        raise telemeter.NotImplementedError(
            'Complex query for samples is not implemented yet.')

    def get_meter_statistics(self, sample_filter: Any,
                             period: int | None = None,
                             groupby: list | None = None,
                             aggregate: list | None = None
                             ) -> list[models.Statistics]:
        """Statistics: not implemented yet."""
        raise telemeter.NotImplementedError(
            'Statistics are not implemented yet.')


class _DuplicateEvent(Exception):
    """The event's message_id is already stored."""


class EventConnection(base.EventConnection):
    """Event storage in a SQL database."""

    CAPABILITIES = base.make_event_capabilities(True)
    STORAGE_CAPABILITIES = base.make_storage_capabilities(True)

    def __init__(self, conf: cfg.ConfigOpts, url: str) -> None:
        super().__init__(conf, url)
        self._engine = _connect(conf, url)
        self._dialect = self._engine.dialect.name
        self._event_types: dict[str, int] = {}
        self._insert_event_type = db_engine.insert_ignore(
            tables.event_type, self._dialect)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests)."""
        return self._engine

    def upgrade(self) -> None:
        """Create or migrate the event schema (idempotent)."""
        migration.upgrade(self._engine, migration.EVENT)

    def clear(self) -> None:
        """Drop every event table."""
        migration.drop(self._engine, migration.EVENT)
        self._event_types.clear()

    def dispose(self) -> None:
        """Close the pooled database connections."""
        self._engine.dispose()

    # -- writes -----------------------------------------------------------

    def record_events(self, events: Iterable[models.Event]) -> None:
        """Store each event in its own transaction.

        A duplicate message_id is logged and skipped; other failures are
        logged and the last one is raised once every event was tried.
        """
        error: Exception | None = None
        for event in events:
            try:
                self._record_event_retrying(event)
            except _DuplicateEvent:
                LOG.info('Duplicate event detected, skipping it: %s',
                         event.message_id)
            except Exception as err:
                LOG.exception('Failed to record event: %s', err)
                error = err
        if error is not None:
            raise error

    def _record_event_retrying(self, event: models.Event) -> None:
        try:
            self._record_event(event)
        except sa.exc.IntegrityError:
            if self._is_stored(event.message_id):
                raise _DuplicateEvent() from None
            # Perhaps a cached event type was expired meanwhile.
            self._event_types.clear()
            self._record_event(event)

    def _is_stored(self, message_id: str) -> bool:
        event = tables.event
        with self._engine.connect() as conn:
            return conn.execute(sa.select(event.c.id).where(
                event.c.message_id == message_id)).first() is not None

    def _record_event(self, event: models.Event) -> None:
        trait_rows = self._trait_rows(event.traits or [])
        new_type = None
        with db_engine.write_transaction(self._engine) as conn:
            type_id = self._event_types.get(event.event_type)
            if type_id is None:
                type_id = new_type = self._event_type_id(conn,
                                                         event.event_type)
            result = conn.execute(tables.event.insert().values(
                message_id=event.message_id,
                generated=event.generated,
                raw=None if event.raw is None else json.dumps(
                    event.raw, default=str),
                event_type_id=type_id))
            event_id = result.inserted_primary_key[0]
            for table, rows in trait_rows.items():
                conn.execute(table.insert(),
                             [dict(row, event_id=event_id) for row in rows])
        if new_type is not None:
            self._event_types[event.event_type] = new_type

    def _event_type_id(self, conn: SAConnection, name: str) -> int:
        event_type = tables.event_type
        query = sa.select(event_type.c.id).where(event_type.c.desc == name)
        type_id = conn.execute(query).scalar()
        if type_id is None:
            conn.execute(self._insert_event_type, {'desc': name})
            type_id = conn.execute(query).scalar_one()
        return type_id

    @staticmethod
    def _trait_rows(traits: Iterable[models.Trait]
                    ) -> dict[sa.Table, list[dict]]:
        rows: dict[sa.Table, list[dict]] = {}
        for trait in traits:
            table = filters.TRAIT_TABLE_BY_DTYPE.get(trait.dtype)
            if table is None:
                raise ValueError(f'Trait {trait.name} has unknown type '
                                 f'{trait.dtype}')
            value = trait.value
            if value is not None:
                dtype = (models.Trait.TEXT_TYPE
                         if trait.dtype == models.Trait.NONE_TYPE
                         else trait.dtype)
                value = models.Trait.convert_value(dtype, value)
            rows.setdefault(table, []).append({'key': trait.name,
                                               'value': value})
        return rows

    def clear_expired_event_data(self, ttl: int) -> None:
        """Delete events older than ``ttl`` seconds with their traits, then
        event types left without events."""
        event, event_type = tables.event, tables.event_type
        removed = _delete_in_chunks(
            self._engine, event, event.c.id,
            event.c.generated < _cutoff(ttl),
            children=[table.c.event_id for table, _ in filters.TRAIT_TABLES],
            what='events')

        def _delete_types() -> None:
            with db_engine.write_transaction(self._engine) as conn:
                conn.execute(event_type.delete().where(~sa.exists().where(
                    event.c.event_type_id == event_type.c.id)))

        _retry_on_integrity(_delete_types)
        self._event_types.clear()
        LOG.info('%d events are removed from database', removed)

    # -- queries ----------------------------------------------------------

    def get_events(self, event_filter: Any,
                   limit: int | None = None) -> list[models.Event]:
        """Events matching ``event_filter``, oldest first, with all their
        traits (sorted by name)."""
        if limit == 0:
            return []
        event, event_type = tables.event, tables.event_type
        query = (sa.select(event.c.id, event.c.message_id,
                           event.c.generated, event.c.raw,
                           event_type.c.desc)
                 .select_from(event.join(
                     event_type, event_type.c.id == event.c.event_type_id))
                 .where(*filters.event_conditions(event_filter))
                 .order_by(event.c.generated.asc(), event.c.id.asc()))
        if limit:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            rows = list(conn.execute(query))
            traits = self._traits_of(conn, [row.id for row in rows])
        return [models.Event(
            message_id=row.message_id, event_type=row.desc,
            generated=row.generated,
            traits=sorted(traits.get(row.id, []),
                          key=lambda t: (t.name, t.dtype)),
            raw=_json_loads(row.raw)) for row in rows]

    @staticmethod
    def _traits_of(conn: SAConnection, event_ids: list[int]
                   ) -> dict[int, list[models.Trait]]:
        traits: dict[int, list[models.Trait]] = {}
        for start in range(0, len(event_ids), _IN_CHUNK):
            chunk = event_ids[start:start + _IN_CHUNK]
            for table, dtype in filters.TRAIT_TABLES:
                query = sa.select(table.c.event_id, table.c.key,
                                  table.c.value).where(
                    table.c.event_id.in_(chunk))
                for row in conn.execute(query):
                    traits.setdefault(row.event_id, []).append(
                        models.Trait(row.key, dtype, row.value))
        return traits

    def get_event_types(self) -> list[str]:
        """All event types, sorted."""
        event_type = tables.event_type
        with self._engine.connect() as conn:
            return list(conn.execute(
                sa.select(event_type.c.desc).order_by(event_type.c.desc)
            ).scalars())

    def _trait_query(self, table: sa.Table, event_type: str,
                     *columns: Any) -> sa.Select:
        event, types = tables.event, tables.event_type
        return (sa.select(*columns)
                .select_from(table
                             .join(event, event.c.id == table.c.event_id)
                             .join(types, types.c.id == event.c.event_type_id))
                .where(types.c.desc == event_type))

    def get_trait_types(self, event_type: str) -> list[dict]:
        """``{'name', 'data_type'}`` per distinct trait of ``event_type``:
        text first, then int, float, datetime."""
        result = []
        with self._engine.connect() as conn:
            for table, dtype in filters.TRAIT_TABLES:
                query = (self._trait_query(table, event_type, table.c.key)
                         .distinct().order_by(table.c.key))
                result.extend({'name': key, 'data_type': dtype}
                              for key in conn.execute(query).scalars())
        return result

    def get_traits(self, event_type: str,
                   trait_type: str | None = None) -> list[models.Trait]:
        """Trait models of every event of ``event_type`` (only the
        ``trait_type`` key when given)."""
        result = []
        with self._engine.connect() as conn:
            for table, dtype in filters.TRAIT_TABLES:
                query = self._trait_query(table, event_type, table.c.key,
                                          table.c.value)
                if trait_type:
                    query = query.where(table.c.key == trait_type)
                query = query.order_by(table.c.event_id, table.c.key)
                result.extend(models.Trait(row.key, dtype, row.value)
                              for row in conn.execute(query))
        return result

