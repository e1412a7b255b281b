"""``--mode notifications`` load and expectations: the peer bench's
corpus mix, routed and renumbered for telemeter, and the samples and
events expected of it (Ceilometer's counts, telemeter's dry run)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from telemeter.publisher import utils as publisher_utils

from .accounting import make_message_id
from .console import say
from .daemons import script
from .errors import BenchError
from .packaged import EXCHANGE_MAP, POLLING_EVENT_TYPE

DEFAULT_PEER_DIR = Path('/work/shared/bench/notification-peer')


def load_peer_send(peer_dir: Path) -> Any:
    """The peer directory's ``send.py`` as a module."""
    path = peer_dir / 'send.py'
    if not path.exists():
        raise BenchError(f'{path} not found: give --peer-dir the directory '
                         f'of the notification peer bench')
    spec = importlib.util.spec_from_file_location('peer_send', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mix_entries(peer_dir: Path, send_mod: Any) -> list[dict]:
    """The weighted, interleaved sequence of corpus entries of the mix."""
    with open(peer_dir / 'corpus.json') as stream:
        corpus = json.load(stream)
    with open(peer_dir / 'mix.json') as stream:
        mix = json.load(stream)
    by_key = {entry['key']: entry for entry in corpus}
    missing = [m['key'] for m in mix if m['key'] not in by_key]
    if missing:
        raise BenchError(f'mix.json names entries missing from corpus.json: '
                         f'{missing}')
    return send_mod.mix_sequence(mix, by_key)


def routed_entry(entry: dict) -> dict:
    """The entry with its exchange mapped to one the packaged agent
    listens to (see EXCHANGE_MAP)."""
    exchange = EXCHANGE_MAP.get(entry['exchange'], entry['exchange'])
    return entry if exchange == entry['exchange'] else dict(
        entry, exchange=exchange)


def renumber_polled(payload: dict, id_prefix: str, first_seq: int,
                    secret: str) -> int:
    """Give the samples of a ``telemetry.polling`` payload our numbered
    ids and re-sign them; return the next free sequence number."""
    seq = first_seq
    for data in payload.get('samples', []):
        data['message_id'] = make_message_id(id_prefix, seq)
        data.pop('message_signature', None)
        data['message_signature'] = publisher_utils.compute_signature(
            data, secret)
        seq += 1
    return seq


def vary_payload(send_mod: Any, entry: dict, copy_index: int,
                 resources: int) -> dict:
    """A copy of the entry's payload with its "vary" paths rewritten to
    resource number ``copy_index % resources`` (send.py's scheme)."""
    payload = copy.deepcopy(entry['payload'])
    k = copy_index % resources
    for path in entry.get('vary', []):
        send_mod._set_path(payload, path,
                           lambda v, k=k: send_mod.vary_id(v, k))
    return payload


def expected_totals(sent_by_key: dict[str, int],
                    per_key: dict[str, dict[str, int]]
                    ) -> tuple[int, int, list[str]]:
    """Expected (samples, events) for the notifications sent per key,
    and the keys without an expectation."""
    samples = events = 0
    unknown = []
    for key, count in sent_by_key.items():
        per = per_key.get(key)
        if per is None:
            unknown.append(key)
            continue
        samples += count * per.get('samples', 0)
        events += count * per.get('events', 0)
    return samples, events, sorted(unknown)


def parse_dryrun(lines: Iterable[str], markers: dict[str, str]
                 ) -> dict[str, dict[str, int]]:
    """Samples and events per key from ``telemeter-notification-dryrun``
    output of ``[marker, entry, marker, entry, ...]``.

    ``markers`` maps each marker's message id to the key of the entry
    that follows it; a marker produces one event and no sample, so every
    record between two marker events belongs to the entry in between.
    """
    counts: dict[str, dict[str, int]] = {}
    key = None
    for line in lines:
        line = line.strip()
        if not line:
            continue
        record = json.loads(line)
        if record.get('kind') == 'event' and record.get(
                'message_id') in markers:
            key = markers[record['message_id']]
            counts[key] = {'samples': 0, 'events': 0}
            continue
        if key is None:
            continue
        kind = 'samples' if record.get('kind') == 'sample' else 'events'
        counts[key][kind] += 1
    return counts


def dryrun_input(entries: dict[str, dict], send_mod: Any,
                 secret: str) -> tuple[list[dict], dict[str, str]]:
    """Notifications for the dry run (a marker before each entry) and the
    marker ids → entry keys."""
    notifications = []
    markers = {}
    for index, (key, entry) in enumerate(sorted(entries.items())):
        marker_id = str(uuid.uuid4())
        markers[marker_id] = key
        notifications.append({
            'event_type': 'e2e.bench.marker', 'priority': 'info',
            'publisher_id': 'e2e-bench', 'payload': {'index': index},
            'metadata': {'message_id': marker_id}})
        payload = vary_payload(send_mod, entry, 0, 1)
        if entry['event_type'] == POLLING_EVENT_TYPE:
            renumber_polled(payload, 'dryrun-', 0, secret)
        notifications.append({
            'event_type': entry['event_type'],
            'priority': entry['priority'].lower(),
            'publisher_id': entry['publisher_id'], 'payload': payload,
            'ctxt': entry.get('ctxt') or {},
            'metadata': {'message_id': str(uuid.uuid4())}})
    return notifications, markers


def run_dryrun(peer_dir: Path, config: Path, workdir: Path,
               notes: list[str]) -> dict[str, dict[str, int]] | None:
    """What telemeter's packaged definitions make of each mix entry
    (None, with a note, when the dry run fails)."""
    send_mod = load_peer_send(peer_dir)
    entries = {e['key']: e for e in mix_entries(peer_dir, send_mod)}
    notifications, markers = dryrun_input(entries, send_mod,
                                          'dryrun-secret')
    path = workdir / 'dryrun-input.json'
    path.write_text(json.dumps(notifications))
    say(f'telemeter-notification-dryrun on the {len(entries)} mix '
        f'entries')
    result = subprocess.run(
        [script('telemeter-notification-dryrun'), '--config-file',
         str(config), str(path)],
        capture_output=True, text=True, timeout=300, check=False)
    if result.returncode not in (0, 4):
        notes.append(f'dryrun exited {result.returncode}; '
                     f'telemeter expectations unavailable')
        say(f'WARNING: dryrun exited {result.returncode}: '
            f'{result.stderr[-500:]}')
        return None
    return parse_dryrun(result.stdout.splitlines(), markers)
