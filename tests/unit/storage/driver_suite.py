"""Backend-independent storage driver tests.

Each backend subclasses these classes (with a ``Test`` prefix) and
overrides the ``db_url`` fixture: SQLite in ``test_impl_sqlalchemy.py``,
PostgreSQL in ``tests/functional/test_storage_sql.py``; MariaDB and MongoDB
can join the same way. ``MeteringDriverTests`` and ``EventDriverTests``
hold semantics every driver shares; ``SQLDriverTests`` holds what only the
SQL driver promises (schema, migrations, expiry, concurrent writers).
"""

from __future__ import annotations

import datetime
import json
import logging
import multiprocessing
import threading
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from oslo_config import cfg

import telemeter
from telemeter import service, storage
from telemeter.cmd import storage as storage_cmd
from telemeter.storage import models
from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import (
    expiry,
    migration,
    preparation,
    tables,
)
from tests.unit.storage import workers

BASE = datetime.datetime(2024, 5, 1, 12, 0, 0)


def ts(seconds: float) -> datetime.datetime:
    """BASE plus ``seconds``."""
    return BASE + datetime.timedelta(seconds=seconds)


def make_sample(name: str = 'cpu', volume: float = 1, *,
                resource_id: str = 'res-1', user_id: str | None = 'user-1',
                project_id: str | None = 'proj-1',
                source: str = 'openstack',
                timestamp: datetime.datetime = BASE,
                metadata: dict | None = None,
                message_id: str | None = None, type_: str = 'gauge',
                unit: str = 'ns') -> dict:
    """A metering dict as the database dispatcher hands it to storage."""
    message_id = message_id or str(uuid.uuid4())
    return {
        'counter_name': name,
        'counter_type': type_,
        'counter_unit': unit,
        'counter_volume': volume,
        'user_id': user_id,
        'project_id': project_id,
        'resource_id': resource_id,
        'timestamp': timestamp,
        'resource_metadata': ({'display_name': 'vm-1'} if metadata is None
                              else metadata),
        'source': source,
        'message_id': message_id,
        'message_signature': f'sig-{message_id}',
        'monotonic_time': None,
    }


# Cases shared with backend classes that run a subset of them.
METAQUERY_CASES = [
    ({'metadata.display_name': 'two'}, ['m4', 'm3']),
    ({'metadata.size': 1}, ['m2', 'm1']),
    ({'metadata.ratio': 1.5}, ['m4', 'm3']),
    ({'metadata.active': True}, ['m2', 'm1']),
    ({'metadata.active': False}, ['m4', 'm3']),
    ({'metadata.image.name': 'cirros'}, ['m2', 'm1']),
    ({'metadata.tags[1]': 'prod'}, ['m2', 'm1']),
    ({'metadata.note': None}, ['m2', 'm1']),
    ({'metadata.size': 2, 'metadata.display_name': 'two'},
     ['m4', 'm3']),
    ({'metadata.size': 2, 'metadata.display_name': 'one'}, []),
    # The value type picks the table: the text '1' is not the int 1.
    ({'metadata.size': '1'}, []),
    ({'metadata.missing': 'x'}, []),
]

EVENT_FILTER_CASES = [
    ({'event_type': 'type.a'}, ['e1', 'e3']),
    ({'message_id': 'e2'}, ['e2']),
    ({'start_timestamp': ts(10)}, ['e2', 'e3']),
    ({'end_timestamp': ts(10)}, ['e1', 'e2']),
    ({'start_timestamp': ts(10), 'end_timestamp': ts(10)}, ['e2']),
    ({'start_timestamp': '2024-05-01T14:00:10+02:00'}, ['e2', 'e3']),
    ({'event_type': 'type.a', 'start_timestamp': ts(5)}, ['e3']),
    ({'admin_proj': 'admin'}, ['e1', 'e3']),
]

TRAIT_FILTER_CASES = [
    ([{'key': 'project_id', 'string': 'tenant'}], ['e2']),
    ([{'key': 'project_id', 'string': 'tenant', 'op': 'ne'}], ['e1']),
    ([{'key': 'size', 'integer': 10}], ['e2']),
    ([{'key': 'size', 'integer': 10, 'op': 'lt'}], ['e1']),
    ([{'key': 'size', 'integer': 10, 'op': 'le'}], ['e1', 'e2']),
    ([{'key': 'size', 'integer': 10, 'op': 'gt'}], ['e3']),
    ([{'key': 'size', 'integer': 10, 'op': 'ge'}], ['e2', 'e3']),
    ([{'key': 'ratio', 'float': 1.0, 'op': 'gt'}], ['e2']),
    ([{'key': 'launched', 'datetime': ts(100)}], ['e1']),
    ([{'key': 'launched', 'datetime': '2024-05-01T12:03:20',
       'op': 'ge'}], ['e2']),
    ([{'key': 'size', 'integer': 5, 'op': 'gt'},
      {'key': 'name', 'string': 'vm'}], ['e3']),
    ([{'key': 'size', 'string': '5'}], []),
]


def make_conf() -> cfg.ConfigOpts:
    """A fully registered configuration reading no config file."""
    return service.prepare_service(argv=['telemeter-test'], config_files=[],
                                   conf=cfg.ConfigOpts())


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class StorageFixtures:
    """Connection fixtures; subclasses override ``db_url``.

    ``TIMESTAMP_RESOLUTION`` is what the backend keeps of a timestamp
    (MongoDB's BSON dates keep milliseconds).
    """

    TIMESTAMP_RESOLUTION = datetime.timedelta(microseconds=1)

    def stored_time(self, when: datetime.datetime) -> datetime.datetime:
        """``when`` truncated to the backend's timestamp resolution."""
        step = self.TIMESTAMP_RESOLUTION // datetime.timedelta(
            microseconds=1)
        return when.replace(microsecond=when.microsecond
                            - when.microsecond % step)

    @pytest.fixture
    def db_url(self) -> str:
        raise NotImplementedError('backend test classes provide db_url')

    @pytest.fixture
    def storage_conf(self):
        conf = make_conf()
        yield conf
        conf.reset()

    @pytest.fixture
    def conn(self, storage_conf, db_url):
        connection = storage.get_connection(storage_conf, db_url)
        connection.clear()
        connection.upgrade()
        yield connection
        connection.clear()
        dispose = getattr(connection, 'dispose', None)
        if dispose:
            dispose()

    @pytest.fixture
    def event_conn(self, storage_conf, db_url):
        connection = storage.get_connection(storage_conf, db_url,
                                            storage.EVENT_NAMESPACE)
        connection.clear()
        connection.upgrade()
        yield connection
        connection.clear()
        dispose = getattr(connection, 'dispose', None)
        if dispose:
            dispose()


