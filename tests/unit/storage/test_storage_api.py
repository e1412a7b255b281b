"""telemeter.storage: filters, exceptions and driver loading."""

from __future__ import annotations

import datetime

import pytest

from telemeter import storage
from telemeter.storage import impl_log, impl_sqlalchemy


def test_sample_filter_defaults():
    sample_filter = storage.SampleFilter()
    for name in ('user', 'project', 'start_timestamp', 'start_timestamp_op',
                 'end_timestamp', 'end_timestamp_op', 'resource', 'meter',
                 'source', 'message_id'):
        assert getattr(sample_filter, name) is None
    assert sample_filter.metaquery == {}


def test_sample_filter_normalises_timestamps():
    sample_filter = storage.SampleFilter(
        start_timestamp='2024-05-01T14:00:00+02:00',
        end_timestamp=datetime.datetime(2024, 5, 1, 13, 0,
                                        tzinfo=datetime.UTC),
        metaquery={'metadata.a': 1})
    assert sample_filter.start_timestamp == datetime.datetime(2024, 5, 1, 12)
    assert sample_filter.end_timestamp == datetime.datetime(2024, 5, 1, 13)
    assert sample_filter.end_timestamp.tzinfo is None
    assert sample_filter.metaquery == {'metadata.a': 1}


def test_event_filter_defaults_and_timestamps():
    event_filter = storage.EventFilter(
        start_timestamp='2024-05-01T12:00:00Z', event_type='a.b')
    assert event_filter.traits_filter == []
    assert event_filter.start_timestamp == datetime.datetime(2024, 5, 1, 12)
    assert event_filter.end_timestamp is None
    assert event_filter.event_type == 'a.b'
    assert event_filter.admin_proj is None
    assert event_filter.message_id is None



def test_filters_take_the_specs_positional_order():
    sample_filter = storage.SampleFilter(
        'u', 'p', '2024-05-01T12:00:00Z', 'gt', None, 'le', 'r', 'm', 's',
        'id', None)
    assert (sample_filter.user, sample_filter.project,
            sample_filter.start_timestamp_op, sample_filter.end_timestamp_op,
            sample_filter.resource, sample_filter.meter, sample_filter.source,
            sample_filter.message_id, sample_filter.metaquery) == (
        'u', 'p', 'gt', 'le', 'r', 'm', 's', 'id', {})
    event_filter = storage.EventFilter(None, None, 'a.b', 'id', None, 'p')
    assert (event_filter.event_type, event_filter.message_id,
            event_filter.traits_filter, event_filter.admin_proj) == (
        'a.b', 'id', [], 'p')


def test_filters_are_values_that_do_not_change():
    assert storage.SampleFilter(meter='cpu') == storage.SampleFilter(
        meter='cpu', metaquery=None)
    assert storage.EventFilter(event_type='a') != storage.EventFilter()
    with pytest.raises(AttributeError):
        storage.SampleFilter().meter = 'cpu'
    with pytest.raises(AttributeError):
        storage.EventFilter().event_type = 'a.b'

def test_aggregate_namedtuple():
    aggregate = storage.Aggregate('cardinality', 'resource_id')
    assert (aggregate.func, aggregate.param) == ('cardinality',
                                                 'resource_id')
    assert storage.Aggregate(func='avg').param is None


def test_exceptions():
    assert storage.StorageBadAggregate.code == 400
    assert storage.StorageBadAggregate('bad').code == 400
    for exc in (storage.StorageUnknownWriteError, storage.StorageBadVersion,
                storage.StorageBadAggregate):
        assert issubclass(exc, Exception)


def test_options():
    opts = {opt.name: opt for opt in storage.OPTS}
    assert set(opts) == {'metering_connection', 'event_connection',
                         'metering_time_to_live', 'event_time_to_live',
                         'sql_expire_samples_only'}
    assert opts['metering_time_to_live'].default == -1
    assert opts['event_time_to_live'].default == -1
    assert opts['sql_expire_samples_only'].default is False
    assert opts['event_connection'].secret
    assert opts['metering_connection'].secret
    deprecated = opts['metering_time_to_live'].deprecated_opts
    assert [(d.name, d.group) for d in deprecated] == [('time_to_live',
                                                       'database')]


