"""Dispatchers (collector.md §5) and their loading."""

import datetime
import logging

import pytest

from telemeter import dispatcher, sample, storage
from telemeter.dispatcher import database, file
from telemeter.publisher import utils
from telemeter.storage import models


@pytest.fixture
def sqlite_conf(conf, tmp_path):
    url = f'sqlite:///{tmp_path / "t.db"}'
    conf.set_override('connection', url, group='database')
    storage.get_connection(conf, url).upgrade()
    storage.get_connection(conf, url, 'telemeter.event.storage').upgrade()
    return conf


def _metering(name, timestamp='2031-01-02T04:04:05.000006+01:00'):
    s = sample.Sample(name, 'gauge', 'B', 3, 'u', 'p', 'r',
                      timestamp=timestamp, resource_metadata={'k': 'v'})
    return utils.meter_message_from_counter(s, 'secret')


def test_load_dispatcher_manager_keeps_configured_order(conf, tmp_path):
    conf.set_override('meter_dispatchers', ['file', 'database'])
    conf.set_override('event_dispatchers', ['database'])
    meter, event = dispatcher.load_dispatcher_manager(conf)
    assert [e.name for e in meter] == ['file', 'database']
    assert [e.name for e in event] == ['database']
    conf.set_override('meter_dispatchers', ['database', 'file'])
    meter, _ = dispatcher.load_dispatcher_manager(conf)
    assert [e.name for e in meter] == ['database', 'file']


def test_a_dispatcher_named_twice_is_loaded_once(conf, caplog):
    """meter_dispatchers is a MultiStrOpt: a name repeated in two config
    files must not write every sample twice."""
    conf.set_override('meter_dispatchers', ['file', 'database', 'file'])
    meter, _ = dispatcher.load_dispatcher_manager(conf)
    assert [e.name for e in meter] == ['file', 'database']
    assert 'lists a dispatcher more than once' in caplog.text


def test_unknown_dispatcher_leaves_an_empty_manager(conf, caplog):
    conf.set_override('meter_dispatchers', ['nosuch'])
    meter, _ = dispatcher.load_dispatcher_manager(conf)
    assert list(meter) == []
    assert ('Failed to load any dispatchers for telemeter.dispatcher.meter'
            in caplog.text)


def test_database_dispatcher_converts_timestamps_and_stores(sqlite_conf):
    meter_dispatcher = database.MeterDatabaseDispatcher(sqlite_conf)
    data = [_metering('a'), _metering('b')]
    meter_dispatcher.record_metering_data(data)
    # Converted in place to naive UTC.
    assert data[0]['timestamp'] == datetime.datetime(2031, 1, 2, 3, 4, 5, 6)
    stored = list(meter_dispatcher.conn.get_samples(storage.SampleFilter()))
    assert sorted(s.counter_name for s in stored) == ['a', 'b']
    assert stored[0].timestamp == datetime.datetime(2031, 1, 2, 3, 4, 5, 6)
    # A single dict (the UDP path) and an empty batch are accepted.
    meter_dispatcher.record_metering_data(_metering('c'))
    meter_dispatcher.record_metering_data([])
    assert len(list(meter_dispatcher.conn.get_samples(
        storage.SampleFilter()))) == 3


def test_database_dispatcher_reraises_storage_errors(sqlite_conf, caplog):
    meter_dispatcher = database.MeterDatabaseDispatcher(sqlite_conf)

    class Broken:
        def record_metering_data_batch(self, data):
            raise RuntimeError('disk full')
    meter_dispatcher._conn = Broken()
    with pytest.raises(RuntimeError):
        meter_dispatcher.record_metering_data([_metering('a')])
    assert 'Failed to record 1: disk full.' in caplog.text


def test_event_database_dispatcher_builds_events_and_skips_bad_ones(
        sqlite_conf, caplog):
    event_dispatcher = database.EventDatabaseDispatcher(sqlite_conf)
    good = models.Event('m1', 'compute.instance.create',
                        datetime.datetime(2031, 1, 1, 12),
                        [models.Trait('n', models.Trait.INT_TYPE, 5)],
                        {'payload': 1})
    with caplog.at_level(logging.ERROR):
        event_dispatcher.record_events([utils.message_from_event(good, 's'),
                                        {'message_id': 'broken'}])
    assert 'Error processing event and it will be dropped' in caplog.text
    [stored] = list(event_dispatcher.conn.get_events(storage.EventFilter()))
    assert stored.message_id == 'm1'
    assert stored.traits == [models.Trait('n', models.Trait.INT_TYPE, 5)]
    assert stored.raw == {'payload': 1}


