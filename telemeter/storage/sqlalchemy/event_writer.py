"""Batched, idempotent event writes.

A batch is written in one transaction (a batch over ``chunk_size``
events in one transaction per chunk):

1. every event is checked and turned into rows first
   (:mod:`event_rows`); one the database would refuse is logged, counted
   and dropped, and a message id seen earlier in the batch is a duplicate;
2. the batch's event types are resolved at once, share-locked against
   the expirer (:mod:`event_types`);
3. the event rows go in one statement, the duplicates of stored message
   ids skipped (:mod:`event_loading`), then the trait rows of the new
   events only, one statement (or COPY) per trait table.

A stored message id (redelivery, or a concurrent writer of the same
events) is logged and skipped; on MySQL the batch is redone without the
stored ones. Deadlocks and lock timeouts are retried (``max_attempts``,
``retry_interval`` seconds apart). A data error the checks did not
foresee, or an integrity error that a second try does not cure, has the
batch written again one event a transaction, so that only the event at
fault is dropped. Any other error (the database is down, the schema is
missing) propagates and nothing of the chunk is stored: the collector
requeues the bus batch.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from oslo_log import log
from sqlalchemy.engine import Connection, Engine

from telemeter.storage import models
from telemeter.storage.event_checker import EventChecker
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy.event_loading import EventLoader, chunks
from telemeter.storage.sqlalchemy.event_rows import (
    PreparedEvent,
    Rules,
    Unstorable,
    prepare,
)
from telemeter.storage.sqlalchemy.event_types import EventTypes

LOG = log.getLogger(__name__)

# Raised by a driver for a value it cannot send (sqlite3: an integer
# over 64 bits, text that is not valid Unicode).
_VALUE_ERRORS = (OverflowError, UnicodeError)


class _Isolate(Exception):
    """Write the chunk again one event at a time to find the bad one."""


class EventWriter:
    """Writes batches of Event models; holds the event type cache."""

    def __init__(self, engine: Engine, max_attempts: int = 10,
                 retry_interval: float = 10.0,
                 chunk_size: int = 1000) -> None:
        self._engine = engine
        self._rules = Rules(engine.dialect.name)
        self._loader = EventLoader(engine)
        self._types = EventTypes(engine.dialect.name)
        self.checker = EventChecker()
        self.max_attempts = max_attempts
        self.retry_interval = retry_interval
        self.chunk_size = chunk_size

    def forget_event_types(self) -> None:
        """Drop the event type cache (after a clear)."""
        self._types.forget()

    def record(self, events: Iterable[models.Event]) -> None:
        """Store a batch of events (see the module docstring)."""
        prepared: list[PreparedEvent] = []
        seen: set[str] = set()
        for event in events:
            reason: str | None = None
            try:
                item = prepare(event, self._rules)
            except (Unstorable, AttributeError) as err:
                reason = str(err)
            if reason is not None:
                self.checker.drop(getattr(event, 'message_id', None), reason)
                continue
            if item.message_id is not None:
                if item.message_id in seen:
                    _log_duplicate(item.message_id)
                    continue
                seen.add(item.message_id)
            prepared.append(item)
        for chunk in chunks(prepared, self.chunk_size):
            try:
                self._write_retrying(chunk)
            except _Isolate as err:
                LOG.warning('Storing %(count)d events one by one to find '
                            'the one the database refuses (%(err)s)',
                            {'count': len(chunk),
                             'err': err.__cause__ or err})
                for item in chunk:
                    self._write_alone(item)

    def _write_alone(self, item: PreparedEvent) -> None:
        try:
            self._write_retrying([item])
        except _Isolate as err:
            if (item.message_id is not None
                    and self._stored([item.message_id])):
                _log_duplicate(item.message_id)
            else:
                self.checker.drop(item.message_id,
                                  str(err.__cause__ or err))

    def _write_retrying(self, chunk: list[PreparedEvent]) -> None:
        safe = False
        attempt = 0
        while True:
            attempt += 1
            try:
                new_types, duplicates = self._write(chunk, safe)
            except sa.exc.IntegrityError as err:
                # MySQL: a message id stored meanwhile. Elsewhere (and on
                # MySQL once more): a row vanished, or this chunk holds
                # what the database refuses.
                self._types.forget()
                if safe:
                    raise _Isolate() from err
                safe = True
                continue
            except sa.exc.DBAPIError as err:
                if db_engine.wait_to_retry(err, attempt, self.max_attempts,
                                           self.retry_interval, 'events'):
                    continue
                if isinstance(err, sa.exc.DataError):
                    raise _Isolate() from err
                raise
            except sa.exc.StatementError as err:
                # A bound value the column type could not convert.
                raise _Isolate() from err
            except _VALUE_ERRORS as err:
                raise _Isolate() from err
            self._types.remember(new_types)
            for message_id in duplicates:
                _log_duplicate(message_id)
            return

    def _write(self, chunk: list[PreparedEvent], safe: bool
               ) -> tuple[dict[str, int], list[str]]:
        """One transaction; return the event types it created or found
        uncached and the message ids it skipped as stored."""
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        try:
            with db_engine.write_transaction(self._engine) as conn:
                return self._write_transaction(conn, chunk, safe)
        except dbapi_error as err:
            # Raised by the driver cursor used directly (COPY): give it
            # the SQLAlchemy class the retry logic understands.
            raise sa.exc.DBAPIError.instance(
                None, None, err, dbapi_error) from err

    def _write_transaction(self, conn: Connection,
                           chunk: list[PreparedEvent], safe: bool
                           ) -> tuple[dict[str, int], list[str]]:
        types, new_types = self._types.resolve(
            conn, {item.event_type for item in chunk})
        duplicates: list[str] = []
        if safe and not self._loader.returning:
            chunk, duplicates = self._without_stored(conn, chunk)
        rows = []
        anonymous = []
        for item in chunk:
            row = (item.message_id, item.generated, item.raw,
                   types[item.event_type])
            if item.message_id is None:
                anonymous.append((item, row))
            else:
                rows.append(row)
        ids = self._loader.insert_events(conn, rows)
        trait_rows: tuple[list[tuple], ...] = ([], [], [], [])
        for item in chunk:
            if item.message_id is None:
                continue
            event_id = ids.get(item.message_id)
            if event_id is None:
                duplicates.append(item.message_id)
                continue
            _add_traits(trait_rows, event_id, item)
        for item, row in anonymous:
            _add_traits(trait_rows, self._loader.insert_event(conn, row),
                        item)
        self._loader.insert_traits(conn, trait_rows)
        return new_types, duplicates

    def _without_stored(self, conn: Connection, chunk: list[PreparedEvent]
                        ) -> tuple[list[PreparedEvent], list[str]]:
        """``chunk`` without the events whose message id is stored, and
        those message ids. The database may compare message ids loosely
        (MySQL's case-insensitive collations): a stored id that matches
        none exactly has the chunk written one event at a time."""
        wanted = [item.message_id for item in chunk
                  if item.message_id is not None]
        stored = self._loader.read_ids(conn, wanted)
        if not stored:
            return chunk, []
        if len(chunk) == 1:
            return [], wanted
        if not stored.keys() <= set(wanted):
            raise _Isolate('a stored message id differs in case')
        kept = [item for item in chunk if item.message_id not in stored]
        return kept, [item.message_id for item in chunk
                      if item.message_id in stored]

    def _stored(self, message_ids: list[str]) -> bool:
        with self._engine.connect() as conn:
            return bool(self._loader.read_ids(conn, message_ids))


def _add_traits(rows: tuple[list[tuple], ...], event_id: int,
                item: PreparedEvent) -> None:
    for table_rows, traits in zip(rows, item.traits, strict=True):
        for key, value in traits:
            table_rows.append((event_id, key, value))


def _log_duplicate(message_id: str) -> None:
    LOG.info('Duplicate event detected, skipping it: %s', message_id)
