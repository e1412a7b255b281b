"""Trait conditions of an EventFilter, parsed once for every backend
(their results per backend are in driver_suite.py)."""

import datetime

import pytest

from telemeter.storage import trait_filter
from telemeter.storage.mongo import events as mongo_events
from telemeter.storage.sqlalchemy import filters as sql_filters


@pytest.mark.parametrize('spec, expected', [
    ({'key': 'state', 'string': 'active'}, ('eq', 'string', 'active')),
    ({'key': 'n', 'integer': '3', 'op': 'ge'}, ('ge', 'integer', 3)),
    ({'key': 'x', 'float': 2, 'op': None}, ('eq', 'float', 2.0)),
    ({'key': 'at', 'datetime': '2026-01-02T03:04:05+01:00', 'op': 'lt'},
     ('lt', 'datetime', datetime.datetime(2026, 1, 2, 2, 4, 5))),
])
def test_a_condition_of_its_type(spec, expected):
    condition = trait_filter.parse(spec)
    assert (condition.op, condition.type_name, condition.value) == expected
    assert condition.key == spec['key']


@pytest.mark.parametrize('spec, message', [
    ({'string': 'a'}, 'has no key'),
    ({'key': 'k'}, 'must name exactly one of string, integer'),
    ({'key': 'k', 'string': 'a', 'integer': 1}, 'must name exactly one'),
    ({'key': 'k', 'text': 'a'}, 'Unsupported trait filter'),
    ({'key': 'k', 'string': 'a', 'op': 'like'}, 'Unsupported trait filter'),
    ({'key': 'k', 'integer': 'many'}, 'invalid literal'),
])
def test_malformed_filters_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        trait_filter.parse(spec)


def test_both_backends_refuse_alike():
    bad = {'key': 'k', 'string': 'a', 'op': 'like'}
    for compile_condition in (sql_filters._trait_filter_condition,
                              mongo_events._trait_condition):
        with pytest.raises(ValueError, match='Unsupported trait filter'):
            compile_condition(bad)


def test_mongodb_condition():
    assert mongo_events._trait_condition(
        {'key': 'n', 'integer': '3', 'op': 'ne'}) == {'traits': {
            '$elemMatch': {'trait_name': 'n', 'trait_type': 2,
                           'trait_value': {'$ne': 3}}}}
