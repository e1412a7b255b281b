"""Message signing rules (collector.md §4)."""

import hashlib
import hmac

import msgpack
import pytest

from telemeter import sample
from telemeter.publisher import utils


def _hmac(secret: bytes, *parts: str) -> str:
    mac = hmac.new(secret, b'', hashlib.sha256)
    for part in parts:
        mac.update(part.encode('utf-8'))
    return mac.hexdigest()


def test_spec_example_feeds_sorted_flattened_pairs():
    message = {'x': 1, 'm': {'k': 'v'}, 'l': ['a'], 'message_signature': 'z'}
    expected = _hmac(b'secret', 'l', "[b'a']", 'm:k', 'v', 'x', '1')
    assert utils.compute_signature(message, 'secret') == expected


def test_nested_dicts_join_names_with_colons_and_skip_empty_dicts():
    message = {'a': {'b': {'c': None}, 'e': {}}, 'f': True, 'g': 1.0}
    expected = _hmac(b'k', 'a:b:c', 'None', 'f', 'True', 'g', '1.0')
    assert utils.compute_signature(message, 'k') == expected


def test_only_top_level_message_signature_is_skipped():
    message = {'meta': {'message_signature': 'inner'}}
    expected = _hmac(b'k', 'meta:message_signature', 'inner')
    assert utils.compute_signature(message, 'k') == expected


def test_unicode_keys_values_and_secret():
    message = {'nom': 'café', 'liste': ['ü', 'b']}
    expected = _hmac('clé'.encode(), 'liste', str(['ü'.encode(), b'b']),
                     'nom', 'café')
    assert utils.compute_signature(message, 'clé') == expected
    assert utils.compute_signature(message, 'clé'.encode()) == expected


def test_list_and_tuple_sign_the_same_so_round_trips_verify():
    secret = 'secret'
    message = {'a': ('d', 'e'), 'n': {'x': [1, {'y': 'z'}]}}
    message['message_signature'] = utils.compute_signature(message, secret)
    packed = msgpack.unpackb(msgpack.packb(message, use_bin_type=True),
                             raw=False)
    assert isinstance(packed['a'], list)
    assert utils.verify_signature(packed, secret)


def test_empty_secret_gives_empty_signature_and_accepts_everything():
    assert utils.compute_signature({'a': 1}, '') == ''
    assert utils.compute_signature({'a': 1}, None) == ''
    assert utils.verify_signature({'a': 1, 'message_signature': 'bad'}, '')


@pytest.mark.parametrize('signature', [None, '', 'not-it', 12, 'héhé'])
def test_missing_wrong_or_non_ascii_signature_fails(signature):
    message = {'a': 1}
    if signature is not None:
        message['message_signature'] = signature
    assert not utils.verify_signature(message, 'secret')


def test_altered_message_fails_and_bytes_signature_is_accepted():
    message = {'a': 1, 'b': {'c': 'd'}}
    signature = utils.compute_signature(message, 'secret')
    message['message_signature'] = signature.encode('ascii')
    assert utils.verify_signature(message, 'secret')
    message['b']['c'] = 'e'
    assert not utils.verify_signature(message, 'secret')


def test_meter_message_from_counter_fields_and_signature():
    s = sample.Sample('cpu', 'cumulative', 'ns', 42, 'u', 'p', 'r',
                      timestamp='2031-05-06T07:08:09.101112',
                      resource_metadata={'k': ['v']}, source='src',
                      id='mid', monotonic_time=3.5)
    msg = utils.meter_message_from_counter(s, 'secret')
    assert msg == {
        'source': 'src', 'counter_name': 'cpu',
        'counter_type': 'cumulative', 'counter_unit': 'ns',
        'counter_volume': 42, 'user_id': 'u', 'project_id': 'p',
        'resource_id': 'r', 'timestamp': '2031-05-06T07:08:09.101112',
        'resource_metadata': {'k': ['v']}, 'message_id': 'mid',
        'monotonic_time': 3.5,
        'message_signature': msg['message_signature']}
    assert len(msg['message_signature']) == 64
    assert utils.verify_signature(msg, 'secret')
    assert not utils.verify_signature(msg, 'other')
    with_publisher = utils.meter_message_from_counter(s, 'secret', 'host-a')
    assert with_publisher['publisher_id'] == 'host-a'
    assert (with_publisher['message_signature']
            != msg['message_signature'])


def test_message_from_event_signs_serialized_event():
    class FakeEvent:
        def serialize(self):
            return {'message_id': 'm', 'event_type': 'e',
                    'generated': '2031-01-01T00:00:00', 'traits': [
                        ('name', 1, 'value')], 'raw': {}}

    msg = utils.message_from_event(FakeEvent(), 'secret')
    assert msg['event_type'] == 'e'
    assert utils.verify_signature(msg, 'secret')
