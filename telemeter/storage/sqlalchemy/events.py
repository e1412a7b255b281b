"""Event storage of the SQL driver: recording and queries.

Each event is written in its own transaction (event type, event row, typed
trait rows); a duplicate ``message_id`` is skipped. Queries read events in
``generated`` order and fetch their traits in chunks of event ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from oslo_log import log
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine

from telemeter.storage import models
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import expiry, filters, tables
from telemeter.storage.sqlalchemy.metering import json_loads

LOG = log.getLogger(__name__)

_IN_CHUNK = 500


def _retry_on_integrity(func: Any, attempts: int = 3) -> Any:
    """Run ``func``, retrying when a concurrent writer broke a FK check."""
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except sa.exc.IntegrityError:
            if attempt == attempts:
                raise
            LOG.info('Concurrent write while deleting, retrying')
    return None


class _DuplicateEvent(Exception):
    """The event's message_id is already stored."""


class EventStore:
    """Event reads and writes on one engine; caches event type ids."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._event_types: dict[str, int] = {}
        self._insert_event_type = db_engine.insert_ignore(
            tables.event_type, self._dialect)

    def forget_event_types(self) -> None:
        """Drop the event type cache (after a clear)."""
        self._event_types.clear()

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
        removed = expiry.delete_in_chunks(
            self._engine, event, event.c.id,
            event.c.generated < expiry.cutoff(ttl),
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
            raw=json_loads(row.raw)) for row in rows]

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

