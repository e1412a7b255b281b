"""The complex query parser every backend compiles (its results per
backend are in query_suite.py)."""

import datetime

import pytest

import telemeter
from telemeter.storage import complex_query as cq
from telemeter.storage.mongo import queries as mongo_queries
from telemeter.storage.sqlalchemy import complex_query as sql_query


def test_a_tree_with_canonical_names():
    tree = cq.parse_filter({'AND': [
        {'=<': {'counter_volume': 3}},
        {'Not': {'in': {'source_id': ('a', 'b')}}},
        {'=~': {'resource_metadata.display_name': '^web'}}]})
    assert tree == cq.Junction('and', (
        cq.Comparison('<=', 'counter_volume', 3),
        cq.Negation(cq.Comparison('in', 'source', ['a', 'b'])),
        cq.Comparison('=~', 'resource_metadata.display_name', '^web')))
    assert tree.parts[2].metadata_key == 'display_name'
    assert tree.parts[0].metadata_key is None


def test_timestamps_become_naive_utc():
    tree = cq.parse_filter({'>=': {'timestamp': '2026-01-02T03:04:05+01:00'}})
    assert tree.value == datetime.datetime(2026, 1, 2, 2, 4, 5)
    tree = cq.parse_filter({'in': {'recorded_at': ['2026-01-02T03:04:05']}})
    assert tree.value == [datetime.datetime(2026, 1, 2, 3, 4, 5)]


@pytest.mark.parametrize('expr', [None, {}])
def test_no_filter(expr):
    assert cq.parse_filter(expr) is None


@pytest.mark.parametrize('expr, message', [
    (['='], 'one-key dict'),
    ({'=': {'counter_name': 'a'}, '!=': {'user_id': 'b'}}, 'one-key dict'),
    ({'and': []}, "'and' needs a non-empty list"),
    ({'or': {'=': {'user_id': 'u'}}}, "'or' needs a non-empty list"),
    ({'like': {'user_id': 'u'}}, "Unknown operator 'like'"),
    ({'=': {'user_id': 'u', 'project_id': 'p'}}, 'exactly one'),
    ({'=': 'user_id'}, 'exactly one'),
    ({'=': {'volume': 1}}, "Unknown field 'volume'"),
    ({'in': {'user_id': 'u'}}, 'needs a list of values'),
    ({'not': {'=': {'nope': 1}}}, "Unknown field 'nope'"),
])
def test_malformed_filters_say_what_is_wrong(expr, message):
    with pytest.raises(ValueError, match=message):
        cq.parse_filter(expr)


def test_in_on_metadata_is_not_implemented():
    with pytest.raises(telemeter.NotImplementedError,
                       match='Metadata query with in operator'):
        cq.parse_filter({'in': {'resource_metadata.size': [1, 2]}})


def test_orderby_keys():
    assert cq.parse_orderby([{'source_id': 'ASC'},
                             {'counter_volume': 'desc'}]) == [
        cq.Ordering('source', False), cq.Ordering('counter_volume', True)]
    assert cq.parse_orderby(None) == []


@pytest.mark.parametrize('orderby, message', [
    ([{'volume': 'asc'}], "Unknown field 'volume' in orderby"),
    ([{'user_id': 'up'}], "Order of 'user_id' must be asc or desc"),
    ({'user_id': 'asc'}, 'orderby is a list'),
    (['user_id'], 'An orderby item'),
])
def test_malformed_orderby_says_what_is_wrong(orderby, message):
    with pytest.raises(ValueError, match=message):
        cq.parse_orderby(orderby)


def test_every_field_has_a_sql_column():
    assert set(sql_query.sample_fields()) == cq.FIELDS


def test_both_backends_refuse_alike():
    for compile_filter in (sql_query.condition, mongo_queries.complex_query):
        with pytest.raises(ValueError, match="Unknown field 'volume'"):
            compile_filter({'=': {'volume': 1}})
    for compile_order in (sql_query.order_by, mongo_queries.sort_spec):
        with pytest.raises(ValueError, match='must be asc or desc'):
            compile_order([{'user_id': 'sideways'}])


def test_mongodb_query_of_a_tree():
    assert mongo_queries.complex_query({'and': [
        {'=': {'source_id': 's'}},
        {'not': {'=>': {'counter_volume': 2}}},
        {'=': {'resource_metadata.disks[1].size': 10}}]}) == {'$and': [
            {'source': 's'},
            {'$nor': [{'counter_volume': {'$gte': 2}}]},
            {'resource_metadata.disks.1.size': 10}]}
