"""Inserting the rows of a batch of events, per database.

Event rows: PostgreSQL and SQLite insert the batch with one ``INSERT ...
ON CONFLICT DO NOTHING RETURNING id, message_id``, so a message id
already stored is skipped and the new rows' ids come back with their
message ids. On PostgreSQL (psycopg 3) the rows are four binary array
parameters read by ``unnest ... WITH ORDINALITY`` (a statement of
thousands of placeholders cost more to parse client-side than to run);
on SQLite they go through SQLAlchemy's "insertmanyvalues". MySQL has no
``RETURNING`` (MariaDB only from 10.5) and ``INSERT IGNORE`` would also
silence truncations and foreign key errors: one plain multi-row
``INSERT`` (a stored message id fails it, and the writer redoes the
batch without the stored ones), then the ids are read back by message
id.

Trait rows: PostgreSQL (psycopg 3) one binary ``COPY`` per trait table;
SQLite and MySQL one driver-level executemany per trait table (PyMySQL
sends it as multi-row ``INSERT`` statements), the datetime values
converted by the column type's own bind processor, so they are stored
exactly as SQLAlchemy stores them.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import filters, tables

TRAIT_TABLES = tuple(table for table, _dtype in filters.TRAIT_TABLES)
_DATETIME_INDEX = TRAIT_TABLES.index(tables.trait_datetime)
# PostgreSQL types of (event_id, key, value), for binary COPY.
_COPY_TYPES = (('int4', 'varchar', 'varchar'), ('int4', 'varchar', 'int8'),
               ('int4', 'varchar', 'float8'), ('int4', 'varchar', 'timestamp'))
_LOOKUP_CHUNK = 500
_EVENT_COLUMNS = ('message_id', 'generated', 'raw', 'event_type_id')
_PG_INSERT_EVENTS = (
    'INSERT INTO event (message_id, generated, raw, event_type_id) '
    'SELECT message_id, generated, raw, event_type_id FROM unnest('
    '%s::varchar[], %s::timestamp[], %s::text[], %s::int4[]) '
    'WITH ORDINALITY AS batch (message_id, generated, raw, event_type_id, '
    'ord) ORDER BY ord ON CONFLICT DO NOTHING RETURNING id, message_id')


def chunks(items: list, size: int = _LOOKUP_CHUNK) -> Iterator[list]:
    """``items`` in lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


class EventLoader:
    """The insert statements of one engine's database."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self.returning = dialect.name in ('postgresql', 'sqlite')
        self.copy = (dialect.name == 'postgresql'
                     and dialect.driver == 'psycopg')
        event = tables.event
        if self.returning:
            self._insert_events = db_engine.insert_ignore(
                event, dialect.name).returning(event.c.id,
                                               event.c.message_id)
        else:
            self._insert_events = event.insert()
        key = dialect.identifier_preparer.quote('key')
        mark = '?' if dialect.paramstyle == 'qmark' else '%s'
        # Table and column names are the schema's own: nothing from input.
        self._trait_inserts = tuple(
            f'INSERT INTO {table.name} (event_id, {key}, value) '  # noqa: S608
            f'VALUES ({mark}, {mark}, {mark})' for table in TRAIT_TABLES)
        self._trait_copies = tuple(
            f'COPY {table.name} (event_id, {key}, value) FROM STDIN '
            f'(FORMAT BINARY)' for table in TRAIT_TABLES)
        # The dialect's own processor (a TypeDecorator's bind_processor
        # alone would use the generic DateTime's).
        self._time = tables.trait_datetime.c.value.type.dialect_impl(
            dialect).bind_processor(dialect)

    def insert_events(self, conn: Connection,
                      rows: list[tuple]) -> dict[str, int]:
        """Insert event rows ``(message_id, generated, raw,
        event_type_id)`` (no NULL message id) in order; return
        ``{message_id: id}`` of the rows inserted. PostgreSQL / SQLite
        skip a stored message id; MySQL raises IntegrityError for it."""
        if not rows:
            return {}
        if self.copy:
            driver_conn = db_engine.driver_connection(conn)
            with driver_conn.cursor() as cursor:
                columns = [list(column)
                           for column in zip(*rows, strict=True)]
                cursor.execute(_PG_INSERT_EVENTS, columns, binary=True)
                return {message_id: event_id
                        for event_id, message_id in cursor.fetchall()}
        params = [dict(zip(_EVENT_COLUMNS, row, strict=True))
                  for row in rows]
        if self.returning:
            return {message_id: event_id for event_id, message_id
                    in conn.execute(self._insert_events, params)}
        conn.execute(self._insert_events, params)
        return self.read_ids(conn, [row[0] for row in rows])

    @staticmethod
    def insert_event(conn: Connection, row: tuple) -> int:
        """Insert one event row (a NULL message id is never a
        duplicate); return its id."""
        result = conn.execute(tables.event.insert(),
                              dict(zip(_EVENT_COLUMNS, row, strict=True)))
        key = result.inserted_primary_key
        if key is None:
            raise RuntimeError('the database returned no event id')
        return key[0]

    @staticmethod
    def read_ids(conn: Connection, message_ids: list[str]
                 ) -> dict[str, int]:
        """``{message_id: id}`` of the stored events among
        ``message_ids``, keyed by the stored message id."""
        event = tables.event
        found: dict[str, int] = {}
        for chunk in chunks(message_ids):
            found.update((row.message_id, row.id) for row in conn.execute(
                sa.select(event.c.id, event.c.message_id).where(
                    event.c.message_id.in_(chunk))))
        return found

    def insert_traits(self, conn: Connection,
                      rows: tuple[list[tuple], ...]) -> None:
        """Insert ``(event_id, key, value)`` rows, one list per trait
        table in ``TRAIT_TABLES`` order."""
        for index, table_rows in enumerate(rows):
            if not table_rows:
                continue
            if self.copy:
                self._copy(conn, index, table_rows)
                continue
            if index == _DATETIME_INDEX and self._time is not None:
                convert = self._time
                table_rows = [(event_id, key, convert(value))
                              for event_id, key, value in table_rows]
            conn.exec_driver_sql(self._trait_inserts[index], table_rows)

    def _copy(self, conn: Connection, index: int,
              table_rows: list[tuple]) -> None:
        driver_conn = db_engine.driver_connection(conn)
        with driver_conn.cursor() as cursor:
            with cursor.copy(self._trait_copies[index]) as copy:
                copy.set_types(list(_COPY_TYPES[index]))
                for row in table_rows:
                    copy.write_row(row)
