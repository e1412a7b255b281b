"""``query_samples``: the complex filter language, for every backend.

Data: five samples, newest last (BASE + 0, 60, 120, 180, 240 s)::

    q1 cpu  1 r1 u1 p1 openstack  web-1 size 1 ratio 0.5 active
    q2 cpu  5 r2 u2 p1 openstack  web-2 size 2 ratio 1.5 inactive
    q3 mem 10 r1 u1 p1 openstack  web-1 size 1 ratio 0.5 active
    q4 mem 20 r3 u2 p2 other      db-1  size 4
    q5 disk 30 r3 (no user/project) openstack db-1 size 4
"""

from __future__ import annotations

import pytest

import telemeter
from tests.unit.storage.driver_suite import StorageFixtures, make_sample, ts

WEB1 = {'display_name': 'web-1', 'size': 1, 'ratio': 0.5, 'active': True}
WEB2 = {'display_name': 'web-2', 'size': 2, 'ratio': 1.5, 'active': False}
DB1 = {'display_name': 'db-1', 'size': 4}


class ComplexQueryTests(StorageFixtures):
    """query_samples semantics shared by every driver."""

    @pytest.fixture
    def query_conn(self, conn):
        conn.record_metering_data_batch([
            make_sample('cpu', 1, resource_id='r1', user_id='u1',
                        project_id='p1', timestamp=ts(0), metadata=WEB1,
                        message_id='q1'),
            make_sample('cpu', 5, resource_id='r2', user_id='u2',
                        project_id='p1', timestamp=ts(60), metadata=WEB2,
                        message_id='q2'),
            make_sample('mem', 10, resource_id='r1', user_id='u1',
                        project_id='p1', timestamp=ts(120), metadata=WEB1,
                        message_id='q3', unit='MB'),
            make_sample('mem', 20, resource_id='r3', user_id='u2',
                        project_id='p2', timestamp=ts(180), metadata=DB1,
                        message_id='q4', unit='MB', source='other'),
            make_sample('disk', 30, resource_id='r3', user_id=None,
                        project_id=None, timestamp=ts(240), metadata=DB1,
                        message_id='q5', unit='B'),
        ])
        return conn

    @staticmethod
    def ids(samples) -> list[str]:
        return [s.message_id for s in samples]

    @pytest.mark.parametrize('expr, expected', [
        (None, ['q5', 'q4', 'q3', 'q2', 'q1']),
        ({'=': {'counter_name': 'cpu'}}, ['q2', 'q1']),
        ({'!=': {'counter_name': 'cpu'}}, ['q5', 'q4', 'q3']),
        ({'=': {'counter_unit': 'MB'}}, ['q4', 'q3']),
        ({'=': {'counter_type': 'gauge'}}, ['q5', 'q4', 'q3', 'q2', 'q1']),
        ({'>': {'counter_volume': 5}}, ['q5', 'q4', 'q3']),
        ({'>=': {'counter_volume': 5}}, ['q5', 'q4', 'q3', 'q2']),
        ({'=>': {'counter_volume': 5}}, ['q5', 'q4', 'q3', 'q2']),
        ({'<': {'counter_volume': 10}}, ['q2', 'q1']),
        ({'<=': {'counter_volume': 10}}, ['q3', 'q2', 'q1']),
        ({'=<': {'counter_volume': 10}}, ['q3', 'q2', 'q1']),
        ({'in': {'resource_id': ['r1', 'r3']}}, ['q5', 'q4', 'q3', 'q1']),
        ({'in': {'message_id': ['q1', 'q3', 'nope']}}, ['q3', 'q1']),
        ({'=~': {'resource_id': '^r[12]$'}}, ['q3', 'q2', 'q1']),
        ({'=~': {'counter_name': 'e'}}, ['q4', 'q3']),
        ({'=': {'user_id': 'u2'}}, ['q4', 'q2']),
        ({'=': {'project_id': 'p1'}}, ['q3', 'q2', 'q1']),
        ({'=': {'source': 'other'}}, ['q4']),
        ({'=': {'message_signature': 'sig-q2'}}, ['q2']),
        ({'and': [{'=': {'counter_name': 'mem'}},
                  {'>': {'counter_volume': 15}}]}, ['q4']),
        ({'or': [{'=': {'counter_name': 'disk'}},
                 {'<': {'counter_volume': 2}}]}, ['q5', 'q1']),
        ({'not': {'=': {'counter_name': 'cpu'}}}, ['q5', 'q4', 'q3']),
        ({'and': [{'or': [{'=': {'resource_id': 'r1'}},
                          {'=': {'resource_id': 'r2'}}]},
                  {'not': {'=': {'counter_name': 'mem'}}}]}, ['q2', 'q1']),
        ({'>': {'timestamp': '2024-05-01T12:02:00'}}, ['q5', 'q4']),
        ({'>': {'timestamp': '2024-05-01T14:02:00+02:00'}}, ['q5', 'q4']),
        ({'<=': {'timestamp': '2024-05-01T12:01:00Z'}}, ['q2', 'q1']),
        ({'>': {'recorded_at': '2000-01-01T00:00:00'}},
         ['q5', 'q4', 'q3', 'q2', 'q1']),
        ({'=': {'resource_metadata.display_name': 'web-2'}}, ['q2']),
        ({'>=': {'resource_metadata.size': 2}}, ['q5', 'q4', 'q2']),
        ({'<': {'resource_metadata.ratio': 1.0}}, ['q3', 'q1']),
        ({'=': {'resource_metadata.active': True}}, ['q3', 'q1']),
        ({'=~': {'resource_metadata.display_name': '^db'}}, ['q5', 'q4']),
        ({'and': [{'=': {'resource_metadata.size': 4}},
                  {'=': {'counter_name': 'mem'}}]}, ['q4']),
    ])
    def test_filter_expressions(self, query_conn, expr, expected):
        assert self.ids(query_conn.query_samples(expr)) == expected

    @pytest.mark.parametrize('orderby, expected', [
        ([{'counter_volume': 'asc'}], ['q1', 'q2', 'q3', 'q4', 'q5']),
        ([{'timestamp': 'asc'}], ['q1', 'q2', 'q3', 'q4', 'q5']),
        ([{'counter_name': 'asc'}, {'counter_volume': 'desc'}],
         ['q2', 'q1', 'q5', 'q4', 'q3']),
        ([{'resource_id': 'desc'}, {'timestamp': 'asc'}],
         ['q4', 'q5', 'q2', 'q1', 'q3']),
    ])
    def test_orderby(self, query_conn, orderby, expected):
        assert self.ids(query_conn.query_samples(orderby=orderby)) == \
            expected

    def test_limit(self, query_conn):
        assert self.ids(query_conn.query_samples(limit=2)) == ['q5', 'q4']
        assert self.ids(query_conn.query_samples(
            {'=': {'counter_name': 'cpu'}},
            orderby=[{'counter_volume': 'asc'}], limit=1)) == ['q1']
        assert list(query_conn.query_samples(limit=0)) == []

    def test_samples_are_complete(self, query_conn):
        [sample] = query_conn.query_samples({'=': {'message_id': 'q4'}})
        assert (sample.counter_name, sample.counter_unit,
                sample.counter_volume, sample.resource_id, sample.user_id,
                sample.project_id, sample.source) == (
            'mem', 'MB', 20.0, 'r3', 'u2', 'p2', 'other')
        assert sample.timestamp == ts(180)
        assert sample.resource_metadata == DB1

    def test_metadata_with_in_is_not_implemented(self, query_conn):
        with pytest.raises(telemeter.NotImplementedError,
                           match='Metadata query with in operator is not '
                                 'implemented'):
            query_conn.query_samples(
                {'in': {'resource_metadata.size': [1, 2]}})
