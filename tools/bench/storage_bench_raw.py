"""The raw ceiling of tools/bench/storage_bench.py: pre-built rows into
``sample`` with the bare driver, one transaction per batch.

PostgreSQL (psycopg 3): binary ``COPY``; SQLite: ``executemany`` of a plain
``INSERT`` (timestamps pre-formatted as the text SQLAlchemy stores). Both
use a raw connection of the driver's engine (same session settings and
pragmas as the writer).
"""

from __future__ import annotations

import argparse

import storage_bench_data as data
from sqlalchemy.engine import Engine
from storage_bench_cpu import CPUMeter

METHOD = {'postgresql': 'binary COPY', 'sqlite': 'executemany',
          'mysql': 'executemany'}

_COLUMNS = ('meter_id, resource_id, volume, "timestamp", recorded_at, '
            'message_signature, message_id')
_COPY = f'COPY sample ({_COLUMNS}) FROM STDIN (FORMAT BINARY)'
_COPY_TYPES = ['int4', 'int4', 'float8', 'timestamp', 'timestamp',
               'varchar', 'varchar']
_SQLITE = ('INSERT INTO sample (meter_id, resource_id, volume, "timestamp", '
           'recorded_at, message_signature, message_id) '
           'VALUES (?, ?, ?, ?, ?, ?, ?)')
_MYSQL = ('INSERT INTO sample (meter_id, resource_id, volume, `timestamp`, '
          'recorded_at, message_signature, message_id) '
          'VALUES (%s, %s, %s, %s, %s, %s, %s)')


def _copy(dbapi_conn, rows: list[tuple]) -> None:
    with dbapi_conn.cursor() as cursor:
        with cursor.copy(_COPY) as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)
    dbapi_conn.commit()


def _sqlite_rows(rows: list[tuple]) -> list[tuple]:
    return [(m, r, v, t.isoformat(' ', 'microseconds'),
             rec.isoformat(' ', 'microseconds'), sig, mid)
            for m, r, v, t, rec, sig, mid in rows]


def _executemany(dbapi_conn, statement: str, rows: list[tuple],
                 begin: bool) -> None:
    cursor = dbapi_conn.cursor()
    if begin:
        cursor.execute('BEGIN')
    cursor.executemany(statement, rows)
    cursor.close()
    dbapi_conn.commit()


def ceiling(engine: Engine, args: argparse.Namespace,
            cpu: CPUMeter) -> tuple[int, float]:
    """Load ``args.samples`` pre-built rows; return (rows, seconds spent
    in the driver)."""
    dialect = engine.dialect.name
    raw = engine.raw_connection()
    dbapi_conn = raw.driver_connection
    total = 0
    seconds = 0.0
    try:
        for rows in data.raw_batches(args.samples, args.resources,
                                     args.meters, args.batch):
            if dialect == 'sqlite':
                rows = _sqlite_rows(rows)
            with cpu.client_part(), data.Stopwatch() as watch:
                if dialect == 'postgresql':
                    _copy(dbapi_conn, rows)
                elif dialect == 'sqlite':
                    _executemany(dbapi_conn, _SQLITE, rows, begin=True)
                else:
                    _executemany(dbapi_conn, _MYSQL, rows, begin=False)
            seconds += watch.elapsed
            total += len(rows)
    finally:
        raw.close()
    return total, seconds