class MeteringDriverTests(StorageFixtures):
    """Recording and querying samples, resources and meters."""

    # -- recording ----------------------------------------------------------

    def test_sample_round_trip(self, conn):
        before = _utcnow()
        data = make_sample('cpu_util', 12, timestamp=ts(0.123456),
                           metadata={'display_name': 'vm', 'nested':
                                     {'size': 2}, 'tags': ['a']})
        conn.record_metering_data(data)
        after = _utcnow()

        [stored] = conn.get_samples(storage.SampleFilter())
        assert stored.counter_name == 'cpu_util'
        assert stored.counter_type == 'gauge'
        assert stored.counter_unit == 'ns'
        assert stored.counter_volume == 12.0
        assert isinstance(stored.counter_volume, float)
        assert stored.user_id == 'user-1'
        assert stored.project_id == 'proj-1'
        assert stored.resource_id == 'res-1'
        assert stored.source == 'openstack'
        assert stored.timestamp == self.stored_time(ts(0.123456))
        assert stored.resource_metadata == data['resource_metadata']
        assert stored.message_id == data['message_id']
        assert stored.message_signature == data['message_signature']
        # recorded_at is the storage time (allow for coarse DB clocks).
        slack = datetime.timedelta(seconds=1)
        assert before - slack <= stored.recorded_at <= after + slack

    def test_aware_input_timestamp_stored_as_naive_utc(self, conn):
        aware = datetime.datetime(2024, 5, 1, 14, 0, tzinfo=datetime.timezone(
            datetime.timedelta(hours=2)))
        conn.record_metering_data(make_sample(timestamp=aware))
        [stored] = conn.get_samples(storage.SampleFilter())
        assert stored.timestamp == datetime.datetime(2024, 5, 1, 12, 0)
        assert stored.timestamp.tzinfo is None

    def test_redelivered_batch_is_not_duplicated(self, conn):
        batch = [make_sample(volume=i, timestamp=ts(i)) for i in range(5)]
        conn.record_metering_data_batch(batch)
        conn.record_metering_data_batch(batch)
        conn.record_metering_data(batch[0])
        samples = conn.get_samples(storage.SampleFilter())
        assert sorted(s.message_id for s in samples) == sorted(
            s['message_id'] for s in batch)

    def test_partial_redelivery_stores_only_new_samples(self, conn):
        old = [make_sample(volume=i, timestamp=ts(i)) for i in range(3)]
        conn.record_metering_data_batch(old)
        new = [make_sample(volume=10 + i, timestamp=ts(10 + i))
               for i in range(2)]
        conn.record_metering_data_batch(old[1:] + new)
        volumes = sorted(s.counter_volume
                         for s in conn.get_samples(storage.SampleFilter()))
        assert volumes == [0.0, 1.0, 2.0, 10.0, 11.0]

    def test_duplicate_message_id_within_a_batch_keeps_first(self, conn):
        first = make_sample(volume=1, message_id='dup')
        second = make_sample(volume=2, message_id='dup')
        conn.record_metering_data_batch([first, second])
        [stored] = conn.get_samples(storage.SampleFilter())
        assert stored.counter_volume == 1.0

    def test_empty_batch_is_a_no_op(self, conn):
        conn.record_metering_data_batch([])
        assert conn.get_samples(storage.SampleFilter()) == []

    def test_batch_with_many_meters_and_resources(self, conn):
        batch = [make_sample(f'meter-{i % 7}', i, resource_id=f'r-{i % 13}',
                             timestamp=ts(i), unit=f'u{i % 2}')
                 for i in range(200)]
        conn.record_metering_data_batch(batch)
        assert len(conn.get_samples(storage.SampleFilter())) == 200
        assert len(conn.get_resources()) == 13
        assert {m.name for m in conn.get_meters(unique=True)} == {
            f'meter-{i}' for i in range(7)}
        # Same (meter, resource) pairs as the input.
        pairs = {(s['counter_name'], s['resource_id']) for s in batch}
        assert {(m.name, m.resource_id) for m in conn.get_meters()} == pairs

    def test_record_after_clear_recreates_meters(self, conn):
        conn.record_metering_data(make_sample('cpu'))
        conn.clear()
        conn.upgrade()
        conn.record_metering_data(make_sample('cpu', 5))
        [stored] = conn.get_samples(storage.SampleFilter())
        assert stored.counter_volume == 5.0
        assert stored.counter_name == 'cpu'

    def test_none_user_and_project_are_stored_as_none(self, conn):
        conn.record_metering_data(make_sample(user_id=None, project_id=None))
        [stored] = conn.get_samples(storage.SampleFilter())
        assert stored.user_id is None
        assert stored.project_id is None

    # -- get_samples --------------------------------------------------------

    @pytest.fixture
    def populated(self, conn):
        """Samples over two users/projects/sources/resources/meters."""
        data = [
            make_sample('cpu', 1, resource_id='r1', user_id='u1',
                        project_id='p1', timestamp=ts(0), message_id='m1',
                        metadata={'display_name': 'one', 'size': 1,
                                  'ratio': 0.5, 'active': True,
                                  'image': {'name': 'cirros'},
                                  'tags': ['web', 'prod'], 'note': None}),
            make_sample('cpu', 2, resource_id='r1', user_id='u1',
                        project_id='p1', timestamp=ts(60), message_id='m2',
                        metadata={'display_name': 'one', 'size': 1,
                                  'ratio': 0.5, 'active': True,
                                  'image': {'name': 'cirros'},
                                  'tags': ['web', 'prod'], 'note': None}),
            make_sample('cpu', 3, resource_id='r2', user_id='u2',
                        project_id='p2', timestamp=ts(120), message_id='m3',
                        metadata={'display_name': 'two', 'size': 2,
                                  'ratio': 1.5, 'active': False,
                                  'image': {'name': 'fedora'}}),
            make_sample('mem', 4, resource_id='r2', user_id='u2',
                        project_id='p2', timestamp=ts(180), message_id='m4',
                        unit='MB', source='other',
                        metadata={'display_name': 'two', 'size': 2,
                                  'ratio': 1.5, 'active': False,
                                  'image': {'name': 'fedora'}}),
            make_sample('mem', 5, resource_id='r3', user_id=None,
                        project_id=None, timestamp=ts(240), message_id='m5',
                        unit='MB', metadata={'display_name': 'three'}),
        ]
        conn.record_metering_data_batch(data)
        return conn

    @staticmethod
    def ids(samples) -> list[str]:
        return [s.message_id for s in samples]

    def test_get_samples_newest_first(self, populated):
        assert self.ids(populated.get_samples(storage.SampleFilter())) == [
            'm5', 'm4', 'm3', 'm2', 'm1']

    def test_get_samples_limit_keeps_newest(self, populated):
        samples = populated.get_samples(storage.SampleFilter(), limit=2)
        assert self.ids(samples) == ['m5', 'm4']

    def test_get_samples_limit_zero_is_empty(self, populated):
        assert list(populated.get_samples(storage.SampleFilter(),
                                          limit=0)) == []

    @pytest.mark.parametrize('kwargs, expected', [
        ({'user': 'u1'}, ['m2', 'm1']),
        ({'project': 'p2'}, ['m4', 'm3']),
        ({'resource': 'r2'}, ['m4', 'm3']),
        ({'source': 'other'}, ['m4']),
        ({'meter': 'mem'}, ['m5', 'm4']),
        ({'message_id': 'm3'}, ['m3']),
        ({'user': 'None'}, ['m5']),
        ({'project': 'None'}, ['m5']),
        ({'user': 'u1', 'meter': 'mem'}, []),
        ({'user': 'nobody'}, []),
    ])
    def test_get_samples_equality_filters(self, populated, kwargs,
                                          expected):
        found = populated.get_samples(storage.SampleFilter(**kwargs))
        assert self.ids(found) == expected

    @pytest.mark.parametrize('kwargs, expected', [
        ({'start_timestamp': ts(60)}, ['m5', 'm4', 'm3', 'm2']),
        ({'start_timestamp': ts(60), 'start_timestamp_op': 'ge'},
         ['m5', 'm4', 'm3', 'm2']),
        ({'start_timestamp': ts(60), 'start_timestamp_op': 'gt'},
         ['m5', 'm4', 'm3']),
        ({'end_timestamp': ts(180)}, ['m3', 'm2', 'm1']),
        ({'end_timestamp': ts(180), 'end_timestamp_op': 'lt'},
         ['m3', 'm2', 'm1']),
        ({'end_timestamp': ts(180), 'end_timestamp_op': 'le'},
         ['m4', 'm3', 'm2', 'm1']),
        ({'start_timestamp': ts(60), 'start_timestamp_op': 'gt',
          'end_timestamp': ts(180), 'end_timestamp_op': 'le'},
         ['m4', 'm3']),
    ])
    def test_get_samples_timestamp_ops(self, populated, kwargs, expected):
        found = populated.get_samples(storage.SampleFilter(**kwargs))
        assert self.ids(found) == expected

    def test_get_samples_timezone_spellings_are_equivalent(self, populated):
        spellings = ['2024-05-01T12:01:00', '2024-05-01T12:01:00Z',
                     '2024-05-01T14:01:00+02:00',
                     '2024-05-01T07:01:00-05:00',
                     datetime.datetime(2024, 5, 1, 12, 1,
                                       tzinfo=datetime.UTC)]
        results = [self.ids(populated.get_samples(storage.SampleFilter(
            start_timestamp=value, start_timestamp_op='gt')))
            for value in spellings]
        assert results == [['m5', 'm4', 'm3']] * len(spellings)

    @pytest.mark.parametrize('metaquery, expected', METAQUERY_CASES)
    def test_get_samples_metaquery(self, populated, metaquery, expected):
        found = populated.get_samples(storage.SampleFilter(
            metaquery=metaquery))
        assert self.ids(found) == expected

    def test_metaquery_of_unsupported_type_raises(self, populated):
        with pytest.raises(telemeter.NotImplementedError) as info:
            populated.get_samples(storage.SampleFilter(
                metaquery={'metadata.tags': ['web']}))
        assert str(info.value) == ("Query on metadata.tags is of <class "
                                   "'list'> type and is not supported")

    # -- get_resources ------------------------------------------------------

    def test_get_resources_one_per_resource_with_time_span(self, populated):
        resources = {r.resource_id: r for r in populated.get_resources()}
        assert set(resources) == {'r1', 'r2', 'r3'}
        r1 = resources['r1']
        assert r1.first_sample_timestamp == ts(0)
        assert r1.last_sample_timestamp == ts(60)
        assert (r1.user_id, r1.project_id, r1.source) == ('u1', 'p1',
                                                          'openstack')
        assert r1.metadata['display_name'] == 'one'
        assert resources['r3'].user_id is None

    def test_get_resources_uses_newest_matching_sample(self, conn):
        conn.record_metering_data_batch([
            make_sample(resource_id='r', timestamp=ts(0), project_id='p1',
                        metadata={'state': 'building'}),
            make_sample(resource_id='r', timestamp=ts(30), project_id='p1',
                        metadata={'state': 'active'}),
            make_sample(resource_id='r', timestamp=ts(10), project_id='p2',
                        metadata={'state': 'moved'}),
        ])
        [res] = conn.get_resources()
        assert res.metadata == {'state': 'active'}
        assert res.project_id == 'p1'
        assert (res.first_sample_timestamp,
                res.last_sample_timestamp) == (ts(0), ts(30))
        # Restricted to the samples before ts(20), the newest is at ts(10).
        [early] = conn.get_resources(end_timestamp=ts(20))
        assert early.metadata == {'state': 'moved'}
        assert early.project_id == 'p2'
        assert early.last_sample_timestamp == ts(10)
        # Filtering on the project uses the matching samples only.
        [p1] = conn.get_resources(project='p1')
        assert p1.metadata == {'state': 'active'}
        assert p1.first_sample_timestamp == ts(0)

    def test_get_resources_tie_broken_by_latest_insert(self, conn):
        conn.record_metering_data(make_sample(
            resource_id='r', timestamp=ts(5), metadata={'v': 'first'}))
        conn.record_metering_data(make_sample(
            resource_id='r', timestamp=ts(5), metadata={'v': 'second'}))
        [res] = conn.get_resources()
        assert res.metadata == {'v': 'second'}

    def test_get_resources_tie_within_a_batch_uses_batch_order(self, conn):
        conn.record_metering_data_batch([
            make_sample(resource_id='r', timestamp=ts(5),
                        metadata={'v': 'first'}),
            make_sample(resource_id='r', timestamp=ts(5),
                        metadata={'v': 'second'}),
        ])
        [res] = conn.get_resources()
        assert res.metadata == {'v': 'second'}

    @pytest.mark.parametrize('kwargs, expected', [
        ({'user': 'u1'}, {'r1'}),
        ({'user': 'None'}, {'r3'}),
        ({'project': 'p2'}, {'r2'}),
        ({'source': 'other'}, {'r2'}),
        ({'resource': 'r3'}, {'r3'}),
        ({'start_timestamp': ts(120)}, {'r2', 'r3'}),
        ({'start_timestamp': ts(120), 'start_timestamp_op': 'gt'},
         {'r2', 'r3'}),
        ({'start_timestamp': ts(180), 'start_timestamp_op': 'gt'}, {'r3'}),
        ({'end_timestamp': ts(120)}, {'r1'}),
        ({'end_timestamp': ts(120), 'end_timestamp_op': 'le'},
         {'r1', 'r2'}),
        ({'metaquery': {'metadata.image.name': 'fedora'}}, {'r2'}),
        ({'metaquery': {'metadata.size': 1}}, {'r1'}),
    ])
    def test_get_resources_filters(self, populated, kwargs, expected):
        found = {r.resource_id for r in populated.get_resources(**kwargs)}
        assert found == expected

    def test_get_resources_span_is_limited_to_matching_samples(
            self, populated):
        [r2] = populated.get_resources(resource='r2', source='other')
        assert r2.first_sample_timestamp == ts(180)
        assert r2.last_sample_timestamp == ts(180)
        assert r2.source == 'other'

    def test_get_resources_limit(self, populated):
        assert len(populated.get_resources(limit=2)) == 2
        assert list(populated.get_resources(limit=0)) == []

    # -- get_meters ---------------------------------------------------------

    def test_get_meters_one_per_meter_and_resource(self, populated):
        meters = {(m.name, m.resource_id): m
                  for m in populated.get_meters()}
        assert set(meters) == {('cpu', 'r1'), ('cpu', 'r2'), ('mem', 'r2'),
                               ('mem', 'r3')}
        mem_r2 = meters[('mem', 'r2')]
        assert (mem_r2.type, mem_r2.unit, mem_r2.user_id,
                mem_r2.project_id, mem_r2.source) == (
            'gauge', 'MB', 'u2', 'p2', 'other')

    def test_get_meters_unique(self, populated):
        meters = populated.get_meters(unique=True)
        assert sorted((m.name, m.type, m.unit) for m in meters) == [
            ('cpu', 'gauge', 'ns'), ('mem', 'gauge', 'MB')]
        for meter in meters:
            assert (meter.resource_id, meter.project_id, meter.source,
                    meter.user_id) == (None, None, None, None)

    @pytest.mark.parametrize('kwargs, expected', [
        ({'user': 'u2'}, {('cpu', 'r2'), ('mem', 'r2')}),
        ({'user': 'None'}, {('mem', 'r3')}),
        ({'project': 'p1'}, {('cpu', 'r1')}),
        ({'resource': 'r2'}, {('cpu', 'r2'), ('mem', 'r2')}),
        ({'source': 'other'}, {('mem', 'r2')}),
        ({'metaquery': {'metadata.active': True}}, {('cpu', 'r1')}),
    ])
    def test_get_meters_filters(self, populated, kwargs, expected):
        found = {(m.name, m.resource_id)
                 for m in populated.get_meters(**kwargs)}
        assert found == expected

    def test_get_meters_unique_with_filter(self, populated):
        meters = populated.get_meters(source='other', unique=True)
        assert [(m.name, m.unit) for m in meters] == [('mem', 'MB')]

    def test_get_meters_built_from_latest_sample(self, conn):
        conn.record_metering_data(make_sample(
            'cpu', resource_id='r', project_id='old', timestamp=ts(0)))
        conn.record_metering_data(make_sample(
            'cpu', resource_id='r', project_id='new', timestamp=ts(10)))
        [meter] = conn.get_meters()
        assert meter.project_id == 'new'
        assert conn.get_meters(project='old') == []
        assert len(conn.get_meters(project='new')) == 1

    def test_get_meters_limit(self, populated):
        assert len(populated.get_meters(limit=3)) == 3
        assert len(populated.get_meters(limit=1, unique=True)) == 1
        assert list(populated.get_meters(limit=0)) == []

    def test_capabilities(self, conn):
        caps = conn.get_capabilities()
        assert caps['samples']['query'] == {'simple': True,
                                            'metadata': True,
                                            'complex': True}
        assert caps['statistics']['aggregation']['selectable'][
            'cardinality'] is True
        assert conn.get_storage_capabilities() == {
            'storage': {'production_ready': True}}


