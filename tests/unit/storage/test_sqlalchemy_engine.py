"""Engine creation, dialect helpers and the precise timestamp type."""

from __future__ import annotations

import datetime
import decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import types


@pytest.mark.parametrize('url, driver', [
    ('postgresql://u@h/db', 'postgresql+psycopg'),
    ('postgres://u@h/db', 'postgresql+psycopg'),
    ('postgresql+psycopg2://u@h/db', 'postgresql+psycopg2'),
    ('mysql://u@h/db', 'mysql+pymysql'),
    ('mysql+mysqldb://u@h/db', 'mysql+mysqldb'),
    ('sqlite:////tmp/x.db', 'sqlite'),
])
def test_normalise_url(url, driver):
    assert db_engine.normalise_url(url).drivername == driver


def test_sqlite_file_engine_pragmas(conf, tmp_path):
    engine = db_engine.create_engine(conf, f'sqlite:///{tmp_path}/a.db')
    with engine.connect() as conn:
        assert conn.exec_driver_sql('PRAGMA journal_mode').scalar() == 'wal'
        # 1 = NORMAL
        assert conn.exec_driver_sql('PRAGMA synchronous').scalar() == 1
        assert conn.exec_driver_sql('PRAGMA foreign_keys').scalar() == 1
        assert conn.exec_driver_sql('PRAGMA busy_timeout').scalar() == (
            int(db_engine.SQLITE_BUSY_TIMEOUT * 1000))
        assert conn.exec_driver_sql('PRAGMA cache_size').scalar() == (
            -db_engine.SQLITE_CACHE_KIB)
        assert conn.exec_driver_sql('PRAGMA wal_autocheckpoint').scalar() == (
            db_engine.SQLITE_WAL_CHECKPOINT_PAGES)
    engine.dispose()


def test_sqlite_synchronous_off_when_disabled(conf, tmp_path):
    conf.set_override('sqlite_synchronous', False, 'database')
    engine = db_engine.create_engine(conf, f'sqlite:///{tmp_path}/a.db')
    with engine.connect() as conn:
        assert conn.exec_driver_sql('PRAGMA synchronous').scalar() == 0
    engine.dispose()


def test_sqlite_write_transaction_takes_the_write_lock(conf, tmp_path):
    url = f'sqlite:///{tmp_path}/a.db'
    engine = db_engine.create_engine(conf, url)
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE t (x INTEGER)')
    other = sa.create_engine(url, connect_args={'timeout': 0})
    with db_engine.write_transaction(engine):
        # No statement ran yet, but BEGIN IMMEDIATE holds the lock.
        with other.connect() as conn, pytest.raises(
                sa.exc.OperationalError, match='locked'):
            conn.exec_driver_sql('INSERT INTO t VALUES (1)')
    other.dispose()
    engine.dispose()


def test_sqlite_memory_engine_shares_one_database(conf):
    engine = db_engine.create_engine(conf, 'sqlite://')
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE t (x INTEGER)')
    with engine.connect() as conn:
        assert conn.exec_driver_sql('SELECT count(*) FROM t').scalar() == 0


def test_pool_options_are_honoured(conf):
    conf.set_override('max_pool_size', 3, 'database')
    conf.set_override('max_overflow', 4, 'database')
    engine = db_engine.create_engine(
        conf, 'postgresql://u@127.0.0.1:1/none')
    assert engine.dialect.driver == 'psycopg'
    assert engine.pool.size() == 3
    assert engine.pool._max_overflow == 4
    engine.dispose()


def test_more_listed_database_options_are_honoured(conf):
    conf.set_override('pool_timeout', 7, 'database')
    conf.set_override('connection_recycle_time', 99, 'database')
    conf.set_override('connection_parameters', 'application_name=tm',
                      'database')
    engine = db_engine.create_engine(
        conf, 'postgresql://u@127.0.0.1:1/none')
    assert engine.pool._timeout == 7
    assert engine.pool._recycle == 99
    assert 'application_name=tm' in engine.url.render_as_string()
    engine.dispose()


def test_only_the_honoured_oslo_db_options_are_listed():
    from telemeter import opts, storage

    listed = {opt.dest for group, options in opts.list_opts()
              if group == 'database' for opt in options}
    assert listed == set(storage.OSLO_DB_OPTIONS) | {
        opt.dest for opt in storage.OPTS}
    assert 'slave_connection' not in listed
    assert 'use_db_reconnect' not in listed


