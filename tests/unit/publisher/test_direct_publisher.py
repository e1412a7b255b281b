"""direct:// database:// file_alt:// http_alt:// (publishers.md §6)."""

import ast

import pytest

from telemeter import storage
from telemeter.dispatcher import database, file, http
from telemeter.publisher import direct
from tests.unit.publisher.helpers import event, samples, split


@pytest.mark.parametrize('url, name', [
    ('direct://', 'database'),
    ('database://', 'database'),
    ('file_alt://', 'file'),
    ('http_alt://', 'http'),
    ('direct://?dispatcher=file&dispatcher=http', 'http'),
    ('database://?dispatcher=file', 'file'),
])
def test_dispatcher_name(url, name):
    assert direct.dispatcher_name(split(url)) == name


def test_direct_scheme_is_deprecated(caplog):
    direct.dispatcher_name(split('direct://'))
    assert 'Direct publisher is deprecated' in caplog.text


@pytest.fixture
def sqlite(conf, tmp_path):
    url = f'sqlite:///{tmp_path / "direct.db"}'
    conf.set_override('connection', url, group='database')
    storage.get_connection(conf, url).upgrade()
    storage.get_connection(conf, url, 'telemeter.event.storage').upgrade()
    return conf


def test_database_stores_unsigned_samples_and_events(sqlite, make):
    publisher = make('database://')
    publisher.publish_samples(samples('a', 'b'))
    stored = list(publisher._dispatcher('meter').conn.get_samples(
        storage.SampleFilter()))
    assert sorted(s.counter_name for s in stored) == ['a', 'b']
    # secret=None: the dicts never leave the process, so they are unsigned.
    assert {s.message_signature for s in stored} == {''}
    events_publisher = make('database://', 'telemeter.event.publisher')
    events_publisher.publish_events([event('e1')])
    [stored_event] = events_publisher._dispatcher('event').conn.get_events(
        storage.EventFilter())
    assert stored_event.message_id == 'e1'
    assert isinstance(events_publisher._dispatcher('event'),
                      database.EventDatabaseDispatcher)
    assert isinstance(publisher._dispatcher('meter'),
                      database.MeterDatabaseDispatcher)


def test_file_alt_shares_one_dispatcher_for_both(conf, make, tmp_path):
    path = tmp_path / 'direct.log'
    conf.set_override('file_path', str(path), group='dispatcher_file')
    publisher = make('file_alt://')
    publisher.publish_samples(samples('a'))
    publisher.publish_events([event('e1')])
    assert publisher._dispatcher('meter') is publisher._dispatcher('event')
    assert isinstance(publisher._dispatcher('meter'), file.FileDispatcher)
    for handler in publisher._dispatcher('meter').log.handlers:
        handler.flush()
    sample_line, event_line = path.read_text().splitlines()
    [message] = ast.literal_eval(sample_line)
    assert (message['counter_name'], message['message_signature']) == (
        'a', '')
    assert ast.literal_eval(event_line)[0]['message_id'] == 'e1'
    log = publisher._dispatcher('meter').log
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)


def test_http_alt_builds_the_http_dispatcher(conf, make):
    conf.set_override('target', 'http://t/', group='dispatcher_http')
    publisher = make('http_alt://')
    assert isinstance(publisher._dispatcher('event'), http.HttpDispatcher)
    publisher._dispatcher('event').session.close()


def test_missing_dispatcher_logs_and_does_nothing(make, caplog):
    publisher = make('direct://?dispatcher=nosuch')
    publisher.publish_samples(samples('a'))
    publisher.publish_events([event()])
    assert ("Can't publish samples to a non-existing dispatcher 'nosuch'"
            in caplog.text)
    assert ("Can't publish events to a non-existing dispatcher 'nosuch'"
            in caplog.text)
