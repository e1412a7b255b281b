"""Fast, idempotent batch writes of metering samples.

One batch is one transaction:

1. meter ids come from an in-process cache; unknown (name, type, unit)
   triples are looked up with one query, the still-missing ones inserted
   (duplicates from concurrent writers ignored) and read back; cached ids
   are re-read under a share lock, so a meter deleted by the expirer is
   noticed and created again;
2. resource rows are keyed by ``identity_hash`` (MD5 of resource_id,
   user_id, project_id, source and metadata_hash); the batch's keys are
   looked up (under a share lock) with one query per 500 keys, the missing
   rows inserted with duplicates ignored and read back; typed metadata rows
   are written for those rows only (also duplicate-safe);
3. all samples are inserted at once - PostgreSQL with psycopg 3: a binary
   ``COPY`` straight into ``sample`` (if one of the message ids is already
   stored - a redelivered batch - the unique index rejects the COPY and
   the batch is redone through a temporary table and ``INSERT ... ON
   CONFLICT DO NOTHING``); elsewhere one executemany of ``ON CONFLICT DO
   NOTHING`` (SQLite) or ``ON DUPLICATE KEY UPDATE id = id`` (MySQL)
   inserts. A sample whose ``message_id`` is already stored is skipped,
   so a redelivered batch never creates duplicates.

A lock replaces foreign keys from samples to meters and resources: each
batch holds the residual-data lock shared (a PostgreSQL advisory lock, the
``storage_lock`` row on MySQL; SQLite writers are serialised), and the
expirer takes it exclusively while it deletes meters and resources left
without samples, so a row a writer uses cannot disappear before its
samples are committed.

Deadlocks and lock timeouts are retried (up to ``max_attempts``, sleeping
``retry_interval`` seconds); an integrity error clears the caches and
redoes the batch once through the conflict-safe path.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa
from oslo_log import log
from sqlalchemy.engine import Connection, Engine

from telemeter.storage import validation
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import loading, lookup, tables
from telemeter.storage.sqlalchemy.preparation import (
    SAMPLE_COLUMNS,
    MeterKey,
    PreparedSample,
    Preparer,
    ResourceState,
    metadata_rows,
)

LOG = log.getLogger(__name__)

def _meter_sort_key(key: MeterKey) -> tuple:
    return tuple('' if part is None else part for part in key)


class SampleWriter:
    """Writes batches of metering dicts; holds the meter-id cache."""

    def __init__(self, engine: Engine, max_attempts: int = 10,
                 retry_interval: float = 10.0) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._meter_cache: dict[MeterKey, int] = {}
        self._preparer = Preparer()
        self._lookup = lookup.BatchLookup(self._dialect,
                                          engine.dialect.driver)
        self.checker = validation.SampleChecker()
        self.max_attempts = max_attempts
        self.retry_interval = retry_interval
        self._insert_sample = db_engine.insert_ignore(tables.sample,
                                                      self._dialect)
        self._use_copy = (self._dialect == 'postgresql'
                          and engine.dialect.driver == 'psycopg')
        self._insert_meter = db_engine.insert_ignore(tables.meter,
                                                     self._dialect)
        self._insert_resource = db_engine.insert_ignore(tables.resource,
                                                        self._dialect)
        self._insert_metadata = {
            table: db_engine.insert_ignore(table, self._dialect)
            for table in (tables.metadata_text, tables.metadata_bool,
                          tables.metadata_int, tables.metadata_float)}

    def forget_meters(self) -> None:
        """Drop the meter-id cache (after rows may have been deleted)."""
        self._meter_cache.clear()

    def record(self, samples: Iterable[dict]) -> None:
        """Record a batch of metering dicts in one transaction."""
        prepared = self._preparer.prepare(samples, tables.utcnow(),
                                          self.checker.drop)
        if not prepared:
            return
        safe = False
        attempt = 0
        while True:
            attempt += 1
            try:
                meters = self._write(prepared, safe)
            except sa.exc.IntegrityError as err:
                # A message id already stored (redelivery, or a concurrent
                # writer of the same samples), or a row vanished under us:
                # redo the batch through the conflict-safe path.
                self.forget_meters()
                if safe:
                    raise
                safe = True
                LOG.info('Storing the batch again without the samples '
                         'already stored (%s)', err.orig)
                continue
            except sa.exc.DBAPIError as err:
                if (not db_engine.is_retryable(err)
                        or attempt >= self.max_attempts):
                    raise
                LOG.warning('Database deadlock or lock timeout while '
                            'recording samples (attempt %(attempt)d): '
                            '%(err)s; retrying in %(interval)s seconds',
                            {'attempt': attempt, 'err': err.orig,
                             'interval': self.retry_interval})
                time.sleep(self.retry_interval)
                continue
            # Only ids of committed rows may enter the cache.
            self._meter_cache.update(meters)
            return

    def _write(self, prepared: list[PreparedSample],
               safe: bool) -> dict[MeterKey, int]:
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        try:
            return self._write_transaction(prepared, safe)
        except dbapi_error as err:
            # Raised by the driver cursor used directly (COPY): give it the
            # SQLAlchemy class (IntegrityError, OperationalError...) that
            # the retry logic understands.
            raise sa.exc.DBAPIError.instance(
                None, None, err, dbapi_error) from err

    def _write_transaction(self, prepared: list[PreparedSample],
                           safe: bool) -> dict[MeterKey, int]:
        states = {state.identity: state for _meter, state, _values
                  in prepared}
        meter_keys = {meter for meter, _state, _values in prepared}
        cached = {key: self._meter_cache[key] for key in meter_keys
                  if key in self._meter_cache}
        with db_engine.write_transaction(self._engine) as conn:
            # Under the residual-data lock: a cached meter the expirer
            # deleted meanwhile is missing now, and cannot go later.
            alive, resources = self._lookup.open_batch(
                conn, sorted(set(cached.values())), sorted(states))
            meters = {key: meter_id for key, meter_id in cached.items()
                      if meter_id in alive}
            for key in cached.keys() - meters.keys():
                del self._meter_cache[key]
            if len(meters) < len(meter_keys):
                meters.update(self._create_meters(
                    conn, meter_keys - meters.keys()))
            if len(resources) < len(states):
                resources.update(self._create_resources(
                    conn, states, states.keys() - resources.keys()))
            rows = [(meters[meter], resources[state.identity], *values)
                    for meter, state, values in prepared]
            if self._use_copy:
                if safe:
                    loading.copy_samples_safely(conn, rows)
                else:
                    loading.copy_new_samples(conn, rows)
            elif self._dialect == 'sqlite':
                loading.insert_sqlite_samples(conn, rows)
            else:
                conn.execute(self._insert_sample,
                             [dict(zip(SAMPLE_COLUMNS, row, strict=True))
                              for row in rows])
        return meters

    def _create_meters(self, conn: Connection,
                       missing: set[MeterKey]) -> dict[MeterKey, int]:
        """Ids of meters not in the cache, rows inserted if need be."""
        found = self._read_meters(conn, missing)
        missing = missing - found.keys()
        if missing:
            conn.execute(self._insert_meter, [
                {'name': name, 'type': type_, 'unit': unit}
                for name, type_, unit in sorted(missing,
                                                key=_meter_sort_key)])
            found.update(self._read_meters(conn, missing))
            missing -= found.keys()
        if missing:
            raise RuntimeError(f'Meters {sorted(missing)} could not be '
                               f'created')
        return found

    def _read_meters(self, conn: Connection,
                     keys: set[MeterKey]) -> dict[MeterKey, int]:
        meter = tables.meter
        names = sorted({key[0] for key in keys})
        found: dict[MeterKey, int] = {}
        for chunk in lookup.chunks(names):
            query = (sa.select(meter.c.id, meter.c.name, meter.c.type,
                               meter.c.unit)
                     .where(meter.c.name.in_(chunk))
                     .order_by(meter.c.id))
            for row in conn.execute(query):
                key = (row.name, row.type, row.unit)
                if key in keys:
                    found.setdefault(key, row.id)
        return found

    def _create_resources(self, conn: Connection,
                          states: dict[str, ResourceState],
                          missing: set[str]) -> dict[str, int]:
        """Insert the rows (and typed metadata rows) of resource states
        without one; return their ids."""
        ordered = sorted(missing)
        conn.execute(self._insert_resource,
                     [states[identity].insert_row() for identity in ordered])
        created = self._lookup.resource_ids(conn, ordered)
        lost = missing - created.keys()
        if lost:
            raise RuntimeError(f'{len(lost)} resource rows could not be '
                               f'created')
        rows: dict[sa.Table, list[dict]] = {}
        for identity in ordered:
            for table, row in metadata_rows(created[identity],
                                            states[identity].metadata):
                rows.setdefault(table, []).append(row)
        for table, table_rows in rows.items():
            conn.execute(self._insert_metadata[table], table_rows)
        return created
