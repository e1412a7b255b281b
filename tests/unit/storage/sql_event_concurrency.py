"""Batched event writes next to other writers and the expirer (SQL).

``SQLEventConcurrencyTests`` runs on SQLite (``test_impl_sqlalchemy.py``),
PostgreSQL and MariaDB (``tests/functional/test_storage_sql.py``):
concurrent writers store each event once; the expirer neither deletes an
event type a writer is using nor leaves trait rows without their event
(the trait tables have no foreign keys since ``event_002``); a database
at ``event_001`` is upgraded in place.
"""

from __future__ import annotations

import datetime
import multiprocessing
import threading

import sqlalchemy as sa

from telemeter import storage
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import (
    event_loading,
    event_rows,
    migration,
    tables,
)
from tests.unit.storage import workers
from tests.unit.storage.driver_suite import StorageFixtures, make_event
from tests.unit.storage.event_suite import as_stored, batch_events, stored


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(
            table)).scalar_one()


def _trait_rows(engine: sa.Engine) -> int:
    return sum(_count(engine, table)
               for table in event_loading.TRAIT_TABLES)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class SQLEventConcurrencyTests(StorageFixtures):
    """Event writers, other writers and the expirer."""

    def test_concurrent_writers_store_each_event_once(self, event_conn,
                                                      db_url):
        batches = [batch_events(40, first=b * 30) for b in range(6)]
        expected = {e.message_id: e for batch in batches for e in batch}
        context = multiprocessing.get_context('spawn')
        children = [context.Process(target=workers.write_event_batches,
                                    args=(db_url, batches, start))
                    for start in (0, 0, 2, 4)]
        for child in children:
            child.start()
        for child in children:
            child.join(120)
        assert [c.exitcode for c in children] == [0] * len(children)
        assert sorted(stored(event_conn)) == sorted(
            as_stored(e) for e in expected.values())
        assert _count(event_conn.engine, tables.event) == len(expected)
        assert _trait_rows(event_conn.engine) == sum(
            len(e.traits) for e in expected.values())

    def test_cached_event_type_removed_by_another_expirer(
            self, event_conn, storage_conf, db_url):
        old = _utcnow() - datetime.timedelta(days=1)
        event_conn.record_events([make_event('old', 'type.x', old)])
        other = storage.get_connection(storage_conf, db_url,
                                       storage.EVENT_NAMESPACE)
        try:
            other.clear_expired_event_data(60)
        finally:
            other.dispose()
        assert list(event_conn.get_event_types()) == []
        # event_conn still caches the deleted type's id.
        event_conn.record_events([make_event('new', 'type.x')])
        [found] = event_conn.get_events(storage.EventFilter())
        assert (found.message_id, found.event_type) == ('new', 'type.x')
        assert list(event_conn.get_event_types()) == ['type.x']

    def test_expirer_keeps_an_event_type_a_writer_is_using(
            self, event_conn, storage_conf, db_url):
        """Deterministic form of the race: a writer transaction has
        resolved an event type without stored events (what the expirer
        deletes) and is inserting its event; the expirer must leave the
        type (it waits for the writer, then finds the type in use)."""
        now = _utcnow()
        event_conn.record_events([make_event('first', 'type.x', now)])
        engine = event_conn.engine
        with engine.begin() as conn:
            for table in event_loading.TRAIT_TABLES:
                conn.execute(table.delete())
            conn.execute(tables.event.delete())
        writer = event_conn._store._writer
        item = event_rows.prepare(make_event('second', 'type.x', now),
                                  event_rows.Rules(engine.dialect.name))
        done = threading.Event()
        errors: list[BaseException] = []

        def expire() -> None:
            expirer = storage.get_connection(storage_conf, db_url,
                                             storage.EVENT_NAMESPACE)
            try:
                expirer.clear_expired_event_data(3600)
            except BaseException as err:  # reported by the test
                errors.append(err)
            finally:
                expirer.dispose()
                done.set()

        with db_engine.write_transaction(engine) as conn:
            types, _new = writer._types.resolve(conn, {'type.x'})
            thread = threading.Thread(target=expire)
            thread.start()
            # The expirer waits for this transaction.
            assert not done.wait(1.0)
            writer._loader.insert_events(conn, [
                (item.message_id, item.generated, item.raw,
                 types['type.x'])])
        thread.join(60)
        assert not thread.is_alive()
        assert errors == []
        [found] = event_conn.get_events(storage.EventFilter())
        assert (found.message_id, found.event_type) == ('second', 'type.x')
        assert list(event_conn.get_event_types()) == ['type.x']


    def test_expirer_never_orphans_traits_of_concurrent_writers(
            self, event_conn, db_url):
        """Trait rows have no foreign key: while two writers store
        batches the expirer removes at once (and whose event types it
        then finds unused), no trait row may be left without its event
        and no event that is not expired may be lost or lose a trait."""
        rounds = 10
        context = multiprocessing.get_context('spawn')
        children = [context.Process(target=workers.write_expiring_events,
                                    args=(db_url, writer, rounds))
                    for writer in range(2)]
        children.append(context.Process(
            target=workers.expire_events_repeatedly, args=(db_url, 4.0)))
        for child in children:
            child.start()
        for child in children:
            child.join(180)
        assert [c.exitcode for c in children] == [0] * len(children)
        event = tables.event
        with event_conn.engine.connect() as conn:
            for table in event_loading.TRAIT_TABLES:
                orphans = conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(
                        ~sa.exists().where(event.c.id == table.c.event_id))
                ).scalar_one()
                assert orphans == 0, table.name
        kept = event_conn.get_events(storage.EventFilter(
            start_timestamp=_utcnow() - datetime.timedelta(hours=1)))
        expected = {f'w{w}-{i}-keep0': batch_events(1, f'w{w}-{i}-keep')[0]
                    for w in range(2) for i in range(rounds)}
        assert sorted(e.message_id for e in kept) == sorted(expected)
        for found in kept:
            assert as_stored(found)[3] == as_stored(
                expected[found.message_id])[3]
        event_conn.clear_expired_event_data(86400)
        assert all(not name.startswith('old.')
                   for name in event_conn.get_event_types())

    def test_upgrade_from_event_001_keeps_the_events(self, event_conn):
        """A database at event_001 (trait foreign keys) is written by
        this writer, then upgraded in place and written again."""
        event_conn.clear()
        engine = event_conn.engine
        migration.upgrade(engine, migration.EVENT, revision='event_001')
        inspector = sa.inspect(engine)
        assert inspector.get_foreign_keys('trait_int')[0]['name'] == (
            'fk_trait_int_event_id')
        events = batch_events(20)
        event_conn.record_events(events[:10])
        event_conn.upgrade()
        assert (migration.current_revision(engine, migration.EVENT)
                == migration.head_revision(migration.EVENT))
        inspector = sa.inspect(engine)
        for table in event_loading.TRAIT_TABLES:
            assert inspector.get_foreign_keys(table.name) == []
            assert inspector.get_indexes(table.name) == []
        assert [fk['name'] for fk in inspector.get_foreign_keys(
            'event')] == ['fk_event_type_id']
        event_conn.record_events(events)
        assert stored(event_conn) == [as_stored(e) for e in events]
