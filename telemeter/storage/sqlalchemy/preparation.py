"""Preparing metering dicts for the SQL writer.

:class:`Preparer` turns a batch of metering dicts into
:data:`PreparedSample` tuples - the meter key, the resource state (its row,
keyed by ``identity_hash``) and the values of the sample row - applying
the rules of :mod:`telemeter.storage.validation` once per sample: resource
fields once per resource state and meter fields once per meter (both
remembered across batches), the volume, timestamp, signature and message
id of every sample. A dict that breaks a rule is handed to ``drop`` with
the reason and left out.

Per sample the work is a handful of dict lookups: the resource state is
found by the ``marshal`` serialisation of the resource fields and the
metadata (exact and type-strict like the ``repr`` it replaces, at less
than half the cost); the metadata hash is computed once per resource
state, its JSON text and typed metadata rows once per new resource row.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import marshal
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from oslo_log import log

from telemeter import utils, wire
from telemeter.storage import validation
from telemeter.storage.sqlalchemy import tables

LOG = log.getLogger(__name__)

MeterKey = tuple[str, str | None, str | None]

_BIGINT_MIN, _BIGINT_MAX = -(2 ** 63), 2 ** 63 - 1
_KEY_MAX = 255
_TEXT_MAX = 2 ** 31  # metadata_text.value is unbounded text
_SIGNATURE_MAX = wire.MAX_LENGTHS['message_signature']
_MESSAGE_ID_MAX = wire.MAX_LENGTHS['message_id']
# Equal marshal bytes mean equal values of equal types (marshal.loads is a
# function), so a state found by its bytes is the right one; equal values
# may give other bytes (version 4 marks objects referenced elsewhere),
# which only costs a second entry.
_MARSHAL_VERSION = 4
_DATETIME = datetime.datetime
_isfinite = math.isfinite
_text_ok = validation.text_ok
_REJECTED = (validation.InvalidSample, KeyError, TypeError, ValueError,
             AttributeError, OverflowError)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode('utf-8'),
                       usedforsecurity=False).hexdigest()


def _dumps(value: Any, sort_keys: bool = False) -> str:
    return json.dumps(value, sort_keys=sort_keys, default=str)


def metadata_hash(metadata: Any) -> str:
    """MD5 hex of ``json.dumps(metadata, sort_keys=True)``."""
    return _md5(_dumps(metadata, sort_keys=True))


def identity_hash(resource_id: str, user_id: str | None,
                  project_id: str | None, source: str | None,
                  meta_hash: str) -> str:
    """The unique key of a resource row (NULL-safe, unlike a SQL tuple)."""
    return _md5(repr((resource_id, user_id, project_id, source,
                      meta_hash)))


def metadata_text(metadata: Any) -> str | None:
    """The stored ``resource.resource_metadata`` text."""
    return None if metadata is None else _dumps(metadata)


def metadata_table_for(value: Any) -> sa.Table | None:
    """The typed metadata table storing ``value``, or None if unsupported.

    bool → metadata_bool, int → metadata_int, float → metadata_float,
    str / None → metadata_text.
    """
    if isinstance(value, bool):
        return tables.metadata_bool
    if isinstance(value, int):
        return tables.metadata_int
    if isinstance(value, float):
        return tables.metadata_float
    if value is None or isinstance(value, str):
        return tables.metadata_text
    return None


def _queryable(table: sa.Table, key: str, value: Any) -> bool:
    if not _text_ok(key, _KEY_MAX):
        return False
    if table is tables.metadata_int:
        return _BIGINT_MIN <= value <= _BIGINT_MAX
    if table is tables.metadata_text and value is not None:
        return _text_ok(value, _TEXT_MAX)
    return True


def metadata_rows(internal_id: int, metadata: Any
                  ) -> Iterator[tuple[sa.Table, dict]]:
    """Yield ``(table, row)`` for every queryable leaf of ``metadata``
    (a leaf a database would reject is logged and left out)."""
    for key, value in utils.dict_to_keyval(metadata):
        table = metadata_table_for(value)
        if table is None or not _queryable(table, key, value):
            LOG.warning('Unknown metadata type. Key (%s) will not be '
                        'queryable.', key)
            continue
        yield table, {'id': internal_id, 'meta_key': key, 'value': value}


def resource_row(resource_id: str, user_id: str | None,
                 project_id: str | None, source: str | None,
                 meta_hash: str) -> dict:
    """A resource row without its metadata text (computed only for new
    rows)."""
    return {
        'resource_id': resource_id,
        'user_id': user_id,
        'project_id': project_id,
        'source_id': source,
        'metadata_hash': meta_hash,
        'identity_hash': identity_hash(resource_id, user_id, project_id,
                                       source, meta_hash),
    }


@dataclasses.dataclass(slots=True, eq=False)
class ResourceState:
    """One resource state (ids and metadata) as rows to write."""

    identity: str
    row: dict
    metadata: Any

    def insert_row(self) -> dict:
        """The ``resource`` row with its metadata text."""
        return dict(self.row, resource_metadata=metadata_text(self.metadata))


# (meter key, resource state, values of SAMPLE_COLUMNS after meter_id and
# resource_id)
PreparedSample = tuple[MeterKey, ResourceState, tuple]

# Columns of a sample row: the meter and resource ids, then the values
# of a PreparedSample.
SAMPLE_COLUMNS = ('meter_id', 'resource_id', 'volume', 'timestamp',
                  'recorded_at', 'message_signature', 'message_id')


def _state_key(resource: tuple, metadata: Any) -> bytes | str:
    try:
        return marshal.dumps((resource, metadata), _MARSHAL_VERSION)
    except ValueError:  # a type marshal does not know: repr spells it
        return repr((resource, metadata))


class Preparer:
    """Prepares batches; remembers up to ``size`` resource states and
    the meters already checked (both cleared when full)."""

    def __init__(self, size: int = 20000) -> None:
        self.size = size
        self._states: dict[bytes | str, ResourceState] = {}
        self._meters: set[MeterKey] = set()

    def _new_state(self, key: bytes | str,
                   resource: tuple[str, str | None, str | None, str | None],
                   metadata: Any) -> ResourceState:
        reason = validation.resource_problem(*resource)
        if reason:
            raise validation.InvalidSample(reason)
        row = resource_row(*resource, metadata_hash(metadata))
        if isinstance(key, bytes):
            # Kept for later batches: a copy, the caller's dict may change.
            # (The bytes are ours, from marshal.dumps just above.)
            metadata = marshal.loads(key)[1]  # noqa: S302
        state = ResourceState(row['identity_hash'], row, metadata)
        if len(self._states) >= self.size:
            self._states.clear()
        self._states[key] = state
        return state

    def _check_meter(self, meter: MeterKey) -> None:
        reason = validation.meter_problem(*meter)
        if reason:
            raise validation.InvalidSample(reason)
        if len(self._meters) >= self.size:
            self._meters.clear()
        self._meters.add(meter)

    def prepare(self, samples: Iterable[Any],
                recorded_at: datetime.datetime,
                drop: Callable[[Any, str], None]) -> list[PreparedSample]:
        """The storable samples of a batch, the first of each message id;
        ``drop(data, reason)`` is called for each of the others."""
        states = self._states
        meters = self._meters
        prepared: list[PreparedSample] = []
        append = prepared.append
        seen: set[str] = set()
        for data in samples:
            try:
                get = data.get
                metadata = get('resource_metadata')
                resource = (data['resource_id'], get('user_id'),
                            get('project_id'), get('source'))
                key = _state_key(resource, metadata)
                state = states.get(key)
                if state is None:
                    state = self._new_state(key, resource, metadata)
                meter = (data['counter_name'], get('counter_type'),
                         get('counter_unit'))
                if meter not in meters:
                    self._check_meter(meter)
                volume = get('counter_volume')
                if volume.__class__ is not float or not _isfinite(volume):
                    volume = validation.volume(volume)
                when = get('timestamp')
                if when.__class__ is not _DATETIME or when.tzinfo:
                    when = validation.timestamp(when) or recorded_at
                signature = get('message_signature')
                # text_ok() spelt out for the common case: ASCII str.
                if signature is not None and not (
                        (signature.__class__ is str
                        and len(signature) <= _SIGNATURE_MAX
                        and signature.isascii() and '\x00' not in signature)
                        or _text_ok(signature, _SIGNATURE_MAX)):
                    raise validation.InvalidSample(validation.text_problem(
                        'message_signature', signature, _SIGNATURE_MAX))
                message_id = get('message_id')
                if message_id is not None:
                    if not ((message_id.__class__ is str
                            and len(message_id) <= _MESSAGE_ID_MAX
                            and message_id.isascii()
                            and '\x00' not in message_id)
                            or _text_ok(message_id, _MESSAGE_ID_MAX)):
                        raise validation.InvalidSample(
                            validation.text_problem(
                                'message_id', message_id, _MESSAGE_ID_MAX))
                    if message_id in seen:
                        continue
                    seen.add(message_id)
            except _REJECTED as err:
                reason = (str(err)
                          if isinstance(err, validation.InvalidSample)
                          else validation.problem(data) or repr(err))
            else:
                append((meter, state, (volume, when, recorded_at,
                                       signature, message_id)))
                continue
            drop(data, reason)
        return prepared
