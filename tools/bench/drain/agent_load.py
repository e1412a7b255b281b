"""The notification agent's pre-load: the peer corpus mix as the
OpenStack services send it, and the samples and events expected of it.

The notifications are those of ``tools/bench/e2e``'s notifications mode
(``notification_plan``): the weighted, interleaved mix of
``corpus.json`` / ``mix.json``, each copy's resource ids varied over
``--resources`` ids as the peer's ``send.py load`` varies them, the
``telemetry.polling`` entry moved to the ``telemeter`` exchange and its
samples renumbered.  Each one is the message oslo.messaging's
``messagingv2`` Notifier builds (upper-case priority, fresh message id,
the request context flattened as ``_context_*`` keys), for the routing key
``notifications.<priority>`` of the entry's exchange.
"""

from __future__ import annotations

import collections
import datetime
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.bench.e2e import notification_plan as plan
from tools.bench.e2e.errors import BenchError
from tools.bench.e2e.packaged import POLLING_EVENT_TYPE

from .wire import WireMessage

TOPIC = 'notifications'
#: The queues the agent consumes with the packaged configuration (one
#: per priority, bound to every exchange it listens to).
AGENT_QUEUES = tuple(f'{TOPIC}.{p}' for p in (
    'audit', 'critical', 'debug', 'error', 'info', 'sample', 'warn'))


def notifier_message(entry: Mapping[str, Any], payload: Any,
                     timestamp: str) -> dict[str, Any]:
    """The message oslo.messaging's ``messagingv2`` driver sends for a
    corpus entry: envelope fields plus the context as ``_context_*``."""
    from oslo_messaging._drivers import amqp as rpc_amqp
    message = {'message_id': str(uuid.uuid4()),
               'publisher_id': entry['publisher_id'],
               'event_type': entry['event_type'],
               'priority': entry['priority'].upper(),
               'payload': payload,
               'timestamp': timestamp}
    rpc_amqp.pack_context(message, dict(entry.get('ctxt') or {}))
    return message


def wire_message(entry: Mapping[str, Any], payload: Any,
                 timestamp: str) -> WireMessage:
    """The entry's notification on ``notifications.<priority>`` of its
    exchange."""
    return WireMessage(
        exchange=entry['exchange'],
        routing_key=f"{TOPIC}.{entry['priority'].lower()}",
        message=notifier_message(entry, payload, timestamp))


def agent_messages(peer_dir: Path, count: int, resources: int,
                   secret: str, id_prefix: str
                   ) -> tuple[list[WireMessage], collections.Counter[str]]:
    """``count`` notifications of the mix, and how many of each corpus
    key."""
    send_mod = plan.load_peer_send(peer_dir)
    sequence = plan.mix_entries(peer_dir, send_mod)
    timestamp = str(datetime.datetime.now(datetime.UTC).replace(
        tzinfo=None))
    messages = []
    next_seq = 0
    for index in range(count):
        entry = plan.routed_entry(sequence[index % len(sequence)])
        payload = plan.vary_payload(send_mod, entry, index, resources)
        if entry['event_type'] == POLLING_EVENT_TYPE:
            next_seq = plan.renumber_polled(payload, id_prefix, next_seq,
                                            secret)
        messages.append(wire_message(entry, payload, timestamp))
    return messages, keys_sent([e['key'] for e in sequence], count)


def keys_sent(sequence_keys: Sequence[str],
              count: int) -> collections.Counter[str]:
    """How many notifications of each key ``count`` notifications
    cycling through the mix sequence are."""
    sent: collections.Counter[str] = collections.Counter()
    if not sequence_keys:
        return sent
    rounds, rest = divmod(count, len(sequence_keys))
    for key in sequence_keys:
        sent[key] += rounds
    for key in sequence_keys[:rest]:
        sent[key] += 1
    return sent


def expected_outputs(sent: Mapping[str, int],
                     per_key: Mapping[str, Mapping[str, int]]
                     ) -> dict[str, int]:
    """Samples and events the agent must write for the notifications
    ``sent`` per key, from per-notification counts (the dry run)."""
    samples, events, unknown = plan.expected_totals(
        dict(sent), {k: dict(v) for k, v in per_key.items()})
    if unknown:
        raise BenchError(f'no expected counts for {unknown}: the dry run '
                         f'did not cover these mix entries')
    return {'samples': samples, 'events': events}
