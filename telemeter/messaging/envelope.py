"""oslo.messaging's notification wire format, read without its listener.

A notification travels on RabbitMQ as a JSON body
``{"oslo.version": "2.0", "oslo.message": "<JSON text>"}`` (or, from very
old senders, the inner message itself). The inner message holds
``priority``, ``event_type``, ``publisher_id``, ``payload``, ``message_id``,
``timestamp`` and the request context flattened as ``_context_<key>``.

:func:`decode` turns one body into what oslo.messaging's notification
dispatcher hands an endpoint: ``(priority, notification)`` with
``notification = {'ctxt', 'publisher_id', 'event_type', 'payload',
'metadata': {'message_id', 'timestamp'}}``. The rules are oslo.messaging's
(``deserialize_msg``, ``unpack_context``, ``_extract_user_message``), so an
endpoint cannot tell which listener it runs under; a body that breaks them
raises :class:`MalformedMessage` instead of looping in a dispatcher.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypedDict

import orjson
from oslo_serialization import jsonutils

#: The priorities oslo.messaging dispatches (lower case).
PRIORITIES = frozenset(
    ['audit', 'debug', 'info', 'warn', 'error', 'critical', 'sample'])

_VERSION_KEY = 'oslo.version'
_MESSAGE_KEY = 'oslo.message'
_SUPPORTED_MAJOR = '2'
_CONTEXT_PREFIX = '_context_'


class Metadata(TypedDict):
    """Envelope facts of a notification."""

    message_id: str | None
    timestamp: str | None


class Notification(TypedDict):
    """One notification as every endpoint receives it."""

    ctxt: dict[str, Any]
    publisher_id: str | None
    event_type: str | None
    payload: Any
    metadata: Metadata


class MalformedMessage(ValueError):
    """A bus message that no endpoint can be given; it is dropped."""


# orjson reads integers of 20 digits or more as floats, where json keeps
# them exact: a body with such a number is left to json. A JSON number
# follows one of ``:[,-`` or white space; digits map to '0', those
# characters to '+' and the rest to ' ', so hex ids and signatures (digits
# among letters) do not count as numbers.
_NUMBER_STARTS = frozenset(b':[,- \t\r\n')
_DIGITS_ONLY = bytes(48 if 48 <= i <= 57 else 43 if i in _NUMBER_STARTS
                     else 32 for i in range(256))
_LONG_NUMBER = b'+' + b'0' * 20


def _loads(text: bytes | str) -> Any:
    """orjson's parser with json's results (see :func:`parser_for`)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # NaN, Infinity, 1e400, lone surrogates: only json reads those.
        return json.loads(text)


def parser_for(body: bytes | str) -> Callable[[bytes | str], Any]:
    """The JSON parser for ``body`` and the text it embeds.

    Four times faster than :func:`json.loads` and the same objects: orjson
    for standard JSON, json for what only Python's parser reads alike.
    """
    if isinstance(body, str):
        # py-amqp hands over text when the sender named an encoding.
        try:
            body = body.encode('utf-8')
        except UnicodeEncodeError:  # lone surrogates: only json reads them
            return json.loads
    if body.translate(_DIGITS_ONLY).find(_LONG_NUMBER) < 0:
        return _loads
    return json.loads


# Datetimes and dataclasses go to to_primitive, as json sends them there.
_PASSTHROUGH = (orjson.OPT_PASSTHROUGH_DATETIME
                | orjson.OPT_PASSTHROUGH_DATACLASS)


def dumps(message: dict[str, Any]) -> str:
    """JSON text of ``message`` as oslo.messaging writes it, seven times
    faster.

    Plain JSON types go through orjson; everything else (datetimes, sets,
    objects) through oslo.serialization's ``to_primitive`` as in
    ``jsonutils.dumps``; what orjson refuses (integers beyond 64 bits,
    keys that are not strings) through ``jsonutils.dumps`` itself. One
    difference remains: JSON has no NaN or infinity, which orjson writes
    as ``null`` where Python writes the non-standard ``NaN``.
    """
    try:
        return orjson.dumps(message, default=jsonutils.to_primitive,
                            option=_PASSTHROUGH).decode('utf-8')
    except TypeError:
        return jsonutils.dumps(message)


def wrap(message: dict[str, Any]) -> dict[str, str]:
    """The oslo.messaging 2.0 envelope of ``message``."""
    return {_VERSION_KEY: '2.0', _MESSAGE_KEY: dumps(message)}


def decode_body(body: bytes | str,
                loads: Callable[[bytes | str], Any] = json.loads) -> Any:
    """JSON-decode an AMQP body (UTF-8 bytes or text)."""
    try:
        return loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedMessage(f'body is not JSON: {err}') from err
    except RecursionError as err:
        # Nested deeper than the parsers go (orjson 1024 levels, json
        # Python's recursion limit): no endpoint could be given it.
        raise MalformedMessage(f'body is nested too deeply: {err}') from err


def unwrap(message: Any, loads: Callable[[bytes | str], Any] = json.loads
           ) -> dict[str, Any]:
    """The inner message of an oslo.messaging envelope (or the message
    itself when it has no envelope, as oslo.messaging accepts)."""
    if not isinstance(message, dict):
        raise MalformedMessage(
            f'message is a {type(message).__name__}, not a JSON object')
    if _VERSION_KEY not in message or _MESSAGE_KEY not in message:
        return message
    version = str(message[_VERSION_KEY])
    if version.split('.')[0] != _SUPPORTED_MAJOR:
        raise MalformedMessage(f'unsupported envelope version {version}')
    inner = message[_MESSAGE_KEY]
    try:
        inner = loads(inner)
    except (TypeError, ValueError) as err:
        raise MalformedMessage(f'{_MESSAGE_KEY} is not JSON text: {err}'
                               ) from err
    except RecursionError as err:
        raise MalformedMessage(f'{_MESSAGE_KEY} is nested too deeply: {err}'
                               ) from err
    if not isinstance(inner, dict):
        raise MalformedMessage(f'{_MESSAGE_KEY} is not a JSON object')
    return inner


def to_notification(message: dict[str, Any]) -> tuple[str, Notification]:
    """Split an inner message into ``(priority, notification)``."""
    priority = message.get('priority', '')
    if not isinstance(priority, str):
        raise MalformedMessage(f'priority {priority!r} is not a string')
    priority = priority.lower()
    if priority not in PRIORITIES:
        raise MalformedMessage(f'unknown priority {priority!r}')
    ctxt = {key[9:]: value for key, value in message.items()
            if key.startswith(_CONTEXT_PREFIX)}
    # What oslo.messaging's RpcContext adds to every context.
    ctxt['client_timeout'] = message.get('_timeout')
    return priority, {
        'ctxt': ctxt,
        'publisher_id': message.get('publisher_id'),
        'event_type': message.get('event_type'),
        'payload': message.get('payload'),
        'metadata': {'message_id': message.get('message_id'),
                     'timestamp': message.get('timestamp')},
    }


def decode(body: bytes | str) -> tuple[str, Notification]:
    """``(priority, notification)`` of one AMQP body.

    Raises :class:`MalformedMessage` saying what is wrong.
    """
    loads = parser_for(body)
    return to_notification(unwrap(decode_body(body, loads), loads))
