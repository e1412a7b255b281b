"""telemeter-dbsync / telemeter-upgrade / telemeter-expirer."""

from __future__ import annotations

import datetime
import logging

import pytest
import sqlalchemy as sa

from telemeter import storage
from telemeter.cmd import storage as storage_cmd
from telemeter.storage.sqlalchemy import tables
from tests.unit.storage.driver_suite import make_event, make_sample


def _table_names(url):
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    @property
    def text(self):
        return '\n'.join(self.messages)

    def clear(self):
        self.messages.clear()


@pytest.fixture
def logs():
    """Records of the ``telemeter`` loggers.

    The commands call oslo.log's setup, which replaces the root logger's
    handlers (logs's among them), so collect below the root.
    """
    handler = _Collect()
    logger = logging.getLogger('telemeter')
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture
def config_file(tmp_path):
    def _write(**database):
        lines = ['[database]'] + [f'{k} = {v}' for k, v in database.items()]
        path = tmp_path / 'telemeter.conf'
        path.write_text('\n'.join(lines) + '\n')
        return str(path)
    return _write


def test_dbsync_creates_both_schemas(tmp_path, config_file):
    url = f'sqlite:///{tmp_path}/t.db'
    path = config_file(connection=url)
    storage_cmd.dbsync(['telemeter-dbsync', '--config-file', path])
    names = _table_names(url)
    assert set(tables.metering_metadata.tables) <= names
    assert set(tables.event_metadata.tables) <= names
    # Running it again is harmless.
    storage_cmd.upgrade(['telemeter-upgrade', '--config-file', path])
    assert _table_names(url) == names


def test_dbsync_separate_urls_and_skip_flags(tmp_path, config_file,
                                             logs):
    metering = f'sqlite:///{tmp_path}/m.db'
    events = f'sqlite:///{tmp_path}/e.db'
    path = config_file(metering_connection=metering,
                       event_connection=events)
    storage_cmd.dbsync(['telemeter-dbsync', '--config-file', path,
                        '--skip-event-database',
                        '--skip-gnocchi-resource-types'])
    assert 'Skipping event database upgrade' in logs.text
    assert set(tables.metering_metadata.tables) <= _table_names(metering)
    assert _table_names(events) == set()

    logs.clear()
    storage_cmd.dbsync(['telemeter-dbsync', '--config-file', path,
                        '--skip-metering-database'])
    assert 'Skipping metering database upgrade' in logs.text
    names = _table_names(events)
    assert set(tables.event_metadata.tables) <= names
    assert not names & set(tables.metering_metadata.tables)


def test_dbsync_without_any_database_is_an_error(config_file, logs):
    with pytest.raises(SystemExit) as exc:
        storage_cmd.dbsync(['telemeter-dbsync', '--config-file',
                            config_file()])
    assert exc.value.code == ('telemeter-dbsync: no database configured: '
                              'set [database] connection (or '
                              'metering_connection / event_connection) in '
                              'the file given with --config-file')


def test_dbsync_skips_the_purpose_without_a_database(tmp_path, config_file,
                                                     logs):
    path = config_file(metering_connection=f'sqlite:///{tmp_path}/m.db')
    storage_cmd.dbsync(['telemeter-dbsync', '--config-file', path])
    assert 'Skipping metering database upgrade' not in logs.text
    assert ('Skipping event database upgrade, legacy database backend not '
            'configured.') in logs.text
    assert (tmp_path / 'm.db').exists()


def test_expirer_with_ttl_disabled(tmp_path, config_file, logs):
    path = config_file(connection=f'sqlite:///{tmp_path}/t.db')
    assert storage_cmd.expirer(['telemeter-expirer', '--config-file',
                                path]) is None
    assert ('Nothing to clean, database metering time to live is disabled'
            in logs.text)
    assert ('Nothing to clean, database event time to live is disabled'
            in logs.text)


def test_expirer_purges_old_data(tmp_path, config_file, conf, logs):
    url = f'sqlite:///{tmp_path}/t.db'
    metering = storage.get_connection(conf, url)
    metering.upgrade()
    events = storage.get_connection(conf, url, storage.EVENT_NAMESPACE)
    events.upgrade()
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    old = now - datetime.timedelta(days=2)
    metering.record_metering_data_batch([
        make_sample(timestamp=old, message_id='old'),
        make_sample(timestamp=now, message_id='new')])
    events.record_events([make_event('old-event', generated=old),
                          make_event('new-event', generated=now)])

    path = config_file(connection=url, metering_time_to_live=86400,
                       event_time_to_live=86400)
    storage_cmd.expirer(['telemeter-expirer', '--config-file', path])
    assert '1 samples removed from database' in logs.text
    assert '1 events are removed from database' in logs.text
    assert [s.message_id for s in metering.get_samples(
        storage.SampleFilter())] == ['new']
    assert [e.message_id for e in events.get_events(
        storage.EventFilter())] == ['new-event']
    metering.dispose()
    events.dispose()


def test_expirer_honours_deprecated_time_to_live(tmp_path, config_file,
                                                 conf, logs):
    url = f'sqlite:///{tmp_path}/t.db'
    storage.get_connection(conf, url).upgrade()
    path = config_file(connection=url, time_to_live=60)
    storage_cmd.expirer(['telemeter-expirer', '--config-file', path])
    assert '0 samples removed from database' in logs.text
    assert 'metering time to live is disabled' not in logs.text
