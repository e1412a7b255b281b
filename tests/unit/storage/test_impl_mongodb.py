"""The storage driver suite on MongoDB, in process (mongomock-ng), plus
what only the MongoDB driver promises: layout, key escaping, indexes, TTL
indexes, version check and idempotent writes.

No mongod can be installed here; ``tests/functional/test_storage_mongodb.py``
runs the suite over the wire against nx-27017 for the operations it
supports.
"""

from __future__ import annotations

import datetime
import logging

import mongomock_ng
import pytest

from telemeter import storage
from telemeter.storage import impl_mongodb, models
from telemeter.storage.mongo import connection, keys
from tests.unit.storage import (
    driver_suite,
    event_suite,
    query_suite,
    statistics_suite,
)
from tests.unit.storage.driver_suite import BASE, make_event, make_sample

URL = 'mongodb://127.0.0.1:27017/telemeter_test'


class MongomockURL:
    """Every connection of a test talks to one in-process mongomock-ng
    server."""

    TIMESTAMP_RESOLUTION = datetime.timedelta(milliseconds=1)

    @pytest.fixture
    def mongo_client(self, monkeypatch):
        client = mongomock_ng.MongoClient()
        monkeypatch.setattr(connection, 'CLIENT_FACTORY',
                            lambda url: client)
        return client

    @pytest.fixture
    def db_url(self, mongo_client):
        return URL


class TestMongomockMetering(MongomockURL, driver_suite.MeteringDriverTests):
    """Metering semantics on mongomock-ng."""


class TestMongomockEvents(MongomockURL, driver_suite.EventDriverTests):
    """Event semantics on mongomock-ng."""


class TestMongomockEventBatches(MongomockURL, event_suite.EventBatchTests):
    """Batched event writes on mongomock-ng."""


class TestMongomockStatistics(MongomockURL,
                              statistics_suite.StatisticsTests):
    """Statistics (aggregation pipelines) on mongomock-ng."""


class TestMongomockComplexQuery(MongomockURL,
                                query_suite.ComplexQueryTests):
    """query_samples on mongomock-ng."""