@pytest.mark.parametrize('dialect, table_sql', [
    (postgresql.dialect(), 'ON CONFLICT DO NOTHING'),
    (sqlite.dialect(), 'ON CONFLICT DO NOTHING'),
    (mysql.dialect(), 'ON DUPLICATE KEY UPDATE id = id'),
])
def test_insert_ignore(dialect, table_sql):
    table = sa.Table('t', sa.MetaData(), sa.Column('id', sa.Integer,
                                                   primary_key=True),
                     sa.Column('v', sa.String(10), unique=True))
    statement = db_engine.insert_ignore(table, dialect.name)
    compiled = str(statement.compile(dialect=dialect))
    assert compiled.startswith('INSERT INTO t')
    assert table_sql in compiled


class FakeOrig(Exception):
    def __init__(self, *args, sqlstate=None):
        super().__init__(*args)
        self.sqlstate = sqlstate


@pytest.mark.parametrize('error, expected', [
    (sa.exc.OperationalError('x', {}, FakeOrig(sqlstate='40P01')), True),
    (sa.exc.OperationalError('x', {}, FakeOrig(sqlstate='40001')), True),
    (sa.exc.OperationalError('x', {}, FakeOrig(1213, 'Deadlock')), True),
    (sa.exc.OperationalError('x', {}, FakeOrig(1205, 'Lock wait')), True),
    (sa.exc.OperationalError('x', {}, FakeOrig('database is locked')),
     True),
    (sa.exc.IntegrityError('x', {}, FakeOrig(sqlstate='23505')), False),
    (sa.exc.OperationalError('x', {}, FakeOrig(2006, 'gone away')), False),
    (ValueError('no'), False),
])
def test_is_retryable(error, expected):
    assert db_engine.is_retryable(error) is expected


MOMENT = datetime.datetime(2024, 5, 1, 12, 0, 0, 123456)


def test_precise_timestamp_is_decimal_on_mysql():
    column_type = types.PreciseTimestamp()
    impl = column_type.load_dialect_impl(mysql.dialect())
    assert isinstance(impl, mysql.DECIMAL)
    assert (impl.precision, impl.scale) == (20, 6)
    stored = column_type.process_bind_param(MOMENT, mysql.dialect())
    assert stored == decimal.Decimal('1714564800.123456')
    assert column_type.process_result_value(stored,
                                            mysql.dialect()) == MOMENT


def test_precise_timestamp_is_datetime_elsewhere():
    column_type = types.PreciseTimestamp()
    for dialect in (postgresql.dialect(), sqlite.dialect()):
        impl = column_type.load_dialect_impl(dialect)
        assert isinstance(impl, sa.DateTime)
        assert column_type.process_bind_param(MOMENT, dialect) == MOMENT


def test_precise_timestamp_normalises_aware_values():
    column_type = types.PreciseTimestamp()
    aware = datetime.datetime(2024, 5, 1, 14, 0, 0, 123456,
                              tzinfo=datetime.timezone(
                                  datetime.timedelta(hours=2)))
    bound = column_type.process_bind_param(aware, sqlite.dialect())
    assert bound == MOMENT.replace(microsecond=123456)
    assert bound.tzinfo is None
    assert column_type.process_bind_param(None, mysql.dialect()) is None


def test_wait_to_retry_waits_only_for_a_retryable_error_with_attempts_left(
        monkeypatch, caplog):
    slept = []
    monkeypatch.setattr(db_engine.time, 'sleep', slept.append)
    deadlock = sa.exc.OperationalError('x', {}, FakeOrig(sqlstate='40P01'))
    duplicate = sa.exc.IntegrityError('x', {}, FakeOrig(sqlstate='23505'))
    assert db_engine.wait_to_retry(deadlock, 1, 3, 0.5, 'samples')
    assert 'recording samples (attempt 1)' in caplog.text
    assert not db_engine.wait_to_retry(deadlock, 3, 3, 0.5, 'samples')
    assert not db_engine.wait_to_retry(duplicate, 1, 3, 0.5, 'events')
    assert slept == [0.5]