def test_file_dispatcher_writes_one_record_per_call(conf, tmp_path):
    path = tmp_path / 'received.log'
    conf.set_override('file_path', str(path), group='dispatcher_file')
    file_dispatcher = file.FileDispatcher(conf)
    file_dispatcher.record_metering_data([{'a': 1}, {'b': 2}])
    file_dispatcher.record_events({'e': 1})
    for handler in file_dispatcher.log.handlers:
        handler.flush()
    assert path.read_text().splitlines() == ["[{'a': 1}, {'b': 2}]",
                                             "{'e': 1}"]
    for handler in list(file_dispatcher.log.handlers):
        handler.close()
        file_dispatcher.log.removeHandler(handler)


def test_file_dispatcher_without_path_does_nothing(conf, tmp_path):
    file_dispatcher = file.FileDispatcher(conf)
    file_dispatcher.record_metering_data([{'a': 1}])
    assert file_dispatcher.log is None


def test_database_dispatcher_drops_malformed_dicts_and_stores_the_rest(
        sqlite_conf, caplog):
    meter_dispatcher = database.MeterDatabaseDispatcher(sqlite_conf)
    bad_time = _metering('bad-time', timestamp='yesterday-ish')
    no_name = _metering('x')
    del no_name['counter_name']
    bad_volume = _metering('bad-volume')
    bad_volume['counter_volume'] = {'not': 'a number'}
    text_volume = _metering('text-volume')
    text_volume['counter_volume'] = '2.5'
    meter_dispatcher.record_metering_data(
        [bad_time, no_name, bad_volume, _metering('good'), text_volume])
    assert caplog.text.count('Error processing sample and it will be '
                             'dropped') == 3
    stored = {s.counter_name: s.counter_volume for s in
              meter_dispatcher.conn.get_samples(storage.SampleFilter())}
    assert stored == {'good': 3.0, 'text-volume': 2.5}


def test_database_dispatcher_accepts_an_already_converted_dict(sqlite_conf):
    """A dict retried after a failed write holds a datetime already."""
    meter_dispatcher = database.MeterDatabaseDispatcher(sqlite_conf)
    message = _metering('again')
    message['timestamp'] = datetime.datetime(2031, 1, 2, 3, 4, 5)
    meter_dispatcher.record_metering_data(message)
    [stored] = meter_dispatcher.conn.get_samples(storage.SampleFilter())
    assert stored.timestamp == datetime.datetime(2031, 1, 2, 3, 4, 5)


def test_database_dispatcher_is_idempotent_by_message_id(sqlite_conf):
    meter_dispatcher = database.MeterDatabaseDispatcher(sqlite_conf)
    batch = [_metering('a'), _metering('b')]
    meter_dispatcher.record_metering_data([dict(m) for m in batch])
    # A requeued batch is delivered again with a third sample added.
    meter_dispatcher.record_metering_data([dict(m) for m in batch]
                                          + [_metering('c')])
    stored = list(meter_dispatcher.conn.get_samples(storage.SampleFilter()))
    assert sorted(s.counter_name for s in stored) == ['a', 'b', 'c']


@pytest.mark.parametrize('spelling', [
    '2031-01-02T03:04:05.000006', '2031-01-02 03:04:05.000006',
    '2031-01-02T03:04:05.000006Z', '2031-01-02T03:04:05.000006+00:00',
    '2031-01-02T05:34:05.000006+02:30', '2031-01-02T00:04:05.000006-03:00',
    # Not isoformat()'s spellings: read by the ISO 8601 parser.
    '20310102T030405.000006Z', '2031-01-02T03:04:05.000006+0000',
])
def test_database_dispatcher_reads_every_iso8601_spelling(sqlite_conf,
                                                          spelling):
    meter_dispatcher = database.MeterDatabaseDispatcher(sqlite_conf)
    meter_dispatcher.record_metering_data([_metering('a', spelling)])
    [stored] = meter_dispatcher.conn.get_samples(storage.SampleFilter())
    assert stored.timestamp == datetime.datetime(2031, 1, 2, 3, 4, 5, 6)


def test_database_dispatcher_counts_what_it_drops_with_the_driver(
        sqlite_conf, caplog):
    """Samples the bus could never deliver usefully (no message id, no
    time) and samples the database would refuse are logged and counted in
    one place."""
    meter_dispatcher = database.MeterDatabaseDispatcher(sqlite_conf)
    no_id = _metering('no-id')
    no_id['message_id'] = None
    bad_time = _metering('bad-time', timestamp='2031-13-01T00:00:00')
    too_long = _metering('x' * 256)
    meter_dispatcher.record_metering_data(
        [no_id, _metering('good'), bad_time, too_long, 'not a dict'])
    assert meter_dispatcher.conn.checker.dropped == 4
    for reason in ('message_id is missing', "timestamp '2031-13-01T00:00:00'",
                   'counter_name is longer than 255',
                   'not a metering dict but str'):
        assert reason in caplog.text
    stored = meter_dispatcher.conn.get_samples(storage.SampleFilter())
    assert [s.counter_name for s in stored] == ['good']
