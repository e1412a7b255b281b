"""The reads that open every sample batch, per database.

A batch first takes the residual-data lock (shared), then learns which of
its cached meter ids still exist and which of its resource states already
have a row. On PostgreSQL (psycopg 3) the three statements go out in one
pipeline - one round trip instead of three, each statement still run (and
its snapshot taken) after the previous one, so the reads see everything
an expirer committed before the lock was granted. SQLite reads through
the driver cursor (SQLAlchemy's statement handling cost more than the
reads). Elsewhere (MySQL) they are SQLAlchemy statements.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import tables

CHUNK = 500
_PG_LOCK = f'SELECT pg_advisory_xact_lock_shared({db_engine.RESIDUAL_LOCK_ID})'
_PG_METERS = 'SELECT id FROM meter WHERE id = ANY(%s)'
_PG_RESOURCES = ('SELECT identity_hash, internal_id FROM resource '
                 'WHERE identity_hash = ANY(%s)')


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _sqlite_in(statement: str, count: int) -> str:
    return statement + '(' + ', '.join('?' * count) + ')'


class BatchLookup:
    """Opening reads of a batch for one engine's dialect and driver."""

    def __init__(self, dialect: str, driver: str) -> None:
        self.pipelined = dialect == 'postgresql' and driver == 'psycopg'
        self.sqlite = dialect == 'sqlite'

    def open_batch(self, conn: Connection, meter_ids: list[int],
                   identities: list[str]) -> tuple[set[int], dict[str, int]]:
        """Take the residual-data lock (shared); return the ids among
        ``meter_ids`` that still exist and ``{identity_hash: internal_id}``
        of the resource rows among ``identities``."""
        if self.pipelined:
            return self._pipelined(conn, meter_ids, identities)
        db_engine.residual_data_lock(conn, exclusive=False)
        return (self.alive_meters(conn, meter_ids),
                self.resource_ids(conn, identities))

    @staticmethod
    def _pipelined(conn: Connection, meter_ids: list[int],
                   identities: list[str]
                   ) -> tuple[set[int], dict[str, int]]:
        driver_conn = conn.connection.driver_connection
        with driver_conn.cursor() as lock, driver_conn.cursor() as meters, \
                driver_conn.cursor() as resources:
            with driver_conn.pipeline():
                lock.execute(_PG_LOCK)
                if meter_ids:
                    meters.execute(_PG_METERS, (meter_ids,), binary=True)
                if identities:
                    resources.execute(_PG_RESOURCES, (identities,),
                                      binary=True)
            # Leaving the pipeline waited for every result.
            return ({found for found, in meters.fetchall()} if meter_ids
                    else set(),
                    dict(resources.fetchall()) if identities else {})

    def alive_meters(self, conn: Connection, meter_ids: list[int]
                     ) -> set[int]:
        """The ids among ``meter_ids`` that have a ``meter`` row."""
        if not meter_ids:
            return set()
        if self.sqlite:
            cursor = conn.connection.driver_connection.cursor()
            try:
                return {found for chunk in chunks(meter_ids)
                        for found, in cursor.execute(_sqlite_in(
                            'SELECT id FROM meter WHERE id IN ',
                            len(chunk)), chunk)}
            finally:
                cursor.close()
        meter = tables.meter
        return set(conn.execute(sa.select(meter.c.id).where(
            meter.c.id.in_(meter_ids))).scalars())

    def resource_ids(self, conn: Connection,
                     identities: list[str]) -> dict[str, int]:
        """``{identity_hash: internal_id}`` of the rows among
        ``identities``."""
        found: dict[str, int] = {}
        if not identities:
            return found
        if self.pipelined:
            with conn.connection.driver_connection.cursor() as cursor:
                cursor.execute(_PG_RESOURCES, (identities,), binary=True)
                found.update(cursor.fetchall())
            return found
        if self.sqlite:
            cursor = conn.connection.driver_connection.cursor()
            try:
                for chunk in chunks(identities):
                    found.update(cursor.execute(_sqlite_in(
                        'SELECT identity_hash, internal_id FROM resource '
                        'WHERE identity_hash IN ', len(chunk)), chunk))
            finally:
                cursor.close()
            return found
        resource = tables.resource
        for chunk in chunks(identities):
            query = sa.select(resource.c.identity_hash,
                              resource.c.internal_id).where(
                resource.c.identity_hash.in_(chunk))
            found.update((row.identity_hash, row.internal_id)
                         for row in conn.execute(query))
        return found
