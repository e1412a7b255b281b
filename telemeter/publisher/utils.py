"""Signing and serialisation of samples and events for the wire.

The signature rules are those of Ceilometer (HMAC-SHA256 over the sorted,
flattened message), so signed messages interoperate with it: for every
``(name, value)`` pair of :func:`telemeter.utils.recursive_keypairs` except
the top-level ``message_signature``, the MAC is fed ``str(name)`` then
``str(value)``, both UTF-8 encoded.

Signing is on the hot path (once per sample in the notification agent, once
per sample in the collector), so the message is rendered in one pass into
one string for a MAC keyed once per secret and copied per message. That
fast path takes plain dicts with ``str`` keys whose values are ``str``,
``int``, ``float``, ``bool``, ``None``, plain lists and tuples, plain dicts
(recursively) or any other non-container object; anything else (another
key type, a subclass of dict, list or tuple, a ``message_signature`` that
is neither text nor bytes) goes through the generic path, a direct
transcription of the rule.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from telemeter import utils
from telemeter.wire import EventMessage, MeteringMessage

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

OPTS = [
    cfg.StrOpt('telemetry_secret',
               secret=True,
               default='change this for valid signing',
               help='Secret value for signing messages. Set value empty if '
                    'signing is not required to avoid computational '
                    'overhead.',
               deprecated_opts=[cfg.DeprecatedOpt('metering_secret',
                                                  'DEFAULT'),
                                cfg.DeprecatedOpt('metering_secret',
                                                  'publisher_rpc'),
                                cfg.DeprecatedOpt('metering_secret',
                                                  'publisher')]),
]


_SIGNATURE_KEY = 'message_signature'

#: The exact types of the usual leaf values (rendered by ``str()``).
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_STR_TYPE = frozenset({str})
#: The types of a ``message_signature`` the fast path skips.
_SIGNATURE_TYPES = frozenset({str, bytes})

#: A MAC keyed with each secret, copied for every message (a process has
#: one or two secrets; the bound only guards against a caller cycling them).
_KEYED: dict[str | bytes, Any] = {}
_KEYED_MAX = 16


class _Unusual(Exception):
    """The message holds something the fast path does not render."""


def _keyed(secret: str | bytes | bytearray) -> Any:
    """An HMAC-SHA256 keyed with ``secret``, to be copied, not updated."""
    if isinstance(secret, (bytearray, memoryview)):
        secret = bytes(secret)
    keyed = _KEYED.get(secret)
    if keyed is None:
        key = secret.encode('utf-8') if isinstance(secret, str) else secret
        keyed = hmac.new(key, b'', hashlib.sha256)
        if len(_KEYED) >= _KEYED_MAX:
            _KEYED.clear()
        _KEYED[secret] = keyed
    return keyed


def _hexdigest(keyed: Any, data: bytes) -> str:
    """The hex HMAC of ``data`` from a copy of the ``keyed`` MAC."""
    mac = keyed.copy()
    mac.update(data)
    return mac.hexdigest()


def _render_sequence(value: list | tuple) -> str:
    """Return the rule's rendering of a list or tuple value.

    That is ``str(decode_unicode(value))``; a sequence of plain strings,
    the usual case, skips the generic conversion.
    """
    if _STR_TYPE.issuperset(map(type, value)):
        return repr(list(map(str.encode, value)))
    return str(utils.decode_unicode(value))


def _add_pairs(mapping: dict, keys: Iterable[Any], prefix: str,
               parts: list[str]) -> None:
    """Append ``name + value`` for each leaf under ``keys`` to ``parts``.

    ``keys`` are keys of ``mapping`` in sorted order; ``prefix`` is the
    names of the enclosing dicts, each followed by ':'. Raises
    :class:`_Unusual` for a key that is not a ``str`` or a value that
    subclasses dict, list or tuple.
    """
    append = parts.append
    for key in keys:
        value = mapping[key]
        kind = type(value)
        if kind in _SCALAR_TYPES and type(key) is str:
            append(f'{prefix}{key}{value!s}')
        elif type(key) is not str:
            raise _Unusual(key)
        elif kind is dict:
            _add_pairs(value, sorted(value), f'{prefix}{key}:', parts)
        elif kind is list or kind is tuple:
            append(f'{prefix}{key}{_render_sequence(value)}')
        elif isinstance(value, (dict, list, tuple)):
            raise _Unusual(value)
        else:
            append(f'{prefix}{key}{value!s}')


def _fast_payload(message: Mapping) -> bytes:
    """Return the bytes the rule feeds to the MAC, for a usual message.

    Raises :class:`_Unusual`, or the ``TypeError`` of keys that do not
    sort, for a message the fast path does not take.
    """
    if type(message) is not dict:
        raise _Unusual(message)
    keys = sorted(message)
    if _SIGNATURE_KEY in message:
        # The rule renders (and may fail on) a signature that is a dict,
        # list or tuple: only a text or bytes one is skipped here.
        index = keys.index(_SIGNATURE_KEY)
        if (type(keys[index]) is not str
                or type(message[_SIGNATURE_KEY]) not in _SIGNATURE_TYPES):
            raise _Unusual(_SIGNATURE_KEY)
        del keys[index]
    parts: list[str] = []
    _add_pairs(message, keys, '', parts)
    return ''.join(parts).encode('utf-8')


def _generic_payload(message: Mapping) -> bytes:
    """Return the bytes the rule feeds to the MAC, for any message."""
    chunks = []
    for name, value in utils.recursive_keypairs(message):
        if name == _SIGNATURE_KEY:
            continue
        chunks.append(str(name).encode('utf-8'))
        chunks.append(str(value).encode('utf-8'))
    return b''.join(chunks)


def _payload(message: Mapping) -> bytes:
    """Return the bytes to sign: the fast rendering, else the generic one."""
    try:
        return _fast_payload(message)
    except (_Unusual, TypeError):
        return _generic_payload(message)


def _matches(message: Mapping, keyed: Any) -> bool:
    """Check ``message['message_signature']`` against the ``keyed`` MAC.

    The signature may be ASCII text or bytes; anything else fails.
    """
    old_sig = message.get(_SIGNATURE_KEY, '')
    if isinstance(old_sig, str):
        if not old_sig.isascii():
            return False
        old_sig = old_sig.encode('ascii')
    elif not isinstance(old_sig, bytes):
        return False
    new_sig = _hexdigest(keyed, _payload(message)).encode('ascii')
    return hmac.compare_digest(new_sig, old_sig)


def compute_signature(message: Mapping[str, Any],
                      secret: str | bytes | None) -> str:
    """Return the hex HMAC-SHA256 of ``message`` ('' for a falsy secret).

    The top-level ``message_signature`` entry is left out, so a signed
    message verifies against its own signature.
    """
    if not secret:
        return ''
    return _hexdigest(_keyed(secret), _payload(message))


def compute_signatures(messages: Iterable[Mapping[str, Any]],
                       secret: str | bytes | None) -> list[str]:
    """Return :func:`compute_signature` of each message, keyed once."""
    if not secret:
        return ['' for _ in messages]
    keyed = _keyed(secret)
    return [_hexdigest(keyed, _payload(message)) for message in messages]


def verify_signature(message: dict, secret: str | bytes | None) -> bool:
    """Check ``message['message_signature']`` in constant time.

    Every message passes when no secret is configured.
    """
    if not secret:
        return True
    return _matches(message, _keyed(secret))


def verify_signatures(messages: Iterable[dict],
                      secret: str | bytes | None) -> list[bool]:
    """Return :func:`verify_signature` of each message, keyed once."""
    if not secret:
        return [True for _ in messages]
    keyed = _keyed(secret)
    return [_matches(message, keyed) for message in messages]


def meter_message_from_counter(sample: Sample, secret: str | bytes | None,
                               publisher_id: str | None = None
                               ) -> MeteringMessage:
    """Build the signed metering dict that travels on the bus and UDP."""
    msg: MeteringMessage = {
        'source': sample.source,
        'counter_name': sample.name,
        'counter_type': sample.type,
        'counter_unit': sample.unit,
        'counter_volume': sample.volume,
        'user_id': sample.user_id,
        'project_id': sample.project_id,
        'resource_id': sample.resource_id,
        'timestamp': sample.timestamp,
        'resource_metadata': sample.resource_metadata,
        'message_id': sample.id,
        'monotonic_time': sample.monotonic_time,
        # Not part of what is signed; set below.
        'message_signature': '',
    }
    if publisher_id is not None:
        msg['publisher_id'] = publisher_id
    msg['message_signature'] = compute_signature(msg, secret)
    return msg


def message_from_event(event: Event, secret: str | bytes | None
                       ) -> EventMessage:
    """Build the signed dict of an Event (its ``serialize()`` form)."""
    msg = event.serialize()
    msg['message_signature'] = compute_signature(msg, secret)
    return msg
