"""The fast message signing gives exactly the signatures of the rule.

The rule (Ceilometer's): for every ``(name, value)`` pair of the message,
flattened with nested dict names joined by ':' and every level visited in
key order, except the top-level ``message_signature``, the HMAC-SHA256 is
fed ``str(name)`` then ``str(value)`` in UTF-8. A list or tuple value is
rendered after converting it recursively: text to UTF-8 bytes, bytes to
text, dicts rebuilt in key order, tuples as lists.

The reference below is written from that rule; the implementation under
test must agree with it on generated messages, fall back where its fast
path does not apply, and reproduce fixed vectors that the code signed
before the fast path existed.
"""

from __future__ import annotations

import collections
import datetime
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemeter.publisher import utils

# -- the reference, from the rule -------------------------------------------


def _sequence_form(value: Any) -> Any:
    """Convert a list or tuple value the way the rule does before str()."""
    if isinstance(value, dict):
        return {_sequence_form(key): _sequence_form(value[key])
                for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sequence_form(item) for item in value]
    if isinstance(value, str):
        return value.encode('utf-8')
    if isinstance(value, bytes):
        return value.decode('utf-8')
    return value


def _flattened(mapping: dict) -> Iterator[tuple[Any, Any]]:
    """Yield the rule's (name, value) pairs of ``mapping`` in order."""
    for key, value in sorted(mapping.items()):
        if isinstance(value, dict):
            for subname, subvalue in _flattened(value):
                yield f'{key}:{subname}', subvalue
        elif isinstance(value, (list, tuple)):
            yield key, _sequence_form(value)
        else:
            yield key, value


def reference_signature(message: dict, secret: str | bytes) -> str:
    """Sign ``message`` by the rule, one HMAC update per name and value."""
    key = secret.encode('utf-8') if isinstance(secret, str) else secret
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for name, value in _flattened(message):
        if name == 'message_signature':
            continue
        mac.update(str(name).encode('utf-8'))
        mac.update(str(value).encode('utf-8'))
    return mac.hexdigest()


def _outcome(sign: Any, message: dict, secret: str | bytes) -> Any:
    """Return the signature, or the exception type signing raises."""
    try:
        return sign(message, secret)
    except Exception as exc:
        return type(exc)


# -- generated messages -----------------------------------------------------

_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e16, -0.0, 0.0, 0.1, 1e-7, 123456789.123, 1.5e300]))
_TEXT_KEYS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(['message_signature', 'a:b', ':', '', 'É', 'Z', 'é']))
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(),
    st.integers(min_value=-2 ** 80, max_value=2 ** 80), _FLOATS,
    st.text(max_size=12), st.binary(max_size=6),
    st.text(max_size=6).map(lambda text: text.encode('utf-8')),
    st.datetimes(), st.frozensets(st.integers(), max_size=3))


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    """Lists, tuples and dicts (text, int or float keys) of ``children``."""
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_TEXT_KEYS, children, max_size=5),
        st.dictionaries(st.integers(-20, 20), children, max_size=4),
        st.dictionaries(_FLOATS, children, max_size=3))


_VALUES = st.recursive(_SCALARS, _containers, max_leaves=25)
_MESSAGES = st.dictionaries(_TEXT_KEYS, _VALUES, max_size=14)
_SECRETS = st.one_of(st.text(min_size=1, max_size=80),
                     st.binary(min_size=1, max_size=150))


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(message=_MESSAGES, secret=_SECRETS)
def test_generated_messages_sign_as_the_rule(message, secret):
    assert (_outcome(utils.compute_signature, message, secret)
            == _outcome(reference_signature, message, secret))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(metadata=st.dictionaries(_TEXT_KEYS, _VALUES, max_size=10),
       volume=st.one_of(st.integers(), _FLOATS),
       secret=_SECRETS)
def test_generated_metering_dicts_sign_verify_and_batch(metadata, volume,
                                                        secret):
    message = _metering_dict(metadata, volume)
    expected = _outcome(reference_signature, message, secret)
    assert _outcome(utils.compute_signature, message, secret) == expected
    if not isinstance(expected, str):
        return
    message['message_signature'] = expected
    assert utils.verify_signature(message, secret)
    assert utils.compute_signatures([message, message], secret) == [
        expected, expected]
    assert utils.verify_signatures([message], secret) == [True]


