"""The wire messages' declared fields match what the builders produce."""

import datetime
import decimal

import pytest

from telemeter import sample, wire
from telemeter.publisher import utils
from telemeter.storage import models, validation


def _fields(typed_dict: type) -> tuple[frozenset[str], frozenset[str]]:
    return (frozenset(typed_dict.__required_keys__),
            frozenset(typed_dict.__optional_keys__))


def _sample() -> sample.Sample:
    return sample.Sample(
        name='cpu', type=sample.TYPE_CUMULATIVE, unit='ns', volume=42,
        user_id='u', project_id='p', resource_id='r',
        timestamp='2026-12-04T00:00:00+00:00',
        resource_metadata={'flavor': {'vcpus': 2}}, source='openstack')


@pytest.mark.parametrize('publisher_id', [None, 'compute-1'])
def test_metering_message_has_exactly_the_declared_fields(publisher_id):
    required, optional = _fields(wire.MeteringMessage)
    message = utils.meter_message_from_counter(_sample(), 'secret',
                                               publisher_id=publisher_id)
    expected = required | (optional if publisher_id else frozenset())
    assert set(message) == expected
    assert optional == {'publisher_id'}


def test_metering_placeholder_signature_is_not_signed():
    one = _sample()
    message = utils.meter_message_from_counter(one, 'secret')
    assert len(message['message_signature']) == 64
    assert utils.verify_signature(dict(message), 'secret')
    unsigned = utils.meter_message_from_counter(one, None)
    assert unsigned['message_signature'] == ''
    # The same fields sign the same, whatever the placeholder held.
    assert utils.compute_signature(dict(unsigned), 'secret') == \
        message['message_signature']


def test_event_message_has_exactly_the_declared_fields():
    required, optional = _fields(wire.EventMessage)
    event = models.Event(
        'm-1', 'compute.instance.delete.end',
        datetime.datetime(2026, 12, 4), [
            models.Trait('host', models.Trait.TEXT_TYPE, 'c1')], {})
    assert set(event.serialize()) == required
    message = utils.message_from_event(event, 'secret')
    assert set(message) == required | optional
    assert utils.verify_signature(dict(message), 'secret')


def test_storage_limits_are_the_wire_limits():
    assert validation.MAX_LENGTHS is wire.MAX_LENGTHS
    declared = set(wire.MeteringMessage.__annotations__)
    for name in (*wire.MAX_LENGTHS, *wire.REQUIRED, *wire.RESOURCE_FIELDS,
                 *wire.METER_FIELDS):
        assert name in declared, name


P = wire.VolumeProblem


@pytest.mark.parametrize('value, pipeline, storage', [
    (1, None, None),
    (2.5, None, None),
    (True, None, None),
    ('3.5', None, None),
    (' 4 ', None, None),
    (decimal.Decimal('1.5'), None, None),
    (None, P.MISSING, P.MISSING),
    ('abc', P.NOT_A_NUMBER, P.NOT_A_NUMBER),
    ([1], P.NOT_A_NUMBER, P.NOT_A_NUMBER),
    ({'v': 1}, P.NOT_A_NUMBER, P.NOT_A_NUMBER),
    (b'1', P.NOT_A_NUMBER, P.NOT_A_NUMBER),
    (float('inf'), None, P.NOT_FINITE),
    ('-inf', None, P.NOT_FINITE),
    ('1e999', None, P.NOT_FINITE),
    (float('nan'), None, P.NOT_FINITE),
    (10 ** 400, None, P.NOT_FINITE),
])
def test_one_volume_rule_for_the_pipeline_and_storage(value, pipeline,
                                                      storage):
    assert wire.volume_problem(value, finite=False) is pipeline
    assert wire.volume_problem(value, finite=True) is storage
