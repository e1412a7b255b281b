"""Event dicts off the bus back into models, and the event dispatcher."""

from __future__ import annotations

import datetime
import logging

import pytest
from oslo_utils import timeutils

from telemeter import storage
from telemeter.dispatcher import database, event_conversion
from telemeter.publisher import utils
from telemeter.storage import models

T = models.Trait


@pytest.fixture
def sqlite_conf(conf, tmp_path):
    url = f'sqlite:///{tmp_path / "events.db"}'
    conf.set_override('event_connection', url, group='database')
    storage.get_connection(conf, url, storage.EVENT_NAMESPACE).upgrade()
    return conf


def _reference(data: dict) -> models.Event:
    """The conversion the dispatcher did before (oslo.utils' parser,
    ``convert_value`` for every trait): the expected result."""
    generated = data['generated']
    if not isinstance(generated, datetime.datetime):
        generated = timeutils.parse_isotime(generated)
    return models.Event(
        message_id=data['message_id'], event_type=data['event_type'],
        generated=timeutils.normalize_time(generated),
        traits=[T(name, dtype, T.convert_value(dtype, value))
                for name, dtype, value in data['traits']],
        raw=data.get('raw', {}))


def _serialised(**changes) -> dict:
    """A signed event dict as the notifier:// publisher sends it."""
    event = models.Event('m1', 'compute.instance.create.end',
                         datetime.datetime(2031, 1, 1), [], {'k': 'v'})
    data = utils.message_from_event(event, 'secret')
    data['generated'] = '2031-01-02T04:04:05.000006+01:00'
    data.update(changes)
    return data


def _fields(event: models.Event) -> tuple:
    return (event.message_id, event.event_type, event.generated,
            [(t.name, t.dtype, type(t.value), t.value)
             for t in event.traits], event.raw)


@pytest.mark.parametrize('generated', [
    '2031-01-02T04:04:05.000006+01:00', '2031-01-02T03:04:05Z',
    '2031-01-02 03:04:05.123456', '2031-01-02T03:04:05',
    '2031-01-02T03:04:05-05:30',
    datetime.datetime(2031, 1, 2, 3, 4, 5),
    datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
])
def test_generated_time_as_before(generated):
    data = _serialised(generated=generated)
    assert (_fields(event_conversion.event_from_dict(data))
            == _fields(_reference(data)))


@pytest.mark.parametrize('trait', [
    ['name', T.TEXT_TYPE, 'vm-1'],
    ['long', T.TEXT_TYPE, 'x' * 300],
    ['bytes', T.TEXT_TYPE, b'b\xc3\xa9'],
    ['number_as_text', T.TEXT_TYPE, 42],
    ['none_text', T.TEXT_TYPE, None],
    ['untyped', T.NONE_TYPE, 'v'],
    ['untyped_none', T.NONE_TYPE, None],
    ['unknown_type', 42, 'y'],
    ['int', T.INT_TYPE, 5],
    ['int_text', T.INT_TYPE, '17'],
    ['int_bool', T.INT_TYPE, True],
    ['int_float', T.INT_TYPE, 2.7],
    ['float', T.FLOAT_TYPE, 1.5],
    ['float_int', T.FLOAT_TYPE, 2],
    ['float_text', T.FLOAT_TYPE, '0.25'],
    ['when', T.DATETIME_TYPE, '2031-01-02T03:04:05.5'],
    ['when_tz', T.DATETIME_TYPE, '2031-01-02T03:04:05+02:00'],
    ['when_z', T.DATETIME_TYPE, '2031-01-02T03:04:05Z'],
    ['when_dt', T.DATETIME_TYPE, datetime.datetime(2031, 1, 2)],
], ids=lambda trait: trait[0])
def test_trait_values_as_before(trait):
    data = _serialised(traits=[trait])
    assert (_fields(event_conversion.event_from_dict(data))
            == _fields(_reference(data)))


@pytest.mark.parametrize('change', [
    {'traits': [['size', T.INT_TYPE, 'many']]},
    {'traits': [['size', T.INT_TYPE, None]]},
    {'traits': [['when', T.DATETIME_TYPE, 'tomorrow']]},
    {'traits': [['only_two', T.INT_TYPE]]},
    {'traits': None},
    {'generated': 'yesterday'},
    {'generated': None},
    {'generated': ''},
    {'traits': [['when', T.DATETIME_TYPE, '']]},
], ids=['int-text', 'int-none', 'bad-time', 'short-trait', 'no-traits',
        'bad-generated', 'no-generated', 'empty-generated', 'empty-time'])
def test_malformed_dicts_raise_as_before(change):
    data = _serialised(**change)
    with pytest.raises((KeyError, TypeError, ValueError)):
        _reference(data)
    with pytest.raises((KeyError, TypeError, ValueError)):
        event_conversion.event_from_dict(data)


def test_missing_keys_raise():
    data = _serialised()
    del data['event_type']
    with pytest.raises(KeyError):
        event_conversion.event_from_dict(data)
    data = _serialised()
    del data['raw']
    assert event_conversion.event_from_dict(data).raw == {}


def test_dispatcher_drops_malformed_dicts_and_stores_the_rest(
        sqlite_conf, caplog):
    event_dispatcher = database.EventDatabaseDispatcher(sqlite_conf)
    good = [_serialised(message_id=f'good{i}',
                        traits=[['n', T.INT_TYPE, i]]) for i in range(3)]
    bad = [_serialised(message_id='bad-int',
                       traits=[['n', T.INT_TYPE, 'many']]),
           _serialised(message_id='bad-time', generated='yesterday'),
           {'message_id': 'no-fields'}, 'not a dict']
    with caplog.at_level(logging.ERROR):
        event_dispatcher.record_events([good[0], *bad, good[1], good[2]])
    assert caplog.text.count('Error processing event and it will be '
                             'dropped') == 4
    stored = event_dispatcher.conn.get_events(storage.EventFilter())
    assert [(e.message_id, e.traits) for e in stored] == [
        (f'good{i}', [T('n', T.INT_TYPE, i)]) for i in range(3)]
    assert stored[0].generated == datetime.datetime(2031, 1, 2, 3, 4, 5, 6)


def test_dispatcher_raises_storage_errors(sqlite_conf):
    event_dispatcher = database.EventDatabaseDispatcher(sqlite_conf)

    class Broken:
        def record_events(self, events):
            raise RuntimeError('database down')
    event_dispatcher._conn = Broken()
    with pytest.raises(RuntimeError):
        event_dispatcher.record_events([_serialised()])