@settings(max_examples=100, deadline=None)
@given(message=_MESSAGES, secret=_SECRETS)
def test_verification_rejects_tampering_and_wrong_secrets(message, secret):
    message.pop('message_signature', None)
    try:
        message['message_signature'] = reference_signature(message, secret)
    except (TypeError, UnicodeError):
        return
    assert utils.verify_signature(message, secret)
    wrong = secret + (b'!' if isinstance(secret, bytes) else '!')
    assert not utils.verify_signature(message, wrong)
    tampered = dict(message, **{'zz-added': 'x'})
    assert not utils.verify_signature(tampered, secret)
    assert utils.verify_signatures([message, tampered], secret) == [
        True, False]


def _metering_dict(metadata: dict, volume: Any) -> dict:
    """Return a metering dict with the given metadata and volume."""
    return {'source': 'openstack', 'counter_name': 'cpu',
            'counter_type': 'cumulative', 'counter_unit': 'ns',
            'counter_volume': volume, 'user_id': 'u', 'project_id': 'p',
            'resource_id': 'r', 'timestamp': '2031-05-06T07:08:09+00:00',
            'resource_metadata': metadata, 'message_id': 'm',
            'monotonic_time': None}


# -- fixed vectors, signed by the code before the fast path -----------------

_VECTORS = [
    ({'source': 'openstack', 'counter_name': 'cpu',
      'counter_type': 'cumulative', 'counter_unit': 'ns',
      'counter_volume': 1285020000000, 'user_id': 'u-1',
      'project_id': 'p-1', 'resource_id': 'r-1',
      'timestamp': '2031-05-06T07:08:09.101112+00:00',
      'resource_metadata': {'display_name': 'web-01',
                            'flavor': {'id': '2', 'ram': 2048},
                            'security_groups': ['default', 'web'],
                            'vcpus': 1},
      'message_id': 'm-1', 'monotonic_time': 19423.581347,
      'message_signature': 'ignored'}, 'secret',
     '051ef255154017fedb4a0349366ed6f0b132be0d11df90887da5afdd8ac2847c'),
    ({'m': {10: 'a', 9: 'b', 2: None}, 'n': [{10: 1, 9: 2}]}, 'k',
     '73dc606802b060afd028f117268aaee197b6ed224cffc8df9ee74f0c180b9b29'),
    ({'l': [{'b': 1, 'a': ('x', b'y')}, 'é', None, 1.5, True], 't': (),
      'u': ['ü', b'\xc3\xbc']}, 'k',
     '74e80e4fa34734176df58b2d5d25b3e3d9b8a054f91e0b7601078310442a6872'),
    ({'f': 1e16, 'g': -0.0, 'h': float('nan'), 'i': float('inf'),
      'j': 0.1, 'k': 2 ** 70}, 'k',
     'adccff5eee40d80956117a9a84379843c88989621bb45966146ab33da431d603'),
    ({'a': {}, 'b': {'c': {}, 'd': {'message_signature': 'x'}}, 'e': False,
      'n': None, 'z': b'\xff'}, 'k',
     'd63f0ed3a2d138d46d7a4506a6123dac4885786fe1354572860366a03114858d'),
    ({'clé': 'valeur ✓', 'ключ': {'日本': '語'}}, 'clé ✓',
     '15ffe2e621ea8dc523028c1108bcb5bae13e248a6ccfed469f14b8b0444069e0'),
]


@pytest.mark.parametrize(('message', 'secret', 'expected'), _VECTORS)
def test_known_answers(message, secret, expected):
    assert reference_signature(message, secret) == expected
    assert utils.compute_signature(message, secret) == expected
    assert utils.compute_signature(message, secret.encode()) == expected
    signed = dict(message, message_signature=expected)
    assert utils.verify_signature(signed, secret)
    assert utils.verify_signatures([signed, message], secret) == [
        True, expected == message.get('message_signature')]


def _fed(secret: bytes, *parts: str) -> str:
    """Return the HMAC-SHA256 of ``parts`` fed one after the other."""
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part.encode('utf-8'))
    return mac.hexdigest()


def test_int_keys_sort_as_ints_and_list_dicts_by_key():
    secret, expected = _VECTORS[1][1:]
    assert expected == _fed(secret.encode(), 'm:2', 'None', 'm:9', 'b',
                            'm:10', 'a', 'n', '[{9: 2, 10: 1}]')


def test_list_items_swap_text_and_bytes_and_sort_dicts():
    secret, expected = _VECTORS[2][1:]
    assert expected == _fed(
        secret.encode(),
        'l', "[{b'a': [b'x', 'y'], b'b': 1}, b'\\xc3\\xa9', None, 1.5, True]",
        't', '[]', 'u', "[b'\\xc3\\xbc', 'ü']")


