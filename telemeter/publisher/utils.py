"""Signing and serialisation of samples and events for the wire.

The signature rules are those of Ceilometer (HMAC-SHA256 over the sorted,
flattened message), so signed messages interoperate with it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from oslo_config import cfg

from telemeter import utils

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


def compute_signature(message: dict, secret: str | bytes | None) -> str:
    """Return the hex HMAC-SHA256 of ``message`` ('' for a falsy secret).

    The top-level ``message_signature`` entry is left out, so a signed
    message verifies against its own signature.
    """
    if not secret:
        return ''
    if isinstance(secret, str):
        secret = secret.encode('utf-8')
    digest_maker = hmac.new(secret, b'', hashlib.sha256)
    for name, value in utils.recursive_keypairs(message):
        if name == 'message_signature':
            continue
        digest_maker.update(str(name).encode('utf-8'))
        digest_maker.update(str(value).encode('utf-8'))
    return digest_maker.hexdigest()


def verify_signature(message: dict, secret: str | bytes | None) -> bool:
    """Check ``message['message_signature']`` in constant time.

    Every message passes when no secret is configured.
    """
    if not secret:
        return True
    old_sig = message.get('message_signature', '')
    if isinstance(old_sig, str):
        try:
            old_sig = old_sig.encode('ascii')
        except UnicodeEncodeError:
            return False
    elif not isinstance(old_sig, bytes):
        return False
    new_sig = compute_signature(message, secret).encode('ascii')
    return hmac.compare_digest(new_sig, old_sig)


def meter_message_from_counter(sample: Any, secret: str | bytes | None,
                               publisher_id: str | None = None
                               ) -> dict[str, Any]:
    """Build the signed metering dict that travels on the bus and UDP."""
    msg = {'source': sample.source,
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
           }
    if publisher_id is not None:
        msg['publisher_id'] = publisher_id
    msg['message_signature'] = compute_signature(msg, secret)
    return msg


def message_from_event(event: Any, secret: str | bytes | None
                       ) -> dict[str, Any]:
    """Build the signed dict of an Event (its ``serialize()`` form)."""
    msg = event.serialize()
    msg['message_signature'] = compute_signature(msg, secret)
    return msg