def test_deprecated_time_to_live_is_honoured(conf, tmp_path):
    config = tmp_path / 'telemeter.conf'
    config.write_text('[database]\ntime_to_live = 3600\n')
    conf(['--config-file', str(config)], project='telemeter')
    assert conf.database.metering_time_to_live == 3600


@pytest.mark.parametrize('url, namespace, cls', [
    ('log://', storage.METERING_NAMESPACE, impl_log.Connection),
    ('log://', storage.EVENT_NAMESPACE, impl_log.EventConnection),
    ('sqlite://', storage.METERING_NAMESPACE, impl_sqlalchemy.Connection),
    ('sqlite://', storage.EVENT_NAMESPACE, impl_sqlalchemy.EventConnection),
])
def test_get_connection_picks_driver_by_scheme(conf, url, namespace, cls):
    connection = storage.get_connection(conf, url, namespace)
    assert type(connection) is cls
    assert connection.conf is conf


def test_get_connection_uses_scheme_before_plus(conf, monkeypatch):
    seen = []

    class FakeManager:
        def __init__(self, namespace, name):
            seen.append((namespace, name))
            self.driver = lambda conf, url: ('driver', url)

    monkeypatch.setattr(storage.driver, 'DriverManager', FakeManager)
    url = 'mysql+pymysql://u:p@host/db'
    assert storage.get_connection(conf, url) == ('driver', url)
    assert seen == [(storage.METERING_NAMESPACE, 'mysql')]


class Flaky:
    """Fails ``failures`` times, then returns a connection."""

    def __init__(self, failures):
        self.failures = failures
        self.calls = []

    def __call__(self, conf, url, namespace):
        self.calls.append((url, namespace))
        if len(self.calls) <= self.failures:
            raise ConnectionError(f'attempt {len(self.calls)}')
        return 'connected'


@pytest.fixture
def no_sleep(monkeypatch):
    sleeps = []
    monkeypatch.setattr(storage.time, 'sleep', sleeps.append)
    return sleeps


def test_get_connection_from_config_url_precedence(conf, monkeypatch,
                                                   no_sleep):
    flaky = Flaky(0)
    monkeypatch.setattr(storage, 'get_connection', flaky)
    conf.set_override('connection', 'sqlite:///common.db', 'database')
    storage.get_connection_from_config(conf)
    conf.set_override('event_connection', 'sqlite:///events.db',
                      'database')
    storage.get_connection_from_config(conf, 'event')
    storage.get_connection_from_config(conf, 'metering')
    assert flaky.calls == [
        ('sqlite:///common.db', 'telemeter.metering.storage'),
        ('sqlite:///events.db', 'telemeter.event.storage'),
        ('sqlite:///common.db', 'telemeter.metering.storage')]


def test_get_connection_from_config_retries(conf, monkeypatch, no_sleep):
    flaky = Flaky(2)
    monkeypatch.setattr(storage, 'get_connection', flaky)
    conf.set_override('metering_connection', 'log://', 'database')
    conf.set_override('retry_interval', 7, 'database')
    assert storage.get_connection_from_config(conf) == 'connected'
    assert len(flaky.calls) == 3
    assert no_sleep == [7, 7]


def test_get_connection_from_config_gives_up(conf, monkeypatch, no_sleep):
    flaky = Flaky(100)
    monkeypatch.setattr(storage, 'get_connection', flaky)
    conf.set_override('metering_connection', 'log://', 'database')
    conf.set_override('max_retries', 3, 'database')
    with pytest.raises(ConnectionError, match='attempt 3'):
        storage.get_connection_from_config(conf)
    assert len(flaky.calls) == 3


def test_get_connection_from_config_retries_forever(conf, monkeypatch,
                                                    no_sleep):
    flaky = Flaky(25)
    monkeypatch.setattr(storage, 'get_connection', flaky)
    conf.set_override('metering_connection', 'log://', 'database')
    conf.set_override('max_retries', -1, 'database')
    assert storage.get_connection_from_config(conf) == 'connected'
    assert len(flaky.calls) == 26


def test_get_connection_from_config_without_url(conf, no_sleep):
    with pytest.raises(ValueError, match='No database connection URL'):
        storage.get_connection_from_config(conf)
    assert no_sleep == []
