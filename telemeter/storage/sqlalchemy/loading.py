"""Inserting prepared sample rows, per database.

PostgreSQL (psycopg 3): an optimistic binary ``COPY`` straight into
``sample``, or - when a message id may already be stored - ``COPY`` into a
temporary table and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
SQLite: one driver-level executemany of ``INSERT ... ON CONFLICT DO
NOTHING``. (MySQL uses SQLAlchemy's ``ON DUPLICATE KEY UPDATE``, see the
writer.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Connection

from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy.preparation import SAMPLE_COLUMNS

_MESSAGE_ID = SAMPLE_COLUMNS.index('message_id')
_LOAD_TABLE = 'telemeter_sample_load'
_QUOTED = ', '.join(f'"{name}"' for name in SAMPLE_COLUMNS)
_CREATE_LOAD_TABLE = (
    f'CREATE TEMPORARY TABLE IF NOT EXISTS {_LOAD_TABLE} ('
    'ord integer, meter_id integer, resource_id integer, '
    'volume double precision, "timestamp" timestamp, '
    'recorded_at timestamp, message_signature varchar(64), '
    'message_id varchar(128)) ON COMMIT DELETE ROWS')
_COPY_LOAD_TABLE = f'COPY {_LOAD_TABLE} (ord, {_QUOTED}) FROM STDIN'
_COPY_SAMPLE = f'COPY sample ({_QUOTED}) FROM STDIN'
_INSERT_FROM_LOAD_TABLE = (
    f'INSERT INTO sample ({_QUOTED}) SELECT {_QUOTED} '  # noqa: S608
    f'FROM {_LOAD_TABLE} '
    'ORDER BY ord ON CONFLICT DO NOTHING')
_COPY_SAMPLE_BINARY = f'{_COPY_SAMPLE} (FORMAT BINARY)'
# PostgreSQL types of SAMPLE_COLUMNS, for binary COPY.
_COPY_TYPES = ['int4', 'int4', 'float8', 'timestamp', 'timestamp',
               'varchar', 'varchar']
_STORED_IDS = 'SELECT message_id FROM sample WHERE message_id = ANY(%s)'


def copy_samples_safely(conn: Connection, rows: list[tuple]) -> None:
    """PostgreSQL (psycopg 3): COPY the batch into a session temporary
    table, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.

    Safe against concurrent writers of the same message ids; the batch
    order is kept so sample ids grow in batch order.
    """
    conn.exec_driver_sql(_CREATE_LOAD_TABLE)
    with db_engine.driver_connection(conn).cursor() as cursor:
        with cursor.copy(_COPY_LOAD_TABLE) as copy:
            for index, row in enumerate(rows):
                copy.write_row((index, *row))
    conn.exec_driver_sql(_INSERT_FROM_LOAD_TABLE)


def copy_new_samples(conn: Connection, rows: list[tuple],
                      precheck: bool = False) -> None:
    """PostgreSQL (psycopg 3): binary COPY straight into ``sample``.

    Twice as fast as going through a temporary table. Optimistic: a message
    id already stored (a redelivered batch, or a concurrent writer of the
    same samples) makes the COPY fail with a unique violation, and the
    caller stores the batch with :func:`copy_samples_safely` instead. With
    ``precheck`` the stored message ids are looked up and left out first.
    """
    with db_engine.driver_connection(conn).cursor() as cursor:
        ids = precheck and [row[_MESSAGE_ID] for row in rows
                            if row[_MESSAGE_ID] is not None]
        if ids:
            # Binary parameters: no per-string quoting of the text array.
            cursor.execute(_STORED_IDS, (ids,), binary=True)
            stored = {found for found, in cursor.fetchall()}
            if stored:
                rows = [row for row in rows
                        if row[_MESSAGE_ID] not in stored]
        with sample_copy(cursor) as copy:
            write_row = copy.write_row
            for row in rows:
                write_row(row)


@contextlib.contextmanager
def sample_copy(cursor: Any) -> Iterator[Any]:
    """PostgreSQL (psycopg 3): a binary ``COPY`` into ``sample`` on
    ``cursor``; ``write_row()`` takes the values of SAMPLE_COLUMNS."""
    with cursor.copy(_COPY_SAMPLE_BINARY) as copy:
        copy.set_types(_COPY_TYPES)
        yield copy


_SQLITE_INSERT = (
    'INSERT INTO sample ("meter_id", "resource_id", "volume", "timestamp", '
    '"recorded_at", "message_signature", "message_id") '
    'VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')


def insert_sqlite_samples(conn: Connection, rows: list[tuple]) -> None:
    """SQLite: one executemany of ``INSERT ... ON CONFLICT DO NOTHING`` on
    the driver cursor (SQLAlchemy's per-value type processing of an
    executemany cost more than the insert itself). Timestamps are bound as
    the text SQLAlchemy's SQLite DateTime stores (always with
    microseconds)."""
    recorded_at = None
    recorded_text = None
    values: list[Any] = []
    append = values.append
    for (meter_id, resource_id, volume, timestamp, recorded, signature,
         message_id) in rows:
        if recorded is not recorded_at:
            recorded_at = recorded
            recorded_text = recorded.isoformat(' ', 'microseconds')
        append((meter_id, resource_id, volume,
                timestamp.isoformat(' ', 'microseconds'), recorded_text,
                signature, message_id))
    cursor = db_engine.driver_connection(conn).cursor()
    try:
        cursor.executemany(_SQLITE_INSERT, values)
    finally:
        cursor.close()
