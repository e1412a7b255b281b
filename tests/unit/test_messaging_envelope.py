"""telemeter.messaging.envelope reads bodies as oslo.messaging does."""

import datetime
import json
import uuid

import pytest
from oslo_messaging._drivers import amqp as rpc_amqp
from oslo_messaging._drivers import common as rpc_common
from oslo_messaging.notify import dispatcher as om_dispatcher
from oslo_serialization import jsonutils

from telemeter.messaging import envelope

CONTEXT = {'user_id': 'u-1', 'project_id': 'p-1', 'request_id': 'req-1',
           'roles': ['member'], 'is_admin': False}
PAYLOAD = {'instance_id': 'i-1', 'memory_mb': 2048, 'ratio': 0.5,
           'nested': {'list': [1, 'two', None], 'flag': True},
           'text': 'é ünïcode', 'big': 2 ** 63 - 1}


def _body(priority='INFO', payload=PAYLOAD, context=CONTEXT, envelope_=True):
    """A body as oslo.messaging's AMQP driver sends a notification."""
    message = {'message_id': 'm-1', 'publisher_id': 'compute.host-1',
               'event_type': 'compute.instance.create.end',
               'priority': priority, 'payload': payload,
               'timestamp': '2026-01-02 03:04:05.678901'}
    rpc_amqp.pack_context(message, context)
    if envelope_:
        message = rpc_common.serialize_msg(message)
    return jsonutils.dumps(message).encode('utf-8')


def _oslo_reading(body):
    """What oslo.messaging's own listener and dispatcher make of it."""
    message = rpc_common.deserialize_msg(json.loads(body))
    ctxt = rpc_amqp.unpack_context(message)

    class Incoming:
        pass
    incoming = Incoming()
    incoming.ctxt = ctxt.to_dict()
    incoming.message = message
    dispatcher = om_dispatcher.NotificationDispatcher([], None)
    priority, _raw, notification = dispatcher._extract_user_message(incoming)
    return priority, notification


@pytest.mark.parametrize('body', [
    _body(), _body('sample'), _body(envelope_=False),
    _body(payload={'n': 12345678901234567890123}),   # beyond 64 bits
    _body(payload=['a', 1.5, {'b': None}]),
    _body(context={}),
])
def test_decode_gives_what_oslo_messaging_gives(body):
    assert envelope.decode(body) == _oslo_reading(body)


def test_long_integers_stay_exact():
    _priority, notification = envelope.decode(
        _body(payload={'n': 12345678901234567890123}))
    assert notification['payload']['n'] == 12345678901234567890123


def test_nan_and_infinity_are_read_as_python_reads_them():
    body = b'{"oslo.version": "2.0", "oslo.message": ' + json.dumps(
        '{"priority": "info", "payload": {"a": NaN, "b": Infinity}}'
    ).encode() + b'}'
    _priority, notification = envelope.decode(body)
    assert notification['payload']['b'] == float('inf')
    assert notification['payload']['a'] != notification['payload']['a']


@pytest.mark.parametrize('body, reason', [
    (b'not json', 'body is not JSON'),
    (b'\xff\xfe', 'body is not JSON'),
    (b'[1, 2]', 'not a JSON object'),
    (b'{"oslo.version": "3.0", "oslo.message": "{}"}',
     'unsupported envelope version 3.0'),
    (b'{"oslo.version": "2.0", "oslo.message": "{broken"}',
     'oslo.message is not JSON text'),
    (b'{"oslo.version": "2.0", "oslo.message": 5}',
     'oslo.message is not JSON text'),
    (b'{"oslo.version": "2.0", "oslo.message": "[1]"}',
     'oslo.message is not a JSON object'),
    (_body(priority=3), "priority 3 is not a string"),
    (_body(priority=None), "priority None is not a string"),
    (_body(priority='loud'), "unknown priority 'loud'"),
    # 10,000 levels: beyond both parsers, which raise RecursionError.
    (b'[' * 10000 + b']' * 10000, 'body is nested too deeply'),
    (b'{"a":' * 10000 + b'1' + b'}' * 10000, 'body is nested too deeply'),
    (json.dumps({'oslo.version': '2.0', 'oslo.message': json.dumps(
        {'priority': 'info'})[:-1] + ', "payload": ' + '[' * 10000
        + ']' * 10000 + '}'}).encode(), 'oslo.message is nested too deeply'),
    (('[' * 10000 + ']' * 10000), 'body is nested too deeply'),
])
def test_malformed_bodies_say_what_is_wrong(body, reason):
    with pytest.raises(envelope.MalformedMessage, match=reason):
        envelope.decode(body)


@pytest.mark.parametrize('message', [
    {'payload': [{'counter_volume': 1.5, 'resource_metadata': {
        'nested': {'a': [1, 2, None]}, 'text': 'é \u2028 "quoted"'}}]},
    {'payload': {'when': datetime.datetime(2026, 1, 2, 3, 4, 5, 6)}},
    {'payload': {'big': 2 ** 70, 'small': -2 ** 70}},
    {'payload': {1: 'int key', 'set': {3}}},
    {'payload': {'id': uuid.UUID(int=5), 'tuple': (1, 'a')}},
])
def test_dumps_gives_the_objects_oslo_serialization_gives(message):
    ours = json.loads(envelope.dumps(message))
    assert ours == json.loads(jsonutils.dumps(message))


def test_wrap_is_the_oslo_envelope():
    message = {'priority': 'SAMPLE', 'payload': [{'a': 1}]}
    wrapped = envelope.wrap(message)
    assert rpc_common.deserialize_msg(json.loads(json.dumps(wrapped))) == \
        message


@pytest.mark.parametrize('body, python_parser', [
    (b'{"a": 12345678901234567890}', True),
    (b'{"a":[-12345678901234567890]}', True),
    (b'{"a": 1234567890123456789}', False),
    # Digits inside hex ids and signatures are not numbers.
    (b'{"sig": "ab12345678901234567890cd"}', False),
    ('{"a": 12345678901234567890}', True),  # text, as py-amqp gives
    ('{"a": 1}', False),
    ('{"a": "\ud800"}', True),
])
def test_long_numbers_choose_python_parser(body, python_parser):
    assert (envelope.parser_for(body) is json.loads) == python_parser
