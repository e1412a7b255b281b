"""Fast, idempotent batch writes of metering samples.

One batch is one transaction: the samples are prepared
(:mod:`~telemeter.storage.sqlalchemy.preparation`), their meter and
resource ids found or created
(:mod:`~telemeter.storage.sqlalchemy.resolution`) and the samples inserted
at once - PostgreSQL with psycopg 3: a binary ``COPY`` straight into
``sample`` (if one of the message ids is already stored - a redelivered
batch - the unique index rejects the COPY and the batch is redone through a
temporary table and ``INSERT ... ON CONFLICT DO NOTHING``); elsewhere one
executemany of ``ON CONFLICT DO NOTHING`` (SQLite) or ``ON DUPLICATE KEY
UPDATE id = id`` (MySQL) inserts. A sample whose ``message_id`` is already
stored is skipped, so a redelivered batch never creates duplicates.

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

from collections.abc import Iterable

import sqlalchemy as sa
from oslo_log import log
from sqlalchemy.engine import Engine

from telemeter.storage import validation
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import loading, lookup, resolution, tables
from telemeter.storage.sqlalchemy.preparation import (
    SAMPLE_COLUMNS,
    MeterKey,
    PreparedSample,
    Preparer,
)

LOG = log.getLogger(__name__)

class SampleWriter:
    """Writes batches of metering dicts; holds the meter-id cache."""

    def __init__(self, engine: Engine, max_attempts: int = 10,
                 retry_interval: float = 10.0) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._preparer = Preparer()
        self._lookup = lookup.BatchLookup(self._dialect,
                                          engine.dialect.driver)
        self._ids = resolution.IdResolver(self._dialect, self._lookup)
        self.checker = validation.SampleChecker()
        self.max_attempts = max_attempts
        self.retry_interval = retry_interval
        self._insert_sample = db_engine.insert_ignore(tables.sample,
                                                      self._dialect)
        self._use_copy = (self._dialect == 'postgresql'
                          and engine.dialect.driver == 'psycopg')

    def forget_ids(self) -> None:
        """Drop the meter-id cache (after rows may have been deleted)."""
        self._ids.meter_ids.clear()

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
                self.forget_ids()
                if safe:
                    raise
                safe = True
                LOG.info('Storing the batch again without the samples '
                         'already stored (%s)', err.orig)
                continue
            except sa.exc.DBAPIError as err:
                if db_engine.wait_to_retry(err, attempt, self.max_attempts,
                                           self.retry_interval, 'samples'):
                    continue
                raise
            # Only ids of committed rows may enter the cache.
            self._ids.meter_ids.update(meters)
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
        with db_engine.write_transaction(self._engine) as conn:
            meters, resources = self._ids.resolve(conn, prepared)
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
