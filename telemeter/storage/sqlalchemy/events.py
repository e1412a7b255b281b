"""Event storage of the SQL driver: recording, expiry and queries.

A batch of events is written in one transaction by
:mod:`~telemeter.storage.sqlalchemy.event_writer`; a duplicate
``message_id`` is skipped. Queries read events in ``generated`` order and
fetch their traits in chunks of event ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from oslo_log import log
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine

from telemeter.storage import models
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import (
    event_writer,
    expiry,
    filters,
    tables,
)
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


class EventStore:
    """Event reads and writes on one engine.

    Writes are :class:`~telemeter.storage.sqlalchemy.event_writer.
    EventWriter`'s (it holds the event type cache); ``checker.dropped``
    counts the events dropped as impossible to store.
    """

    def __init__(self, engine: Engine, max_attempts: int = 10,
                 retry_interval: float = 10.0) -> None:
        self._engine = engine
        self._writer = event_writer.EventWriter(
            engine, max_attempts=max_attempts,
            retry_interval=retry_interval)
        self.checker = self._writer.checker

    def forget_event_types(self) -> None:
        """Drop the event type cache (after a clear)."""
        self._writer.forget_event_types()

    # -- writes -----------------------------------------------------------

    def record_events(self, events: Iterable[models.Event]) -> None:
        """Store a batch of events in one transaction (per 1,000).

        A duplicate message_id is logged and skipped; an event the
        database would refuse is logged, counted and dropped; any other
        failure is raised and nothing of the failed chunk is stored.
        """
        self._writer.record(events)

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
        self._writer.forget_event_types()
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
        result: list[dict[str, Any]] = []
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
        result: list[models.Trait] = []
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

