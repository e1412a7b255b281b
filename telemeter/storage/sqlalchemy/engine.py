"""Engine creation, transactions and dialect helpers for the SQL driver.

The engine is a plain SQLAlchemy engine configured from the oslo.db
``[database]`` options (pool size, overflow, timeout, recycle time, MySQL
SQL mode, SQLite synchronous flag). Connection retries are left to
:func:`telemeter.storage.get_connection_from_config`.

SQLite files are opened in WAL mode with ``synchronous=NORMAL`` and a busy
timeout, a 64 MiB page cache and checkpoints every 10,000 WAL pages (see
the constants); write transactions start with ``BEGIN IMMEDIATE`` so that
several processes can write the same file without ``SQLITE_BUSY`` errors on
lock upgrade.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from oslo_log import log
from sqlalchemy import event, pool
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL

LOG = log.getLogger(__name__)

SQLITE_BUSY_TIMEOUT = 60.0  # seconds
# Page cache of a SQLite connection (KiB; SQLite's default is 2 MiB): the
# sample indexes of a few hundred thousand rows fit, so a batch's random
# message-id index inserts do not read their pages back from the file.
SQLITE_CACHE_KIB = 65536
# WAL pages before an automatic checkpoint (SQLite's default: 1000, which
# a batch of 1,000 samples - a page per message-id index insert - reaches
# at nearly every commit). Checkpoints do not change what a commit
# promises; rarer ones write each hot index page back once, not per batch.
SQLITE_WAL_CHECKPOINT_PAGES = 10000
_BEGIN_OPTION = 'telemeter_begin'

# Default PostgreSQL / MySQL drivers when the URL names none.
_DEFAULT_DRIVERS = {
    'postgresql': 'postgresql+psycopg',
    'postgres': 'postgresql+psycopg',
    'mysql': 'mysql+pymysql',
}

_PG_RETRY_SQLSTATES = {'40P01', '40001'}   # deadlock, serialization failure
_MYSQL_RETRY_CODES = {1213, 1205}          # deadlock, lock wait timeout


def normalise_url(url: str | URL) -> URL:
    """Parse ``url`` and pick psycopg 3 / PyMySQL when no driver is given."""
    parsed = make_url(url)
    driver = _DEFAULT_DRIVERS.get(parsed.drivername)
    if driver:
        parsed = parsed.set(drivername=driver)
    return parsed


def _db_option(conf: cfg.ConfigOpts, name: str, default: Any) -> Any:
    try:
        return getattr(conf.database, name)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
        return default


def create_engine(conf: cfg.ConfigOpts, url: str | URL) -> Engine:
    """Create the engine for ``url`` honouring the ``[database]`` options."""
    parsed = normalise_url(url)
    params = _db_option(conf, 'connection_parameters', '')
    if params:
        extra = dict(item.split('=', 1) for item in params.split('&')
                     if '=' in item)
        parsed = parsed.update_query_dict(extra)
    debug = _db_option(conf, 'connection_debug', 0) or 0
    kwargs: dict[str, Any] = {}
    if debug >= 50:
        kwargs['echo'] = 'debug'
    elif debug >= 10:
        kwargs['echo'] = True

    backend = parsed.get_backend_name()
    if backend == 'sqlite':
        return _create_sqlite_engine(conf, parsed, kwargs)

    kwargs['pool_pre_ping'] = True
    kwargs['pool_recycle'] = _db_option(conf, 'connection_recycle_time',
                                        3600)
    kwargs['pool_size'] = _db_option(conf, 'max_pool_size', 5) or 5
    overflow = _db_option(conf, 'max_overflow', 50)
    if overflow is not None:
        kwargs['max_overflow'] = overflow
    timeout = _db_option(conf, 'pool_timeout', None)
    if timeout is not None:
        kwargs['pool_timeout'] = timeout
    if backend == 'mysql':
        # Re-reading rows another writer just committed (after an ignored
        # duplicate insert) needs READ COMMITTED, as on PostgreSQL.
        kwargs['isolation_level'] = 'READ COMMITTED'
        if 'charset' not in parsed.query:
            parsed = parsed.update_query_dict({'charset': 'utf8mb4'})
    engine = sa.create_engine(parsed, **kwargs)
    if backend == 'mysql':
        sql_mode = _db_option(conf, 'mysql_sql_mode', 'TRADITIONAL')
        if sql_mode:
            _set_mysql_sql_mode(engine, sql_mode)
    return engine


def _set_mysql_sql_mode(engine: Engine, sql_mode: str) -> None:
    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute('SET SESSION sql_mode = %s', [sql_mode])
        cursor.close()


def _create_sqlite_engine(conf: cfg.ConfigOpts, parsed: URL,
                          kwargs: dict[str, Any]) -> Engine:
    database = parsed.database
    memory = not database or database == ':memory:'
    connect_args = {'timeout': SQLITE_BUSY_TIMEOUT,
                    'check_same_thread': False}
    if memory:
        # One shared connection, or every checkout would see an empty DB.
        kwargs['poolclass'] = pool.StaticPool
    engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
    synchronous = ('NORMAL' if _db_option(conf, 'sqlite_synchronous', True)
                   else 'OFF')

    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        register_sqlite_functions(dbapi_conn)
        # Let SQLAlchemy's "begin" event below emit BEGIN itself.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f'PRAGMA busy_timeout = '
                       f'{int(SQLITE_BUSY_TIMEOUT * 1000)}')
        if not memory:
            cursor.execute('PRAGMA journal_mode = WAL')
        cursor.execute(f'PRAGMA synchronous = {synchronous}')
        cursor.execute(f'PRAGMA cache_size = -{SQLITE_CACHE_KIB}')
        if not memory:
            cursor.execute(f'PRAGMA wal_autocheckpoint = '
                           f'{SQLITE_WAL_CHECKPOINT_PAGES}')
        cursor.execute('PRAGMA foreign_keys = ON')
        cursor.close()

    @event.listens_for(engine, 'begin')
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_BEGIN_OPTION) == 'immediate':
            conn.exec_driver_sql('BEGIN IMMEDIATE')
        else:
            conn.exec_driver_sql('BEGIN')

    return engine


class _StddevPop:
    """SQLite aggregate ``stddev_pop(x)`` (Welford's algorithm)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0

    def step(self, value: Any) -> None:
        if value is None:
            return
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)

    def finalize(self) -> float | None:
        if not self.count:
            return None
        return math.sqrt(self.m2 / self.count)