def make_event(message_id: str, event_type: str = 'compute.instance.update',
               generated: datetime.datetime = BASE,
               traits: list[models.Trait] | None = None,
               raw: dict | None = None) -> models.Event:
    """An Event model with a few typed traits by default."""
    if traits is None:
        traits = [
            models.Trait('text', models.Trait.TEXT_TYPE, f'v-{message_id}'),
            models.Trait('int', models.Trait.INT_TYPE, 10),
            models.Trait('float', models.Trait.FLOAT_TYPE, 1.5),
            models.Trait('when', models.Trait.DATETIME_TYPE, ts(3600)),
        ]
    return models.Event(message_id, event_type, generated, traits,
                        raw if raw is not None else {'id': message_id})


class EventDriverTests(StorageFixtures):
    """Recording and querying events."""

    def test_event_round_trip(self, event_conn):
        event = make_event('e1', raw={'payload': {'a': 1}})
        event_conn.record_events([event])
        [stored] = event_conn.get_events(storage.EventFilter())
        assert stored.message_id == 'e1'
        assert stored.event_type == 'compute.instance.update'
        assert stored.generated == BASE
        assert stored.raw == {'payload': {'a': 1}}
        # Traits come back sorted by name, with their types.
        assert [(t.name, t.dtype, t.value) for t in stored.traits] == [
            ('float', models.Trait.FLOAT_TYPE, 1.5),
            ('int', models.Trait.INT_TYPE, 10),
            ('text', models.Trait.TEXT_TYPE, 'v-e1'),
            ('when', models.Trait.DATETIME_TYPE, ts(3600)),
        ]

    def test_duplicate_event_is_skipped_and_logged(self, event_conn,
                                                  caplog):
        event_conn.record_events([make_event('e1')])
        with caplog.at_level(logging.INFO):
            event_conn.record_events([make_event('e1', 'other.type'),
                                      make_event('e2')])
        assert 'Duplicate event detected, skipping it: e1' in caplog.text
        stored = event_conn.get_events(storage.EventFilter())
        assert [(e.message_id, e.event_type) for e in stored] == [
            ('e1', 'compute.instance.update'),
            ('e2', 'compute.instance.update')]

    def test_failed_event_does_not_stop_the_others(self, event_conn,
                                                  caplog):
        # Dropped, not raised: a requeued batch would fail again forever.
        bad = make_event('bad', traits=[models.Trait('x', 42, 'y')])
        with caplog.at_level(logging.ERROR):
            event_conn.record_events([bad, make_event('good')])
        assert ('Failed to record event bad, dropping it: Trait x has '
                'unknown type 42' in caplog.text)
        assert event_conn.checker.dropped == 1
        stored = event_conn.get_events(storage.EventFilter())
        assert [e.message_id for e in stored] == ['good']

    def test_none_typed_trait_is_stored_as_text(self, event_conn):
        event_conn.record_events([make_event('e1', traits=[
            models.Trait('empty', models.Trait.NONE_TYPE, None)])])
        [stored] = event_conn.get_events(storage.EventFilter())
        assert [(t.name, t.value) for t in stored.traits] == [
            ('empty', None)]

    @pytest.fixture
    def events(self, event_conn):
        event_conn.record_events([
            make_event('e1', 'type.a', ts(0), traits=[
                models.Trait('project_id', 1, 'admin'),
                models.Trait('size', 2, 5),
                models.Trait('ratio', 3, 0.5),
                models.Trait('launched', 4, ts(100))]),
            make_event('e2', 'type.b', ts(10), traits=[
                models.Trait('project_id', 1, 'tenant'),
                models.Trait('size', 2, 10),
                models.Trait('ratio', 3, 1.5),
                models.Trait('launched', 4, ts(200))]),
            make_event('e3', 'type.a', ts(20), traits=[
                models.Trait('size', 2, 15),
                models.Trait('name', 1, 'vm')]),
        ])
        return event_conn

    @staticmethod
    def ids(events) -> list[str]:
        return [e.message_id for e in events]

    def test_get_events_oldest_first_and_limit(self, events):
        assert self.ids(events.get_events(storage.EventFilter())) == [
            'e1', 'e2', 'e3']
        assert self.ids(events.get_events(storage.EventFilter(),
                                          limit=2)) == ['e1', 'e2']
        assert list(events.get_events(storage.EventFilter(), limit=0)) == []

    @pytest.mark.parametrize('kwargs, expected', EVENT_FILTER_CASES)
    def test_get_events_filters(self, events, kwargs, expected):
        found = events.get_events(storage.EventFilter(**kwargs))
        assert self.ids(found) == expected

    @pytest.mark.parametrize('traits_filter, expected', TRAIT_FILTER_CASES)
    def test_get_events_trait_filters(self, events, traits_filter,
                                      expected):
        found = events.get_events(storage.EventFilter(
            traits_filter=traits_filter))
        assert self.ids(found) == expected

    def test_get_event_types_sorted(self, events):
        assert list(events.get_event_types()) == ['type.a', 'type.b']

    def test_get_trait_types(self, events):
        assert list(events.get_trait_types('type.a')) == [
            {'name': 'name', 'data_type': models.Trait.TEXT_TYPE},
            {'name': 'project_id', 'data_type': models.Trait.TEXT_TYPE},
            {'name': 'size', 'data_type': models.Trait.INT_TYPE},
            {'name': 'ratio', 'data_type': models.Trait.FLOAT_TYPE},
            {'name': 'launched', 'data_type': models.Trait.DATETIME_TYPE},
        ]
        assert list(events.get_trait_types('no.such.type')) == []

    def test_get_traits(self, events):
        traits = events.get_traits('type.a')
        assert sorted((t.name, t.dtype, t.value) for t in traits) == sorted([
            ('project_id', 1, 'admin'), ('size', 2, 5), ('ratio', 3, 0.5),
            ('launched', 4, ts(100)), ('size', 2, 15), ('name', 1, 'vm')])
        sizes = events.get_traits('type.a', 'size')
        assert sorted(t.value for t in sizes) == [5, 15]
        assert all(isinstance(t, models.Trait) for t in sizes)

    def test_event_capabilities(self, event_conn):
        assert event_conn.get_capabilities() == {
            'events': {'query': {'simple': True}}}


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(
            table)).scalar_one()


