"""Batched event writes, for every driver (``EventBatchTests``).

Run on SQLite (``test_impl_sqlalchemy.py``), PostgreSQL and MariaDB
(``tests/functional/test_storage_sql.py``), mongomock-ng
(``test_impl_mongodb.py``) and nx-27017
(``tests/functional/test_storage_mongodb.py``). What only the SQL driver
promises is in ``sql_event_suite``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

import pytest

from telemeter import storage
from telemeter.storage import models
from tests.unit.storage.driver_suite import StorageFixtures, make_event, ts

SQL = frozenset({'sqlite', 'postgresql', 'mysql'})
ALL = SQL | {'mongodb'}


def backend(conn) -> str:
    """``sqlite``, ``postgresql``, ``mysql`` or ``mongodb``."""
    engine = getattr(conn, 'engine', None)
    return engine.dialect.name if engine is not None else 'mongodb'


def batch_events(count: int, prefix: str = 'b',
                 first: int = 0) -> list[models.Event]:
    """Events of four types with 6 to 10 traits of every type, no two
    alike (a trait given to the wrong event would show)."""
    events = []
    for index in range(first, first + count):
        traits = [models.Trait(f'text{k}', models.Trait.TEXT_TYPE,
                               f'{prefix}{index}-{k}')
                  for k in range(index % 5)]
        traits += [
            models.Trait('project_id', models.Trait.TEXT_TYPE,
                         f'project-{index % 3}'),
            models.Trait('size', models.Trait.INT_TYPE, index * 7),
            models.Trait('ratio', models.Trait.FLOAT_TYPE, index / 4),
            models.Trait('launched_at', models.Trait.DATETIME_TYPE,
                         ts(1000 + index)),
            models.Trait('note', models.Trait.NONE_TYPE, None),
            models.Trait('flag', models.Trait.INT_TYPE, -index),
        ]
        events.append(models.Event(f'{prefix}{index}', f'type.{index % 4}',
                                   ts(index), traits, {'n': index}))
    return events


def as_stored(event: models.Event) -> tuple:
    """What get_events returns for ``event``, as a comparable tuple."""
    traits = sorted((t.name, t.dtype or models.Trait.TEXT_TYPE, t.value)
                    for t in event.traits)
    return (event.message_id, event.event_type, event.generated, traits,
            event.raw)


def stored(conn) -> list[tuple]:
    """Every stored event (oldest first) as :func:`as_stored` tuples."""
    return [as_stored(event)
            for event in conn.get_events(storage.EventFilter())]


def _set_trait(name: str, dtype: int, value) -> Callable:
    def change(event: models.Event) -> None:
        event.traits = [t for t in event.traits if t.name != name]
        event.traits.append(models.Trait(name, dtype, value))
    return change


def _set(field: str, value) -> Callable:
    def change(event: models.Event) -> None:
        setattr(event, field, value)
    return change


def _add_twice(event: models.Event) -> None:
    event.traits.append(models.Trait('size', models.Trait.INT_TYPE, 1))


# (case, change of the bad event, backends refusing it, log phrases)
POISON_CASES = [
    ('nul-in-text', _set_trait('name', 1, 'a\x00b'), {'postgresql'},
     ['trait name contains a NUL character']),
    ('long-event-type', _set('event_type', 't' * 256),
     {'postgresql', 'mysql'}, ['event_type is longer than 255']),
    ('long-message-id', _set('message_id', 'bad' + 'm' * 60),
     {'postgresql', 'mysql'}, ['message_id is longer than 50']),
    ('long-trait-name', _set_trait('n' * 256, 1, 'x'),
     {'postgresql', 'mysql'}, ['trait name is longer than 255']),
    ('nan-float', _set_trait('ratio', 3, float('nan')), {'mysql'},
     ['is not finite']),
    ('infinite-float', _set_trait('ratio', 3, float('inf')), {'mysql'},
     ['is not finite']),
    ('huge-int', _set_trait('size', 2, 2 ** 64), ALL,
     ['does not fit 64 bits', 'can only handle up to 8-byte ints']),
    ('trait-twice', _add_twice, SQL, ['trait size appears twice']),
    ('unknown-type', _set_trait('x', 42, 'y'), ALL, ['unknown type 42']),
    ('not-an-integer', _set_trait('size', 2, 'many'), ALL,
     ["invalid literal for int() with base 10: 'many'"]),
    ('unreadable-generated', _set('generated', 'yesterday'), ALL,
     ["generated 'yesterday' cannot be parsed", 'yesterday']),
    ('invalid-unicode', _set_trait('name', 1, 'a\ud800'), ALL,
     ['is not valid Unicode text', 'surrogates not allowed']),
    ('event-type-not-text', _set('event_type', None), SQL,
     ['event_type is a NoneType, not text']),
]


class EventBatchTests(StorageFixtures):
    """A batch of events is stored whole, each event once."""

    def test_batch_is_stored_whole(self, event_conn):
        events = batch_events(300)
        event_conn.record_events(events)
        assert stored(event_conn) == [as_stored(e) for e in events]
        assert list(event_conn.get_event_types()) == [
            'type.0', 'type.1', 'type.2', 'type.3']
        of_type = [e for e in events if e.event_type == 'type.1']
        assert sorted((t.name, t.dtype, t.value) for t in
                      event_conn.get_traits('type.1')) == sorted(
            (t.name, t.dtype or 1, t.value) for e in of_type
            for t in e.traits)
        assert sorted(t.value for t in event_conn.get_traits(
            'type.1', 'size')) == [i * 7 for i in range(1, 300, 4)]
        names = {(t.dtype or 1, t.name) for e in of_type for t in e.traits}
        assert list(event_conn.get_trait_types('type.1')) == [
            {'name': name, 'data_type': dtype}
            for dtype, name in sorted(names)]
        assert event_conn.checker.dropped == 0

    def test_duplicates_within_a_batch_are_skipped(self, event_conn,
                                                   caplog):
        events = batch_events(3)
        again = make_event('b1', 'other.type')
        with caplog.at_level(logging.INFO):
            event_conn.record_events([events[0], events[1], again,
                                      events[2]])
        assert 'Duplicate event detected, skipping it: b1' in caplog.text
        assert stored(event_conn) == [as_stored(e) for e in events]

    def test_redelivered_batch_stores_only_the_new_events(self, event_conn,
                                                          caplog):
        events = batch_events(20)
        event_conn.record_events(events[:12])
        with caplog.at_level(logging.INFO):
            event_conn.record_events(events)
        assert caplog.text.count('Duplicate event detected') == 12
        assert stored(event_conn) == [as_stored(e) for e in events]
        # Each trait once: no trait rows were added to the stored events.
        for event_type in ('type.0', 'type.1', 'type.2', 'type.3'):
            assert len(event_conn.get_traits(event_type)) == sum(
                len(e.traits) for e in events
                if e.event_type == event_type)
        assert event_conn.checker.dropped == 0

    @pytest.mark.parametrize('case, change, refused_by, phrases',
                             POISON_CASES,
                             ids=[case[0] for case in POISON_CASES])
    def test_poison_event_is_dropped_and_its_batch_stored(
            self, event_conn, caplog, case, change, refused_by, phrases):
        good = batch_events(3, 'good')
        bad, = batch_events(1, 'bad', first=7)
        change(bad)
        with caplog.at_level(logging.ERROR):
            event_conn.record_events([good[0], bad, good[1], good[2]])
        found = [e.message_id
                 for e in event_conn.get_events(storage.EventFilter())]
        if backend(event_conn) in refused_by:
            assert found == ['good0', 'good1', 'good2']
            assert event_conn.checker.dropped == 1
            assert f'Failed to record event {bad.message_id}' in caplog.text
            assert any(phrase in caplog.text for phrase in phrases)
        else:
            assert sorted(found) == sorted(['good0', 'good1', 'good2',
                                            bad.message_id])
            assert event_conn.checker.dropped == 0
        # The good events are whole.
        assert [row for row in stored(event_conn)
                if row[0].startswith('good')] == [as_stored(e)
                                                  for e in good]

    def test_aware_generated_time_is_stored_as_naive_utc(self,
                                                         event_conn):
        event = make_event('again', generated=datetime.datetime(
            2024, 5, 1, 14, tzinfo=datetime.timezone(
                datetime.timedelta(hours=2))))
        event_conn.record_events([event])
        [found] = event_conn.get_events(storage.EventFilter())
        assert found.generated == datetime.datetime(2024, 5, 1, 12)
