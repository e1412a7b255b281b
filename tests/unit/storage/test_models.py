"""Storage models: Model base, Event, Trait and the metering models."""

from __future__ import annotations

import datetime

import pytest

from telemeter.storage import base, models

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0)


class Point(base.Model):
    def __init__(self, x, y=None):
        base.Model.__init__(self, x=x, y=y)


def test_model_stores_fields_as_attributes():
    point = Point(1, 2)
    assert (point.x, point.y) == (1, 2)
    assert point.as_dict() == {'x': 1, 'y': 2}


def test_as_dict_converts_nested_models_and_lists():
    outer = Point(Point(1), [Point(2, 3), Point(4)])
    assert outer.as_dict() == {'x': {'x': 1, 'y': None},
                               'y': [{'x': 2, 'y': 3}, {'x': 4, 'y': None}]}


def test_equality_compares_as_dict():
    assert Point(1, [Point(2)]) == Point(1, [Point(2)])
    assert Point(1, 2) != Point(1, 3)
    assert Point(1) != object()


def test_get_field_names_are_constructor_arguments():
    assert Point.get_field_names() == {'x', 'y'}
    assert models.Sample.get_field_names() == {
        'source', 'counter_name', 'counter_type', 'counter_unit',
        'counter_volume', 'user_id', 'project_id', 'resource_id',
        'timestamp', 'resource_metadata', 'message_id',
        'message_signature', 'recorded_at'}
    assert models.Resource.get_field_names() == {
        'resource_id', 'project_id', 'first_sample_timestamp',
        'last_sample_timestamp', 'source', 'user_id', 'metadata'}
    assert models.Meter.get_field_names() == {
        'name', 'type', 'unit', 'resource_id', 'project_id', 'source',
        'user_id'}
    assert models.Event.get_field_names() == {
        'message_id', 'event_type', 'generated', 'traits', 'raw'}
    assert models.Trait.get_field_names() == {'name', 'dtype', 'value'}


def test_statistics_keeps_extra_aggregates():
    stats = models.Statistics(unit='ns', period=0, period_start=NOW,
                              period_end=NOW, duration=0.0,
                              duration_start=NOW, duration_end=NOW,
                              groupby=None, min=1, max=2,
                              aggregate={'count': 2})
    assert stats.min == 1
    assert stats.as_dict()['aggregate'] == {'count': 2}
    assert set(stats.as_dict()) == {
        'unit', 'period', 'period_start', 'period_end', 'duration',
        'duration_start', 'duration_end', 'groupby', 'min', 'max',
        'aggregate'}


def test_event_serialize():
    event = models.Event('id-1', 'compute.create', NOW,
                         [models.Trait('when', models.Trait.DATETIME_TYPE,
                                       NOW),
                          models.Trait('n', models.Trait.INT_TYPE, 3)],
                         {'raw': True})
    assert event.serialize() == {
        'message_id': 'id-1',
        'event_type': 'compute.create',
        'generated': '2024-05-01T12:00:00',
        'traits': [('when', 4, '2024-05-01T12:00:00'), ('n', 2, 3)],
        'raw': {'raw': True},
    }


def test_event_serialize_keeps_generated_without_isoformat():
    event = models.Event('id', 'type', '2024-05-01T12:00:00', [], {})
    assert event.serialize()['generated'] == '2024-05-01T12:00:00'


def test_event_append_trait_and_constants():
    event = models.Event('id', 'type', NOW, [], {})
    trait = models.Trait('a', 1, 'b')
    event.append_trait(trait)
    assert event.traits == [trait]
    assert (models.Event.DUPLICATE, models.Event.UNKNOWN_PROBLEM,
            models.Event.INCOMPATIBLE_TRAIT) == (1, 2, 3)
    assert repr(event) == ('<Event: id, type, 2024-05-01 12:00:00, '
                           '<Trait: a 1 b>>')


def test_event_equality_includes_traits():
    one = models.Event('id', 'type', NOW, [models.Trait('a', 1, 'b')], {})
    two = models.Event('id', 'type', NOW, [models.Trait('a', 1, 'c')], {})
    assert one != two
    assert one == models.Event('id', 'type', NOW,
                               [models.Trait('a', 1, 'b')], {})


@pytest.mark.parametrize('dtype', [None, 0, False, ''])
def test_trait_falsy_dtype_becomes_none_type(dtype):
    assert models.Trait('x', dtype, 'v').dtype == models.Trait.NONE_TYPE


def test_trait_constants_and_names():
    trait = models.Trait
    assert (trait.NONE_TYPE, trait.TEXT_TYPE, trait.INT_TYPE,
            trait.FLOAT_TYPE, trait.DATETIME_TYPE) == (0, 1, 2, 3, 4)
    assert trait.type_names == {0: 'none', 1: 'string', 2: 'integer',
                                3: 'float', 4: 'datetime'}
    assert models.Trait('x', 3, 1.0).get_type_name() == 'float'
    assert trait.get_name_by_type(4) == 'datetime'
    assert trait.get_name_by_type(99) == 'none'
    assert sorted(trait.get_type_names()) == sorted(
        ['none', 'string', 'integer', 'float', 'datetime'])


@pytest.mark.parametrize('name, expected', [
    ('text', 1), ('TEXT', 1), ('int', 2), ('float', 3), ('datetime', 4),
    ('none', 0), ('string', None), ('bogus', None),
])
def test_trait_get_type_by_name(name, expected):
    assert models.Trait.get_type_by_name(name) == expected


def test_trait_serialize():
    assert models.Trait('a', 2, 5).serialize() == ('a', 2, 5)
    assert models.Trait('d', 4, NOW).serialize() == (
        'd', 4, '2024-05-01T12:00:00')


@pytest.mark.parametrize('dtype, value, expected', [
    (models.Trait.INT_TYPE, '42', 42),
    (models.Trait.INT_TYPE, 7.9, 7),
    (models.Trait.FLOAT_TYPE, '1.5', 1.5),
    (models.Trait.DATETIME_TYPE, '2024-05-01T14:00:00+02:00',
     datetime.datetime(2024, 5, 1, 12, 0)),
    (models.Trait.DATETIME_TYPE, '2024-05-01T12:00:00.5',
     datetime.datetime(2024, 5, 1, 12, 0, 0, 500000)),
    (models.Trait.TEXT_TYPE, 123, '123'),
    (models.Trait.TEXT_TYPE, b'caf\xc3\xa9', 'café'),
    (models.Trait.NONE_TYPE, 'x', 'x'),
    (models.Trait.TEXT_TYPE, 'y' * 300, 'y' * 255),
])
def test_trait_convert_value(dtype, value, expected):
    converted = models.Trait.convert_value(dtype, value)
    assert converted == expected
    assert type(converted) is type(expected)
    if isinstance(converted, datetime.datetime):
        assert converted.tzinfo is None


def test_trait_convert_value_rejects_bad_numbers():
    with pytest.raises(ValueError):
        models.Trait.convert_value(models.Trait.INT_TYPE, 'abc')
