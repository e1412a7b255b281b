"""Batched event writes: what only the SQL driver promises.

``SQLEventBatchTests`` runs on SQLite (``test_impl_sqlalchemy.py``),
PostgreSQL and MariaDB (``tests/functional/test_storage_sql.py``):
chunked transactions, batch order, the one-event-a-transaction fallback
for refusals the checks did not foresee and failures that must propagate
(concurrent writers and the expirer: ``sql_event_concurrency``).
``ServerEventTests`` (PostgreSQL and MariaDB) loses the server connection
in the middle of a batch.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from telemeter import storage
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import (
    event_loading,
    event_rows,
    event_writer,
)
from tests.unit.storage.driver_suite import StorageFixtures, make_event, ts
from tests.unit.storage.event_suite import as_stored, batch_events, stored


def _lost(statement: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError(
        statement, {}, Exception('server closed the connection'))


def _unchecked(broken: dict) -> object:
    """A ``prepare`` letting what the database refuses through: the
    prepared rows of ``broken[message_id]`` get an extra trait row
    ``(table index, key, value)``."""
    real = event_rows.prepare

    def prepare(event, rules):
        item = real(event, rules)
        extra = broken.get(item.message_id)
        if extra:
            index, key, value = extra
            item.traits[index].append((key, value))
        return item
    return prepare


class SQLEventBatchTests(StorageFixtures):
    """Transactions, fallback, failures and concurrency of event writes."""

    def test_events_of_equal_time_keep_their_batch_order(self, event_conn):
        events = [make_event(f'e{i}', generated=ts(0))
                  for i in (5, 3, 9, 1, 7)]
        event_conn.record_events(events)
        assert [e.message_id for e in event_conn.get_events(
            storage.EventFilter())] == ['e5', 'e3', 'e9', 'e1', 'e7']

    def test_events_without_message_id_are_all_stored(self, event_conn):
        event_conn.record_events([make_event(None), make_event('e1'),
                                  make_event(None)])
        found = event_conn.get_events(storage.EventFilter())
        assert sorted(str(e.message_id) for e in found) == [
            'None', 'None', 'e1']
        assert all(len(e.traits) == 4 for e in found)

    def test_ids_and_types_are_matched_as_the_database_compares_them(
            self, event_conn, caplog):
        """MySQL's case-insensitive collation makes ``abc`` a duplicate
        of ``ABC`` and ``type.a`` the event type ``Type.A``, as they were
        with one event a transaction; elsewhere they differ."""
        event_conn.record_events([make_event('ABC', 'Type.A')])
        with caplog.at_level(logging.INFO):
            event_conn.record_events([make_event('abc', 'type.a'),
                                      make_event('other', 'type.a')])
        found = [(e.message_id, e.event_type)
                 for e in event_conn.get_events(storage.EventFilter())]
        if event_conn.engine.dialect.name == 'mysql':
            assert found == [('ABC', 'Type.A'), ('other', 'Type.A')]
            assert ('Duplicate event detected, skipping it: abc'
                    in caplog.text)
        else:
            assert found == [('ABC', 'Type.A'), ('abc', 'type.a'),
                             ('other', 'type.a')]
        assert event_conn.checker.dropped == 0

    def test_large_batch_is_written_in_chunks(self, event_conn,
                                              monkeypatch):
        writer = event_conn._store._writer
        monkeypatch.setattr(writer, 'chunk_size', 7)
        commits = []
        sa.event.listen(event_conn.engine, 'commit',
                        lambda conn: commits.append(1))
        events = batch_events(30)
        event_conn.record_events(events)
        assert len(commits) == 5
        assert stored(event_conn) == [as_stored(e) for e in events]

    def test_failed_chunk_keeps_the_earlier_ones_and_a_redelivery_ends_it(
            self, event_conn, monkeypatch):
        writer = event_conn._store._writer
        monkeypatch.setattr(writer, 'chunk_size', 10)
        real = event_loading.EventLoader.insert_traits
        calls = []

        def insert_traits(self, conn, rows):
            calls.append(1)
            if len(calls) == 3:
                raise _lost('COPY trait_text')
            real(self, conn, rows)
        monkeypatch.setattr(event_loading.EventLoader, 'insert_traits',
                            insert_traits)
        events = batch_events(30)
        with pytest.raises(sa.exc.OperationalError):
            event_conn.record_events(events)
        assert [row[0] for row in stored(event_conn)] == [
            e.message_id for e in events[:20]]
        event_conn.record_events(events)
        assert stored(event_conn) == [as_stored(e) for e in events]
        assert event_conn.checker.dropped == 0

    @pytest.mark.parametrize('extra, phrase', [
        # The same trait twice: the primary key refuses it everywhere.
        ((1, 'size', 1), 'IntegrityError'),
        # An integer over 64 bits: a data error (SQLite: the driver's).
        ((1, 'big', 2 ** 64), 'big'),
    ], ids=['integrity', 'data'])
    def test_unforeseen_refusal_drops_only_the_event_at_fault(
            self, event_conn, monkeypatch, caplog, extra, phrase):
        monkeypatch.setattr(event_writer, 'prepare',
                            _unchecked({'bad7': extra}))
        good = batch_events(3, 'good')
        bad, = batch_events(1, 'bad', first=7)
        with caplog.at_level(logging.WARNING):
            event_conn.record_events([good[0], bad, good[1], good[2]])
        assert stored(event_conn) == [as_stored(e) for e in good]
        assert 'Storing 4 events one by one' in caplog.text
        assert 'Failed to record event bad7, dropping it' in caplog.text
        assert event_conn.checker.dropped == 1
        # The next batch takes the fast path again.
        caplog.clear()
        more = batch_events(2, 'more')
        with caplog.at_level(logging.WARNING):
            event_conn.record_events(more)
        assert 'one by one' not in caplog.text
        assert len(stored(event_conn)) == 5

    def test_failure_mid_batch_is_raised_and_stores_nothing(
            self, event_conn, monkeypatch, caplog):
        def insert_traits(self, conn, rows):
            raise _lost('INSERT INTO trait_text')
        monkeypatch.setattr(event_loading.EventLoader, 'insert_traits',
                            insert_traits)
        with pytest.raises(sa.exc.OperationalError):
            event_conn.record_events(batch_events(5))
        monkeypatch.undo()
        assert stored(event_conn) == []
        assert event_conn.checker.dropped == 0
        assert 'one by one' not in caplog.text

    def test_unreachable_database_is_raised(self, event_conn, storage_conf,
                                            db_url, tmp_path):
        url = sa.make_url(db_url)
        if url.get_backend_name() == 'sqlite':
            url = url.set(database=str(tmp_path / 'missing' / 'db'))
        else:
            url = url.set(host='127.0.0.1', port=1)
        writer = event_conn._store._writer
        engine = db_engine.create_engine(storage_conf, url)
        good_engine, writer._engine = writer._engine, engine
        try:
            with pytest.raises(sa.exc.OperationalError):
                event_conn.record_events(batch_events(3))
        finally:
            writer._engine = good_engine
            engine.dispose()
        assert event_conn.checker.dropped == 0
        assert stored(event_conn) == []


class ServerEventTests(StorageFixtures):
    """The server connection lost in the middle of a batch."""

    def test_connection_killed_mid_batch_is_raised(self, event_conn,
                                                   monkeypatch):
        engine = event_conn.engine
        real = event_loading.EventLoader.insert_traits

        def insert_traits(self, conn, rows):
            if engine.dialect.name == 'postgresql':
                pid = conn.exec_driver_sql(
                    'SELECT pg_backend_pid()').scalar_one()
                kill = f'SELECT pg_terminate_backend({int(pid)})'
            else:
                pid = conn.exec_driver_sql(
                    'SELECT CONNECTION_ID()').scalar_one()
                kill = f'KILL {int(pid)}'
            with engine.connect() as other:
                other.exec_driver_sql(kill)
                other.commit()
            real(self, conn, rows)
        monkeypatch.setattr(event_loading.EventLoader, 'insert_traits',
                            insert_traits)
        events = batch_events(10)
        with pytest.raises(sa.exc.DBAPIError) as raised:
            event_conn.record_events(events)
        assert not isinstance(raised.value, (sa.exc.DataError,
                                             sa.exc.IntegrityError))
        monkeypatch.undo()
        assert event_conn.checker.dropped == 0
        assert stored(event_conn) == []
        # The redelivered batch is stored (a new connection is made).
        event_conn.record_events(events)
        assert stored(event_conn) == [as_stored(e) for e in events]