def _compare_type(context, inspected_column, metadata_column,
                  inspected_type, metadata_type):
    """Alembic type comparison, except FLOAT(53) reads back as DOUBLE."""
    if (isinstance(inspected_type, sa.Float)
            and isinstance(metadata_type, sa.Float)):
        return False
    return None


class SQLDriverTests(StorageFixtures):
    """Schema management, expiry and concurrency of the SQL driver."""

    def test_upgrade_is_idempotent_and_stamps_head(self, conn,
                                                   event_conn):
        conn.upgrade()
        conn.upgrade()
        event_conn.upgrade()
        engine = conn.engine
        names = set(sa.inspect(engine).get_table_names())
        assert set(tables.metering_metadata.tables) <= names
        assert set(tables.event_metadata.tables) <= names
        for schema in (migration.METERING, migration.EVENT):
            assert (migration.current_revision(engine, schema)
                    == migration.head_revision(schema))

    def test_concurrent_upgrades_of_a_fresh_database(self, conn,
                                                     event_conn, db_url):
        conn.clear()
        event_conn.clear()
        context = multiprocessing.get_context('spawn')
        children = [context.Process(target=workers.upgrade,
                                    args=(db_url,)) for _ in range(3)]
        for child in children:
            child.start()
        for child in children:
            child.join(120)
        assert [c.exitcode for c in children] == [0, 0, 0]
        for schema in (migration.METERING, migration.EVENT):
            assert (migration.current_revision(conn.engine, schema)
                    == migration.head_revision(schema))
        conn.record_metering_data(make_sample())
        assert len(conn.get_samples(storage.SampleFilter())) == 1

    def test_upgrade_keeps_data(self, conn):
        conn.record_metering_data(make_sample())
        conn.upgrade()
        assert len(conn.get_samples(storage.SampleFilter())) == 1

    def test_clear_drops_tables(self, conn, event_conn):
        conn.clear()
        names = set(sa.inspect(conn.engine).get_table_names())
        assert not names & set(tables.metering_metadata.tables)
        assert tables.METERING_VERSION_TABLE not in names
        # The event schema is independent and survives.
        assert set(tables.event_metadata.tables) <= names
        event_conn.clear()
        names = set(sa.inspect(conn.engine).get_table_names())
        assert not names & set(tables.event_metadata.tables)

    @pytest.mark.parametrize('schema', [migration.METERING,
                                        migration.EVENT],
                             ids=['metering', 'event'])
    def test_migrations_match_table_definitions(self, conn, event_conn,
                                                schema):
        conn.clear()
        event_conn.clear()
        engine = conn.engine
        migration.upgrade(engine, schema, use_migrations=True)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={'compare_type': _compare_type})
            diff = compare_metadata(context, schema.metadata)
        # Tables of the other schema and the version table are not ours.
        diff = [d for d in diff if not (
            d[0] == 'remove_table'
            and d[1].name not in schema.metadata.tables)]
        assert diff == []
        assert (migration.current_revision(engine, schema)
                == migration.head_revision(schema))

    def test_dbsync_upgrades_the_first_schema_in_place(
            self, conn, db_url, tmp_path):
        """A database at metering_001 (foreign keys, old indexes) with
        data is upgraded by telemeter-dbsync and keeps working."""
        conn.clear()
        engine = conn.engine
        migration.upgrade(engine, migration.METERING,
                          revision='metering_001')
        assert migration.current_revision(
            engine, migration.METERING) == 'metering_001'
        inspector = sa.inspect(engine)
        assert {fk['name'] for fk in inspector.get_foreign_keys(
            'sample')} == {'fk_sample_meter_id', 'fk_sample_resource_id'}
        metadata = {'display_name': 'vm'}
        identity = preparation.identity_hash(
            'res-1', 'user-1', 'proj-1', 'openstack',
            preparation.metadata_hash(metadata))
        with engine.begin() as connection:
            connection.execute(tables.meter.insert(), [
                {'id': 1, 'name': 'cpu', 'type': 'gauge', 'unit': 'ns'}])
            connection.execute(tables.resource.insert(), [{
                'internal_id': 1, 'resource_id': 'res-1',
                'user_id': 'user-1', 'project_id': 'proj-1',
                'source_id': 'openstack',
                'resource_metadata': '{"display_name": "vm"}',
                'metadata_hash': preparation.metadata_hash(metadata),
                'identity_hash': identity}])
            connection.execute(tables.sample.insert(), [
                {'meter_id': 1, 'resource_id': 1, 'volume': 1.5,
                 'timestamp': ts(i), 'recorded_at': ts(i),
                 'message_id': f'old-{i}', 'message_signature': 's'}
                for i in range(3)])
        config = tmp_path / 'telemeter.conf'
        config.write_text(f'[database]\nconnection = {db_url}\n')
        storage_cmd.dbsync(['telemeter-dbsync', '--config-file',
                            str(config), '--skip-event-database'])
        assert (migration.current_revision(engine, migration.METERING)
                == migration.head_revision(migration.METERING))
        inspector = sa.inspect(engine)
        assert inspector.get_foreign_keys('sample') == []
        indexes = {ix['name']: ix['column_names']
                   for ix in inspector.get_indexes('sample')}
        assert indexes['ix_sample_meter_id_timestamp'] == ['meter_id',
                                                           'timestamp']
        assert indexes['ix_sample_resource_id_timestamp'] == [
            'resource_id', 'timestamp']
        assert not {'ix_sample_meter_id', 'ix_sample_resource_id',
                    'ix_sample_meter_id_resource_id'} & set(indexes)
        if engine.dialect.name == 'postgresql':
            columns = {c['name']: c for c in inspector.get_columns(
                'sample')}
            assert columns['message_id']['type'].collation == 'C'
        # The old rows are read and reused, redelivery is still skipped.
        assert [s.message_id for s in conn.get_samples(
            storage.SampleFilter())] == ['old-2', 'old-1', 'old-0']
        conn.record_metering_data_batch([
            make_sample('cpu', 9, message_id='old-0', timestamp=ts(0),
                        metadata=metadata),
            make_sample('cpu', 9, message_id='new', timestamp=ts(9),
                        metadata=metadata)])
        assert _count(engine, tables.sample) == 4
        assert _count(engine, tables.resource) == 1
        assert _count(engine, tables.meter) == 1

    def test_upgrade_adopts_tables_created_without_alembic(self, conn):
        conn.clear()
        with conn.engine.begin() as connection:
            tables.metering_metadata.create_all(connection)
        assert migration.current_revision(conn.engine,
                                          migration.METERING) is None
        conn.upgrade()
        assert (migration.current_revision(conn.engine, migration.METERING)
                == migration.head_revision(migration.METERING))

    def test_resource_rows_are_shared_until_something_changes(self, conn):
        conn.record_metering_data_batch([
            make_sample('cpu', timestamp=ts(0)),
            make_sample('mem', timestamp=ts(1)),
        ])
        conn.record_metering_data(make_sample('disk', timestamp=ts(2)))
        assert _count(conn.engine, tables.resource) == 1
        assert _count(conn.engine, tables.meter) == 3
        conn.record_metering_data(make_sample(
            'cpu', timestamp=ts(3), metadata={'display_name': 'renamed'}))
        conn.record_metering_data(make_sample('cpu', timestamp=ts(4),
                                              user_id='other'))
        assert _count(conn.engine, tables.resource) == 3
        assert _count(conn.engine, tables.meter) == 3

    def test_resource_states_are_told_apart_by_value_and_type(self, conn):
        """1, 1.0 and True are equal in Python but not the same metadata:
        each gets its own resource row, and a resource state met again
        (as a fresh JSON-decoded dict) is found in the writer's memo."""
        values = [1, 1.0, True, 1, {'n': 1}, {'n': True}]
        for i, value in enumerate(values):
            conn.record_metering_data_batch(json.loads(json.dumps([
                make_sample(timestamp=ts(i), metadata={'v': value},
                            message_id=f'{i}-{j}')
                for j in range(2)], default=str)))
        assert _count(conn.engine, tables.resource) == 5
        with conn.engine.connect() as connection:
            stored = sorted(connection.execute(sa.select(
                tables.resource.c.resource_metadata)).scalars())
        assert stored == sorted(json.dumps({'v': value})
                                for value in values[:3] + values[4:])
        assert len(conn._writer._preparer._states) == 5
        [latest] = conn.get_resources()
        assert latest.metadata == {'v': {'n': True}}

    def test_remembered_resource_state_ignores_later_changes(
            self, conn, storage_conf, db_url):
        """The writer keeps resource states across batches: a caller that
        changes its metadata dict afterwards does not change what is
        written when the state's row has to be created again."""
        metadata = {'name': 'vm', 'tags': ['a']}
        old = _utcnow() - datetime.timedelta(days=1)
        conn.record_metering_data(make_sample(timestamp=old,
                                              metadata=metadata))
        metadata['name'] = 'changed'
        metadata['tags'].append('b')
        other = storage.get_connection(storage_conf, db_url)
        try:
            other.clear_expired_metering_data(60)
        finally:
            other.dispose()
        assert _count(conn.engine, tables.resource) == 0
        conn.record_metering_data(make_sample(
            message_id='again', metadata={'name': 'vm', 'tags': ['a']}))
        [stored] = conn.get_samples(storage.SampleFilter())
        assert stored.resource_metadata == {'name': 'vm', 'tags': ['a']}
        assert [s.message_id for s in conn.get_samples(storage.SampleFilter(
            metaquery={'metadata.name': 'vm'}))] == ['again']

    def test_typed_metadata_rows_written_once(self, conn, caplog):
        metadata = {'name': 'vm', 'n': 3, 'r': 0.25, 'on': True,
                    'none': None, 'deep': {'er': {'x': 'y'}},
                    'l': ['a', {'b': 2}], 'when': BASE}
        with caplog.at_level(logging.WARNING):
            conn.record_metering_data_batch([
                make_sample(timestamp=ts(i), metadata=metadata)
                for i in range(3)])
        assert ('Unknown metadata type. Key (when) will not be queryable.'
                in caplog.text)
        with conn.engine.connect() as connection:
            rows = {}
            for table in (tables.metadata_text, tables.metadata_int,
                          tables.metadata_float, tables.metadata_bool):
                for row in connection.execute(sa.select(table)):
                    rows[row.meta_key] = (table.name, row.value)
        assert rows == {
            'name': ('metadata_text', 'vm'),
            'none': ('metadata_text', None),
            'deep.er.x': ('metadata_text', 'y'),
            'l[0]': ('metadata_text', 'a'),
            'l[1].b': ('metadata_int', 2),
            'n': ('metadata_int', 3),
            'r': ('metadata_float', 0.25),
            'on': ('metadata_bool', True),
        }

    def test_metadata_text_a_database_refuses_is_not_queryable(
            self, conn, caplog):
        """NUL characters and lone surrogates cannot go into a text column
        (PostgreSQL): such metadata leaves are left out of the typed rows,
        the sample and its whole metadata (as JSON) are stored."""
        metadata = {'ok': 'fine', 'nul': 'a\x00b', 'ke\x00y': 1,
                    'bad': '\ud800'}
        with caplog.at_level(logging.WARNING):
            conn.record_metering_data(make_sample(message_id='m',
                                                  metadata=metadata))
        for key in ('nul', 'ke\x00y', 'bad'):
            assert (f'Unknown metadata type. Key ({key}) will not be '
                    f'queryable.' in caplog.text)
        [stored] = conn.get_samples(storage.SampleFilter())
        assert stored.resource_metadata == metadata
        assert [s.message_id for s in conn.get_samples(
            storage.SampleFilter(metaquery={'metadata.ok': 'fine'}))] == ['m']
        with conn.engine.connect() as connection:
            keys = {row.meta_key for table in (tables.metadata_text,
                                               tables.metadata_int)
                    for row in connection.execute(sa.select(table))}
        assert keys == {'ok'}

    def test_generic_insert_path_skips_duplicates(self, conn):
        # PostgreSQL with psycopg 3 normally loads samples with COPY; the
        # executemany path serves other drivers.
        conn._writer._use_copy = False
        batch = [make_sample(volume=i, timestamp=ts(i)) for i in range(4)]
        conn.record_metering_data_batch(batch[:3])
        conn.record_metering_data_batch(batch)
        samples = conn.get_samples(storage.SampleFilter())
        assert [s.counter_volume for s in samples] == [3.0, 2.0, 1.0, 0.0]

    def test_sample_message_id_is_unique_in_the_schema(self, conn):
        constraints = sa.inspect(conn.engine).get_unique_constraints(
            'sample')
        assert ['message_id'] in [c['column_names'] for c in constraints]

    # -- expiry -----------------------------------------------------------

    @pytest.fixture
    def aged(self, conn):
        now = _utcnow()
        conn.record_metering_data_batch([
            make_sample('old', resource_id='gone', timestamp=now
                        - datetime.timedelta(hours=2), message_id='o1',
                        metadata={'k': 'v'}),
            make_sample('cpu', resource_id='kept', timestamp=now
                        - datetime.timedelta(hours=2), message_id='o2'),
            make_sample('cpu', resource_id='kept', timestamp=now
                        - datetime.timedelta(minutes=10), message_id='n1'),
        ])
        return conn

    def test_expiry_removes_old_samples_and_residue(self, aged, caplog):
        with caplog.at_level(logging.INFO):
            aged.clear_expired_metering_data(3600)
        assert '2 samples removed from database' in caplog.text
        assert ('Expired residual resource and meter definition data'
                in caplog.text)
        assert [s.message_id for s in aged.get_samples(
            storage.SampleFilter())] == ['n1']
        assert [m.name for m in aged.get_meters(unique=True)] == ['cpu']
        engine = aged.engine
        assert _count(engine, tables.meter) == 1
        assert _count(engine, tables.resource) == 1
        assert _count(engine, tables.metadata_text) == 1  # kept's name
        # The driver keeps working for the expired meter name.
        aged.record_metering_data(make_sample('old', resource_id='gone'))
        assert len(aged.get_samples(storage.SampleFilter(meter='old'))) == 1

    def test_expiry_samples_only(self, aged, storage_conf, caplog):
        storage_conf.set_override('sql_expire_samples_only', True,
                                  'database')
        with caplog.at_level(logging.INFO):
            aged.clear_expired_metering_data(3600)
        assert 'Expired residual' not in caplog.text
        assert _count(aged.engine, tables.sample) == 1
        assert _count(aged.engine, tables.meter) == 2
        assert _count(aged.engine, tables.resource) == 2

    def test_expiry_in_chunks(self, conn, monkeypatch, caplog):
        monkeypatch.setattr(expiry, 'DELETE_CHUNK_SIZE', 4)
        old = _utcnow() - datetime.timedelta(days=1)
        conn.record_metering_data_batch([
            make_sample(timestamp=old + datetime.timedelta(seconds=i))
            for i in range(10)])
        with caplog.at_level(logging.INFO):
            conn.clear_expired_metering_data(60)
        assert '8 expired samples removed so far' in caplog.text
        assert '10 samples removed from database' in caplog.text
        assert _count(conn.engine, tables.sample) == 0

    def test_record_with_cached_meter_removed_by_another_expirer(
            self, conn, storage_conf, db_url):
        old = _utcnow() - datetime.timedelta(days=1)
        conn.record_metering_data(make_sample('cpu', timestamp=old))
        other = storage.get_connection(storage_conf, db_url)
        try:
            other.clear_expired_metering_data(60)
        finally:
            other.dispose()
        assert _count(conn.engine, tables.meter) == 0
        # ``conn`` still caches the deleted meter's id.
        conn.record_metering_data(make_sample('cpu', volume=7))
        [stored] = conn.get_samples(storage.SampleFilter(meter='cpu'))
        assert stored.counter_volume == 7.0

    def test_cached_ids_reused_for_other_rows_are_not_trusted(
            self, conn, storage_conf, db_url):
        """Another process expires a meter whose id this writer caches
        (and its resource), then creates other ones that may get the same
        ids (SQLite reuses the highest rowid): the writer must not file its
        samples under them."""
        old = _utcnow() - datetime.timedelta(days=1)
        conn.record_metering_data(make_sample('cpu', timestamp=old,
                                              resource_id='mine'))
        other = storage.get_connection(storage_conf, db_url)
        try:
            other.clear_expired_metering_data(60)
            other.record_metering_data(make_sample('disk',
                                                   resource_id='theirs'))
        finally:
            other.dispose()
        # ``conn`` still caches the expired meter's id.
        conn.record_metering_data_batch([
            make_sample('cpu', volume=7, resource_id='mine',
                        timestamp=ts(i)) for i in range(3)])
        samples = conn.get_samples(storage.SampleFilter())
        assert sorted((s.counter_name, s.resource_id, s.counter_volume)
                      for s in samples) == [
            ('cpu', 'mine', 7.0)] * 3 + [('disk', 'theirs', 1.0)]

    def test_event_expiry(self, event_conn, caplog):
        now = _utcnow()
        event_conn.record_events([
            make_event('old', 'type.old', now - datetime.timedelta(hours=2)),
            make_event('old2', 'type.kept',
                       now - datetime.timedelta(hours=2)),
            make_event('new', 'type.kept', now),
        ])
        with caplog.at_level(logging.INFO):
            event_conn.clear_expired_event_data(3600)
        assert '2 events are removed from database' in caplog.text
        assert [e.message_id for e in event_conn.get_events(
            storage.EventFilter())] == ['new']
        assert list(event_conn.get_event_types()) == ['type.kept']
        engine = event_conn.engine
        assert _count(engine, tables.trait_text) == 1
        assert _count(engine, tables.trait_int) == 1
        # An expired event type can be used again.
        event_conn.record_events([make_event('again', 'type.old')])
        assert list(event_conn.get_event_types()) == ['type.kept',
                                                      'type.old']

    # -- concurrency ------------------------------------------------------

    def test_expirer_keeps_rows_a_writer_is_using(self, conn):
        """Deterministic form of the race: a writer transaction has
        resolved a meter and resource without committed samples (the
        expirer's residual candidates) and is inserting its samples; the
        expirer must not delete those rows (it waits on PostgreSQL and
        SQLite, skips the locked rows on MySQL)."""
        data = make_sample('cpu', timestamp=ts(0), message_id='old')
        conn.record_metering_data(data)
        engine = conn.engine
        with engine.begin() as connection:
            connection.execute(tables.sample.delete())
        # conn's writer still caches the meter id: both rows are residual.
        sample_writer = conn._writer
        [(meter, state, values)] = sample_writer._preparer.prepare(
            [make_sample('cpu', timestamp=ts(5), message_id='new')],
            tables.utcnow(), drop=pytest.fail)
        done = threading.Event()
        errors: list[BaseException] = []

        def expire() -> None:
            try:
                expiry.delete_residual_metering(engine)
            except BaseException as err:  # reported by the test
                errors.append(err)
            finally:
                done.set()

        with db_engine.write_transaction(engine) as connection:
            db_engine.residual_data_lock(connection, exclusive=False)
            meter_id = sample_writer._ids.meter_ids[meter]
            alive, resources = sample_writer._lookup.open_batch(
                connection, [meter_id], [state.identity])
            assert alive == {meter_id: meter}
            expirer = threading.Thread(target=expire)
            expirer.start()
            done.wait(1.0)
            connection.execute(tables.sample.insert(), [dict(zip(
                preparation.SAMPLE_COLUMNS,
                (meter_id, resources[state.identity], *values),
                strict=True))])
        expirer.join(60)
        assert not expirer.is_alive()
        assert errors == []
        counts = (_count(engine, tables.sample),
                  _count(engine, tables.meter),
                  _count(engine, tables.resource))
        assert counts == (1, 1, 1), counts
        [stored] = conn.get_samples(storage.SampleFilter())
        assert (stored.message_id, stored.counter_name,
                stored.resource_id) == ('new', 'cpu', 'res-1')
        assert _count(engine, tables.meter) == 1
        assert _count(engine, tables.resource) == 1

    def test_residual_lock_row_is_restored(self, conn):
        """MySQL locks the storage_lock row; should it be deleted, the
        next batch puts it back (other backends ignore the table)."""
        with conn.engine.begin() as connection:
            assert connection.execute(sa.select(
                tables.storage_lock.c.name)).scalars().all() == ['residual']
            connection.execute(tables.storage_lock.delete())
        conn.record_metering_data(make_sample())
        with conn.engine.connect() as connection:
            names = connection.execute(
                sa.select(tables.storage_lock.c.name)).scalars().all()
        expected = ['residual'] if conn.engine.dialect.name == 'mysql' else []
        assert names == expected
        assert len(conn.get_samples(storage.SampleFilter())) == 1

    def test_expirer_never_orphans_samples_of_concurrent_writers(
            self, conn, db_url):
        """Samples have no foreign keys: while two writers keep using
        meter and resource rows the expirer finds without samples, no
        sample may end up pointing at a deleted row, and no sample that
        is not expired may be lost."""
        rounds = 25
        context = multiprocessing.get_context('spawn')
        children = [context.Process(target=workers.write_expiring_batches,
                                    args=(db_url, writer, rounds))
                    for writer in range(2)]
        children.append(context.Process(target=workers.expire_repeatedly,
                                        args=(db_url, 4.0)))
        for child in children:
            child.start()
        for child in children:
            child.join(180)
        assert [c.exitcode for c in children] == [0] * len(children)
        sample, meter, resource = (tables.sample, tables.meter,
                                   tables.resource)
        with conn.engine.connect() as connection:
            orphans = connection.execute(
                sa.select(sa.func.count()).select_from(sample).where(
                    sa.or_(~sa.exists().where(meter.c.id
                                              == sample.c.meter_id),
                           ~sa.exists().where(resource.c.internal_id
                                              == sample.c.resource_id)))
            ).scalar_one()
        assert orphans == 0
        kept = conn.get_samples(storage.SampleFilter(meter='keep'))
        assert len(kept) == 2 * rounds
        assert {s.resource_id for s in kept} == {'keep-res-0', 'keep-res-1'}
        # Whatever old samples survive are readable with their rows.
        conn.clear_expired_metering_data(86400)
        assert conn.get_samples(storage.SampleFilter(
            start_timestamp='1999-01-01', end_timestamp='2001-01-01')) == []
        assert sorted(m.name for m in conn.get_meters(unique=True)) == [
            'keep']

    def test_concurrent_writers_store_each_sample_once(self, conn, db_url):
        batches = [
            [make_sample(f'meter-{(b + i) % 5}', i,
                         resource_id=f'res-{(b * 7 + i) % 11}',
                         timestamp=ts(b * 100 + i),
                         message_id=f'b{b}-s{i}',
                         metadata={'n': (b * 7 + i) % 11})
             for i in range(50)]
            for b in range(8)]
        context = multiprocessing.get_context('spawn')
        children = [context.Process(target=workers.write_batches,
                                   args=(db_url, batches, start))
                   for start in (0, 0, 3, 5)]
        for child in children:
            child.start()
        for child in children:
            child.join(120)
        assert [c.exitcode for c in children] == [0] * len(children)
        engine = conn.engine
        assert _count(engine, tables.sample) == 400
        assert _count(engine, tables.meter) == 5
        # One row per distinct (resource_id, metadata): 11 resources.
        assert _count(engine, tables.resource) == 11
        assert _count(engine, tables.metadata_int) == 11