def _epoch_us(text: Any) -> int | None:
    """Microseconds since the epoch of a stored SQLite timestamp."""
    if text is None:
        return None
    when = datetime.datetime.fromisoformat(text)
    delta = when - _EPOCH
    return ((delta.days * 86400 + delta.seconds) * 1_000_000
            + delta.microseconds)


_EPOCH = datetime.datetime(1970, 1, 1)


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Give a SQLite connection what the statistics queries use:
    ``stddev_pop(x)`` and ``telemeter_epoch_us(timestamp)``."""
    dbapi_conn.create_aggregate('stddev_pop', 1, _StddevPop)
    dbapi_conn.create_function('telemeter_epoch_us', 1, _epoch_us,
                               deterministic=True)


def driver_connection(conn: Connection) -> Any:
    """The DB-API connection under ``conn`` (psycopg's or sqlite3's), for
    what SQLAlchemy does not expose: COPY, pipelines, executemany."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise sa.exc.ResourceClosedError('the connection is closed')
    return driver


def for_writing(conn: Connection) -> Connection:
    """Mark ``conn`` so that its transactions are meant to write.

    On SQLite such a transaction takes the write lock up front (``BEGIN
    IMMEDIATE``), waiting up to the busy timeout for other writers.
    """
    return conn.execution_options(**{_BEGIN_OPTION: 'immediate'})


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction meant to write (see above)."""
    with engine.connect() as conn:
        conn = for_writing(conn)
        with conn.begin():
            yield conn


RESIDUAL_LOCK_ID = 0x7E1E3E7F  # PostgreSQL advisory lock key
_MYSQL_SHARED = ("SELECT name FROM storage_lock WHERE name = 'residual' "
                 "LOCK IN SHARE MODE")
_MYSQL_LOCK_ROW = "INSERT IGNORE INTO storage_lock (name) VALUES ('residual')"
_MYSQL_EXCLUSIVE = ("SELECT name FROM storage_lock WHERE name = 'residual' "
                    "FOR UPDATE")


def residual_data_lock(conn: Connection, exclusive: bool) -> None:
    """Take the residual-data lock for the current transaction.

    Sample writers take it shared; the expirer takes it exclusively while it
    deletes meter and resource rows without samples, so it waits for the
    writers in flight (and then sees their samples) and holds new ones back
    meanwhile. PostgreSQL: an advisory transaction lock; MySQL: the
    ``storage_lock`` row (``LOCK IN SHARE MODE`` / ``FOR UPDATE``); SQLite:
    nothing (writers are serialised by ``BEGIN IMMEDIATE``).
    """
    name = conn.dialect.name
    if name == 'postgresql':
        function = ('pg_advisory_xact_lock' if exclusive
                    else 'pg_advisory_xact_lock_shared')
        conn.exec_driver_sql(f'SELECT {function}({RESIDUAL_LOCK_ID})')
    elif name == 'mysql':
        statement = _MYSQL_EXCLUSIVE if exclusive else _MYSQL_SHARED
        if conn.exec_driver_sql(statement).first() is None:
            # The row is gone (a hand-made schema?): without it nothing
            # would be locked, so put it back.
            conn.exec_driver_sql(_MYSQL_LOCK_ROW)
            conn.exec_driver_sql(statement)


def insert_ignore(table: sa.Table, dialect_name: str) -> Any:
    """An INSERT that silently skips rows violating a unique constraint.

    PostgreSQL / SQLite: ``ON CONFLICT DO NOTHING``. MySQL: ``ON DUPLICATE
    KEY UPDATE <pk> = <pk>`` (a no-op update) rather than ``INSERT IGNORE``,
    which would also turn foreign-key and truncation errors into warnings.
    """
    if dialect_name == 'postgresql':
        return pg_dialect.insert(table).on_conflict_do_nothing()
    if dialect_name == 'sqlite':
        return sqlite_dialect.insert(table).on_conflict_do_nothing()
    if dialect_name == 'mysql':
        first = next(iter(table.primary_key.columns)).name
        return mysql_dialect.insert(table).on_duplicate_key_update(
            {first: sa.literal_column(first)})
    return table.insert()


def is_retryable(error: BaseException) -> bool:
    """True for deadlocks, serialization failures and lock timeouts."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    orig = error.orig
    sqlstate = (getattr(orig, 'sqlstate', None)
                or getattr(orig, 'pgcode', None))
    if sqlstate in _PG_RETRY_SQLSTATES:
        return True
    args = getattr(orig, 'args', ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_RETRY_CODES:
        return True
    return (isinstance(error, sa.exc.OperationalError)
            and 'database is locked' in str(orig))


def wait_to_retry(error: sa.exc.DBAPIError, attempt: int, max_attempts: int,
                  interval: float, what: str) -> bool:
    """Whether a write that raised ``error`` on its ``attempt``-th try may
    be tried again; if so, log it and wait ``interval`` seconds first."""
    if not is_retryable(error) or attempt >= max_attempts:
        return False
    LOG.warning('Database deadlock or lock timeout while recording '
                '%(what)s (attempt %(attempt)d): %(err)s; retrying in '
                '%(interval)s seconds',
                {'what': what, 'attempt': attempt, 'err': error.orig,
                 'interval': interval})
    time.sleep(interval)
    return True
