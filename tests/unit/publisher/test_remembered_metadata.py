"""Remembered renderings of resource metadata give the rule's signatures.

:mod:`telemeter.publisher.rendering` keeps the text of a sample's
``resource_metadata`` by the dict's marshal bytes. These tests sign
metadata that a careless key would confuse (values equal in Python but of
other types, buffers marshal writes alike, a dict changed in place) one
after the other and compare every signature with the rule's.
"""

from __future__ import annotations

import array
import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemeter.publisher import rendering, utils
from tests.unit.test_signing_rule import (
    _VALUES,
    _outcome,
    reference_signature,
)

SECRET = 'remembered'


def _metering(metadata: object, message_id: str = 'm-1') -> dict:
    return {'source': 'openstack', 'counter_name': 'cpu',
            'counter_type': 'cumulative', 'counter_unit': 'ns',
            'counter_volume': 1, 'user_id': 'u', 'project_id': 'p',
            'resource_id': 'r', 'timestamp': '2031-01-01T00:00:00',
            'resource_metadata': metadata, 'message_id': message_id,
            'monotonic_time': None}


@pytest.fixture(autouse=True)
def _forget():
    rendering.remembered.clear()
    yield
    rendering.remembered.clear()


def _signs_as_the_rule(metadata: object) -> None:
    message = _metering(metadata)
    assert (utils.compute_signature(message, SECRET)
            == reference_signature(message, SECRET))


@pytest.mark.parametrize('values', [
    (1, 1.0, True),
    (0, 0.0, -0.0, False, None, ''),
    (b'x', bytearray(b'x'), memoryview(b'x'), array.array('b', [120])),
    (['a'], ('a',), [b'a']),
])
def test_look_alike_values_sign_each_as_the_rule(values):
    # Twice round: the second pass finds whatever the first remembered.
    for _round in range(2):
        for value in values:
            _signs_as_the_rule({'host': 'compute-1', 'value': value,
                                'flavor': {'ram': value}})


def test_buffers_are_not_remembered():
    # marshal writes bytes, bytearray and memoryview alike; str() does not.
    _signs_as_the_rule({'v': b'x'})
    assert len(rendering.remembered) == 0


def test_a_dict_changed_in_place_signs_its_new_content():
    metadata = {'status': 'active', 'flavor': {'ram': 512}}
    first = utils.compute_signature(_metering(metadata), SECRET)
    metadata['flavor']['ram'] = 1024
    second = utils.compute_signature(_metering(metadata), SECRET)
    assert second != first
    assert second == reference_signature(_metering(metadata), SECRET)


def test_repeated_metadata_is_rendered_once(monkeypatch):
    rendered = []
    add_pairs = rendering._add_pairs

    def counting(mapping, keys, prefix, parts):
        if prefix == f'{rendering.REMEMBERED_FIELD}:':
            rendered.append(prefix)
        return add_pairs(mapping, keys, prefix, parts)

    monkeypatch.setattr(rendering, '_add_pairs', counting)
    for number in range(5):
        # A new dict each time, as decoded off the bus.
        metadata = {'display_name': 'vm-1', 'vcpus': 1,
                    'flavor': {'name': 'm1.tiny', 'ram': 512},
                    'tags': ['a', 'b'], 'task_state': None}
        message = _metering(metadata, f'm-{number}')
        assert (utils.compute_signature(message, SECRET)
                == reference_signature(message, SECRET))
    assert len(rendered) == 1


@pytest.mark.parametrize('metadata', [
    {'when': datetime.datetime(2031, 1, 1)},   # marshal refuses it
    {1: 'int key'},                            # the generic path
    {'deep': [{'k': b'v'}]},                   # a list of dicts
])
def test_metadata_off_the_remembered_path_signs_as_the_rule(metadata):
    for _round in range(2):
        _signs_as_the_rule(metadata)
    assert len(rendering.remembered) == 0


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(metadata=st.lists(st.dictionaries(st.text(max_size=4), _VALUES,
                                         max_size=6), min_size=1,
                         max_size=4))
def test_generated_metadata_in_sequence_signs_as_the_rule(metadata):
    for _round in range(2):
        for item in metadata:
            message = _metering(item)
            assert (_outcome(utils.compute_signature, message, SECRET)
                    == _outcome(reference_signature, message, SECRET))


def test_memory_is_bounded_and_starts_afresh_when_full():
    texts = rendering.RememberedTexts(max_bytes=100)
    texts.add(b'a' * 20, 'x' * 20)        # 40 bytes
    texts.add(b'b' * 20, 'y' * 20)        # 80 bytes
    texts.add(b'c' * 20, 'z' * 20)        # would make 120: refused
    assert (texts.get(b'a' * 20), texts.get(b'c' * 20)) == ('x' * 20, None)
    assert len(texts) == 2
    texts.add(b'd' * 20, 'w' * 20)        # refused: 80 refused >= 80 kept
    assert len(texts) == 0
    texts.add(b'e' * 20, 'v' * 20)
    assert texts.get(b'e' * 20) == 'v' * 20