def test_floats_render_as_str():
    secret, expected = _VECTORS[3][1:]
    assert expected == _fed(secret.encode(), 'f', '1e+16', 'g', '-0.0',
                            'h', 'nan', 'i', 'inf', 'j', '0.1',
                            'k', '1180591620717411303424')


# -- the fast path and its fall-backs ---------------------------------------


class _Loud(str):
    """A str whose str() differs from its text."""

    def __str__(self) -> str:
        return 'loud'


class _MyList(list):
    """A list subclass (the fast path leaves it to the generic one)."""


class _Thing:
    """A value that is neither a container nor a builtin scalar."""

    def __str__(self) -> str:
        return 'thing ✓'


@pytest.mark.parametrize('message', [
    collections.OrderedDict([('b', 1), ('a', {'c': 2})]),
    {'a': collections.OrderedDict([('z', 1), ('y', 2)])},
    {'a': _MyList(['x', b'y'])},
    {'a': _Loud('quiet'), _Loud('k'): 1},
    {'a': {_Loud('k'): 1}},
    {'a': _Thing(), 'd': datetime.datetime(2031, 5, 6, 7, 8, 9)},
    {'message_signature': {'inner': 1}, 'a': 2},
    {'message_signature': ['x'], 'a': 2},
    {'message_signature': [b'\xff'], 'a': 2},
    {'message_signature': None, 'a': 2},
    {'message_signature': b'sig', 'a': 2},
    {1: 'a', 2: {'b': 3}},
    {'a': {1: 'x', 'b': 'y'}},
    {'a': [{1: 'x', 'b': 'y'}]},
    {'a': ['\ud800']},
    {'a': '\ud800'},
    {'a': [b'\xff']},
    {'a': {'b': [b'\xff'], 'c': {'d': (1, (2, [3]))}}},
    {'a': {float('nan'): 1, float('nan'): 2}},
    {'a': {True: 'x', 2: 'y'}},
    {'a': [{'b', 'c'}, frozenset({1})], 'b': {'x'}},
])
def test_unusual_messages_sign_as_the_rule(message):
    assert (_outcome(utils.compute_signature, message, 'k')
            == _outcome(reference_signature, message, 'k'))


def test_usual_metering_dict_takes_the_fast_path(monkeypatch):
    def refuse(message):
        raise AssertionError('generic path used')

    message = _metering_dict(
        {'name': 'vm', 'flavor': {'id': '1', 'ram': 512}, 'tags': ['a'],
         'ids': (1, 2), 'nested': [{'k': 'v'}], 'on': True, 'x': None,
         'size': 1.5, 'when': datetime.datetime(2031, 1, 1)}, 3)
    expected = reference_signature(message, 'k')
    monkeypatch.setattr(utils, '_generic_payload', refuse)
    assert utils.compute_signature(message, 'k') == expected
    message['message_signature'] = expected
    assert utils.verify_signature(message, 'k')


@pytest.mark.parametrize('length', [1, 31, 63, 64, 65, 127, 128, 200])
def test_keyed_mac_equals_hmac_for_every_key_length(length):
    secret = bytes(range(256))[:length]
    message = {'a': 'b' * length}
    assert utils.compute_signature(message, secret) == hmac.new(
        secret, b'a' + b'b' * length, hashlib.sha256).hexdigest()


def test_bytearray_secret_signs_as_its_bytes():
    message = {'a': 1}
    assert (utils.compute_signature(message, bytearray(b'k'))
            == reference_signature(message, b'k'))


def test_many_secrets_stay_correct_past_the_keyed_cache_bound():
    message = {'a': 1}
    for number in range(3 * utils._KEYED_MAX):
        secret = f'secret-{number}'
        assert (utils.compute_signature(message, secret)
                == reference_signature(message, secret))
    assert len(utils._KEYED) <= utils._KEYED_MAX


def test_batch_forms_without_secret():
    messages = [{'a': 1}, {'a': 2, 'message_signature': 'bad'}]
    assert utils.compute_signatures(messages, '') == ['', '']
    assert utils.verify_signatures(iter(messages), None) == [True, True]
    assert utils.compute_signatures([], 'k') == []
    assert utils.verify_signatures([], 'k') == []


@pytest.mark.parametrize('signature', [
    None, 12, b'', bytearray(64), 'é' * 64, 'A' * 64, '0' * 63])
def test_batch_verification_rejects_bad_signatures(signature):
    message = {'a': 1, 'message_signature': signature}
    assert utils.verify_signatures([message], 'k') == [False]
    assert not utils.verify_signature(message, 'k')