class InvalidSampleTests(StorageFixtures):
    """Samples a database would reject are dropped, not the batch."""

    @pytest.mark.parametrize('change, reason', [
        ({'counter_volume': 'many'}, "counter_volume 'many' is not a number"),
        ({'counter_volume': float('nan')}, 'is not finite'),
        ({'counter_volume': [1]}, 'is not a number'),
        ({'resource_id': None}, 'resource_id is missing'),
        ({'counter_name': ''}, 'counter_name is missing'),
        ({'counter_unit': 'u' * 256}, 'counter_unit is longer than 255'),
        ({'message_id': 'm' * 129}, 'message_id is longer than 128'),
        ({'user_id': 42}, 'user_id is a int, not text'),
        ({'timestamp': 'yesterday'}, "timestamp 'yesterday' cannot be"),
        # The ISO 8601 parser's spellings beyond isoformat()'s still count.
        ({'timestamp': '2024-05-01T12:00:00.5Z+'}, 'cannot be parsed'),
        # Before year 1 in UTC.
        ({'timestamp': '0001-01-01T00:00:00+01:00'}, 'cannot be parsed'),
        # PostgreSQL refuses NUL characters and text that is not UTF-8.
        ({'resource_id': 'res\x00'}, 'resource_id contains a NUL'),
        ({'counter_name': 'cpu\x00'}, 'counter_name contains a NUL'),
        ({'message_id': 'id\x00'}, 'message_id contains a NUL'),
        ({'message_signature': 's\x00'}, 'message_signature contains a NUL'),
        ({'project_id': 'p\ud800'}, 'project_id is not valid Unicode'),
        # The dispatcher's rule: only numbers and their text.
        ({'counter_volume': b'1'}, 'is not a number'),
        ({'counter_volume': '1e999'}, 'is not finite'),
    ])
    def test_invalid_sample_is_dropped_and_counted(self, conn, caplog,
                                                   change, reason):
        good = [make_sample(volume=i, timestamp=ts(i), message_id=f'g{i}')
                for i in range(3)]
        bad = dict(make_sample(message_id='bad'), **change)
        with caplog.at_level(logging.WARNING):
            conn.record_metering_data_batch([good[0], bad, *good[1:]])
        assert sorted(s.message_id for s in conn.get_samples(
            storage.SampleFilter())) == ['g0', 'g1', 'g2']
        assert reason in caplog.text
        assert conn.checker.dropped == 1
        # A numeric string is a number.
        conn.record_metering_data(make_sample(volume='2.5',
                                              message_id='text'))
        [stored] = conn.get_samples(storage.SampleFilter(message_id='text'))
        assert stored.counter_volume == 2.5
        assert conn.checker.dropped == 1
