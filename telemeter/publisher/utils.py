"""Signing and serialisation of samples and events for the wire.

The signature rules are those of Ceilometer (HMAC-SHA256 over the sorted,
flattened message), so signed messages interoperate with it: for every
``(name, value)`` pair of :func:`telemeter.utils.recursive_keypairs` except
the top-level ``message_signature``, the MAC is fed ``str(name)`` then
``str(value)``, both UTF-8 encoded.

Signing is on the hot path (once per sample in the notification agent, once
per sample in the collector): the message is rendered by
:mod:`telemeter.publisher.rendering` (one pass, resource metadata
remembered) for a MAC keyed once per secret and copied per message.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from telemeter.publisher import rendering
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


_SIGNATURE_KEY = rendering.SIGNATURE_KEY

#: A MAC keyed with each secret, copied for every message (a process has
#: one or two secrets; the bound only guards against a caller cycling them).
_KEYED: dict[str | bytes, Any] = {}
_KEYED_MAX = 16


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
    new_sig = _hexdigest(keyed, rendering.payload(message)).encode('ascii')
    return hmac.compare_digest(new_sig, old_sig)


def compute_signature(message: Mapping[str, Any],
                      secret: str | bytes | None) -> str:
    """Return the hex HMAC-SHA256 of ``message`` ('' for a falsy secret).

    The top-level ``message_signature`` entry is left out, so a signed
    message verifies against its own signature.
    """
    if not secret:
        return ''
    return _hexdigest(_keyed(secret), rendering.payload(message))


def compute_signatures(messages: Iterable[Mapping[str, Any]],
                       secret: str | bytes | None) -> list[str]:
    """Return :func:`compute_signature` of each message, keyed once."""
    if not secret:
        return ['' for _ in messages]
    keyed = _keyed(secret)
    return [_hexdigest(keyed, rendering.payload(message))
            for message in messages]


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
