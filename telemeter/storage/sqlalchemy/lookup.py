"""The reads of the sample writer, per database.

A batch takes the residual-data lock (shared), then learns which of its
cached meter ids still name the same meter and which of its resource
states already have a row. On PostgreSQL (psycopg 3) the three statements
go out in one pipeline - one round trip instead of three, each statement
still run (and its snapshot taken) after the previous one, so the reads
see everything an expirer committed before the lock was granted. SQLite
reads through the driver cursor (SQLAlchemy's statement handling cost more
than the reads). Elsewhere (MySQL) they are SQLAlchemy statements.

Cached ids are checked against the row they name, not only for presence:
SQLite (and MySQL after a restart) may give a deleted row's id to a new
row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import tables

CHUNK = 500
MeterRows = dict[int, tuple]
_PG_LOCK = f'SELECT pg_advisory_xact_lock_shared({db_engine.RESIDUAL_LOCK_ID})'
_METERS = 'SELECT id, name, type, unit FROM meter WHERE id '
_BY_IDENTITY = ('SELECT identity_hash, internal_id FROM resource '
                'WHERE identity_hash ')


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _meter_rows(rows: Any) -> MeterRows:
    return {meter_id: (name, type_, unit)
            for meter_id, name, type_, unit in rows}


class BatchLookup:
    """The writer's reads for one engine's dialect and driver."""

    def __init__(self, dialect: str, driver: str) -> None:
        self.pipelined = dialect == 'postgresql' and driver == 'psycopg'
        self.sqlite = dialect == 'sqlite'

    def open_batch(self, conn: Connection, meter_ids: list[int],
                   identities: list[str]
                   ) -> tuple[MeterRows, dict[str, int]]:
        """Take the residual-data lock (shared); return ``{id: (name,
        type, unit)}`` of the meters among ``meter_ids`` and
        ``{identity_hash: internal_id}`` of the resource rows among
        ``identities``."""
        if self.pipelined:
            meters, resources = self._pipeline(
                conn, _PG_LOCK, (_METERS, meter_ids),
                (_BY_IDENTITY, identities))
            return _meter_rows(meters), dict(resources)
        db_engine.residual_data_lock(conn, exclusive=False)
        return self.meters(conn, meter_ids), self.resource_ids(conn,
                                                               identities)

    @staticmethod
    def _pipeline(conn: Connection, first: str | None,
                  *queries: tuple[str, list]) -> list[list[tuple]]:
        driver_conn = db_engine.driver_connection(conn)
        cursors = [driver_conn.cursor() for _query in queries]
        try:
            with driver_conn.pipeline():
                if first:
                    driver_conn.execute(first)
                for cursor, (query, values) in zip(cursors, queries,
                                                   strict=True):
                    if values:
                        cursor.execute(query + '= ANY(%s)', (values,),
                                       binary=True)
            # Leaving the pipeline waited for every result.
            return [cursor.fetchall() if values else []
                    for cursor, (_query, values) in zip(cursors, queries,
                                                        strict=True)]
        finally:
            for cursor in cursors:
                cursor.close()

    @staticmethod
    def _sqlite(conn: Connection, query: str, values: list) -> list[tuple]:
        cursor = db_engine.driver_connection(conn).cursor()
        try:
            return [row for chunk in chunks(values) for row in cursor.execute(
                query + 'IN (' + ', '.join('?' * len(chunk)) + ')', chunk)]
        finally:
            cursor.close()

    def meters(self, conn: Connection, meter_ids: list[int]) -> MeterRows:
        """``{id: (name, type, unit)}`` of the meters among ``meter_ids``
        (not pipelined: open_batch reads them on PostgreSQL)."""
        if not meter_ids:
            return {}
        if self.sqlite:
            return _meter_rows(self._sqlite(conn, _METERS, meter_ids))
        meter = tables.meter
        return _meter_rows(conn.execute(
            sa.select(meter.c.id, meter.c.name, meter.c.type, meter.c.unit)
            .where(meter.c.id.in_(meter_ids))))

    def resource_ids(self, conn: Connection,
                     identities: list[str]) -> dict[str, int]:
        """``{identity_hash: internal_id}`` of the rows among
        ``identities``."""
        if not identities:
            return {}
        if self.pipelined:
            return dict(self._pipeline(conn, None,
                                       (_BY_IDENTITY, identities))[0])
        if self.sqlite:
            return dict(self._sqlite(conn, _BY_IDENTITY, identities))
        resource = tables.resource
        return {row.identity_hash: row.internal_id
                for chunk in chunks(identities) for row in conn.execute(
                    sa.select(resource.c.identity_hash,
                              resource.c.internal_id)
                    .where(resource.c.identity_hash.in_(chunk)))}