class TestMongoDriver(MongomockURL, driver_suite.StorageFixtures):
    """MongoDB-only behaviour."""

    def test_entry_points_select_the_mongodb_classes(self, conn,
                                                     event_conn):
        assert isinstance(conn, impl_mongodb.Connection)
        assert isinstance(event_conn, impl_mongodb.EventConnection)
        assert conn.db.name == 'telemeter_test'

    def test_sample_and_resource_documents(self, conn):
        conn.record_metering_data_batch([
            make_sample('cpu', 1, timestamp=BASE, message_id='a',
                        metadata={'state': 'old'}),
            make_sample('mem', 2, timestamp=BASE
                        + datetime.timedelta(seconds=60), message_id='b',
                        unit='MB', metadata={'state': 'new'}),
        ])
        doc = conn.db.meter.find_one({'message_id': 'a'})
        assert doc['counter_name'] == 'cpu'
        assert 'monotonic_time' not in doc
        assert isinstance(doc['recorded_at'], datetime.datetime)
        resource = conn.db.resource.find_one({'_id': 'res-1'})
        assert resource['first_sample_timestamp'] == BASE
        assert resource['last_sample_timestamp'] == BASE + \
            datetime.timedelta(seconds=60)
        assert resource['metadata'] == {'state': 'new'}
        assert resource['meter'] == [
            {'counter_name': 'cpu', 'counter_type': 'gauge',
             'counter_unit': 'ns'},
            {'counter_name': 'mem', 'counter_type': 'gauge',
             'counter_unit': 'MB'}]
        # An older sample moves the first timestamp back but keeps the
        # newest metadata; a newer one replaces it.
        conn.record_metering_data(make_sample(
            'cpu', timestamp=BASE - datetime.timedelta(hours=1),
            metadata={'state': 'ancient'}))
        conn.record_metering_data(make_sample(
            'cpu', timestamp=BASE + datetime.timedelta(hours=1),
            metadata={'state': 'newest'}, project_id='p9'))
        resource = conn.db.resource.find_one({'_id': 'res-1'})
        assert resource['first_sample_timestamp'] == BASE - \
            datetime.timedelta(hours=1)
        assert resource['last_sample_timestamp'] == BASE + \
            datetime.timedelta(hours=1)
        assert resource['metadata'] == {'state': 'newest'}
        assert resource['project_id'] == 'p9'
        assert len(resource['meter']) == 2

    def test_redelivered_batch_is_skipped_by_the_unique_index(self, conn):
        batch = [make_sample(volume=i, message_id=f'm{i}') for i in range(3)]
        conn.record_metering_data_batch(batch)
        conn.record_metering_data_batch([*batch, make_sample(
            volume=9, message_id='m9')])
        assert conn.db.meter.count_documents({}) == 4
        info = conn.db.meter.index_information()['meter_message_id_idx']
        assert info['unique'] and info['sparse']

    def test_dotted_and_dollar_keys(self, conn):
        conn.record_metering_data(make_sample(metadata={
            'a.b': 1, '$money': {'x.y': 'z'}, 'plain': [{'c.d': 2}]}))
        doc = conn.db.meter.find_one()
        assert doc['resource_metadata'] == {
            'a': {'b': 1}, '%24money': {'x': {'y': 'z'}},
            'plain': [{'c': {'d': 2}}]}
        [sample] = conn.get_samples(storage.SampleFilter())
        assert sample.resource_metadata == {
            'a': {'b': 1}, '$money': {'x': {'y': 'z'}},
            'plain': [{'c': {'d': 2}}]}
        found = conn.get_samples(storage.SampleFilter(
            metaquery={'metadata.a.b': 1}))
        assert len(found) == 1

    def test_key_helpers(self):
        assert keys.improve_keys({'a.b': {'c': 1}, 'a.d': 2}) == {
            'a': {'b': {'c': 1}, 'd': 2}}
        assert keys.unquote_keys({'%24x': [{'%24y': 1}]}) == {
            '$x': [{'$y': 1}]}

    def test_indexes(self, conn, event_conn):
        meter = conn.db.meter.index_information()
        assert meter['meter_idx']['key'] == [
            ('resource_id', 1), ('user_id', 1), ('counter_name', 1),
            ('timestamp', 1)]
        assert meter['meter_project_idx']['key'][1] == ('project_id', 1)
        assert meter['timestamp_idx']['key'] == [('timestamp', -1)]
        resource = conn.db.resource.index_information()
        assert resource['resource_user_project_timestamp']['key'] == [
            ('user_id', -1), ('project_id', -1),
            ('last_sample_timestamp', -1)]
        assert 'last_sample_timestamp_idx' in resource
        assert event_conn.db.event.index_information()['event_type_idx'][
            'key'] == [('event_type', 1), ('timestamp', 1)]
        # No TTL by default (time to live -1).
        assert 'meter_ttl' not in meter
        assert 'event_ttl' not in event_conn.db.event.index_information()

    def test_ttl_indexes_follow_the_options(self, conn, event_conn,
                                            storage_conf):
        storage_conf.set_override('metering_time_to_live', 3600,
                                  'database')
        storage_conf.set_override('event_time_to_live', 60, 'database')
        conn.upgrade()
        event_conn.upgrade()
        meter = conn.db.meter.index_information()
        assert meter['meter_ttl']['expireAfterSeconds'] == 3600
        assert meter['meter_ttl']['key'] == [('timestamp', 1)]
        resource = conn.db.resource.index_information()
        assert resource['resource_ttl']['expireAfterSeconds'] == 3600
        assert resource['resource_ttl']['key'] == [
            ('last_sample_timestamp', 1)]
        assert event_conn.db.event.index_information()['event_ttl'][
            'expireAfterSeconds'] == 60
        # A new TTL updates the index, <= 0 drops it.
        storage_conf.set_override('metering_time_to_live', 7200,
                                  'database')
        conn.upgrade()
        assert conn.db.meter.index_information()['meter_ttl'][
            'expireAfterSeconds'] == 7200
        storage_conf.set_override('metering_time_to_live', -1, 'database')
        conn.upgrade()
        assert 'meter_ttl' not in conn.db.meter.index_information()
        assert 'resource_ttl' not in conn.db.resource.index_information()

    def test_ttl_expires_old_samples_and_events(self, conn, event_conn,
                                                storage_conf):
        storage_conf.set_override('metering_time_to_live', 3600,
                                  'database')
        storage_conf.set_override('event_time_to_live', 3600, 'database')
        conn.upgrade()
        event_conn.upgrade()
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        conn.record_metering_data_batch([
            make_sample(timestamp=now - datetime.timedelta(hours=2),
                        message_id='old'),
            make_sample(timestamp=now, message_id='new', resource_id='r2')])
        event_conn.record_events([
            make_event('old-e', generated=now - datetime.timedelta(hours=2)),
            make_event('new-e', generated=now)])
        # The double expires documents when they are read (mongod's TTL
        # monitor does it every 60 s).
        assert [s.message_id for s in conn.get_samples(
            storage.SampleFilter())] == ['new']
        assert [e.message_id for e in event_conn.get_events(
            storage.EventFilter())] == ['new-e']

    def test_clear_expired_is_left_to_ttl(self, conn, event_conn, caplog):
        conn.record_metering_data(make_sample(timestamp=BASE))
        with caplog.at_level(logging.INFO):
            conn.clear_expired_metering_data(60)
            event_conn.clear_expired_event_data(60)
        assert 'native MongoDB time to live' in caplog.text
        assert len(conn.get_samples(storage.SampleFilter())) == 1

    def test_old_server_is_refused(self, monkeypatch, storage_conf):
        client = mongomock_ng.MongoClient()
        monkeypatch.setattr(client, 'server_info',
                            lambda: {'versionArray': [2, 2, 7, 0]})
        monkeypatch.setattr(connection, 'CLIENT_FACTORY',
                            lambda url: client)
        with pytest.raises(storage.StorageBadVersion,
                           match=r'Need at least MongoDB \[2, 4\]'):
            storage.get_connection(storage_conf, URL)

    def test_server_without_version_is_accepted(self, monkeypatch,
                                                storage_conf, caplog):
        client = mongomock_ng.MongoClient()
        monkeypatch.setattr(client, 'server_info', lambda: {})
        monkeypatch.setattr(connection, 'CLIENT_FACTORY',
                            lambda url: client)
        with caplog.at_level(logging.WARNING):
            conn = storage.get_connection(storage_conf, URL)
        assert 'did not report its version' in caplog.text
        assert conn.db.name == 'telemeter_test'

    def test_url_without_database_uses_telemeter(self, mongo_client,
                                                 storage_conf):
        conn = storage.get_connection(storage_conf,
                                      'mongodb://127.0.0.1:27017/')
        assert conn.db.name == 'telemeter'

    def test_cardinality_of_source(self, conn):
        conn.record_metering_data_batch([
            make_sample('cpu', 1, source='a', message_id='x1'),
            make_sample('cpu', 2, source='b', message_id='x2',
                        resource_id='r2'),
            make_sample('cpu', 3, source='b', message_id='x3',
                        resource_id='r3')])
        [stat] = conn.get_meter_statistics(
            storage.SampleFilter(meter='cpu'),
            aggregate=[storage.Aggregate('cardinality', 'source')])
        assert stat.aggregate == {'cardinality/source': 2}

    def test_trait_documents(self, event_conn):
        event_conn.record_events([models.Event(
            'e1', 'type', BASE, [models.Trait('n', models.Trait.INT_TYPE,
                                              '7'),
                                 models.Trait('x', models.Trait.NONE_TYPE,
                                              None)], {'k': 'v'})])
        doc = event_conn.db.event.find_one({'_id': 'e1'})
        assert doc['event_type'] == 'type'
        assert doc['timestamp'] == BASE
        assert doc['traits'] == [
            {'trait_name': 'n', 'trait_type': 2, 'trait_value': 7},
            {'trait_name': 'x', 'trait_type': 1, 'trait_value': None}]
        assert doc['raw'] == {'k': 'v'}


class TestMongomockInvalidSamples(MongomockURL,
                                  driver_suite.InvalidSampleTests):
    """Invalid samples dropped on mongomock-ng."""
