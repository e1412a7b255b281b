"""Preparing metering dicts for the SQL writer.

Each dict becomes a :class:`PreparedSample`: its meter key, its resource
row (keyed by ``identity_hash``, memoised per resource state), its typed
metadata rows and the sample values, with the checks that keep samples the
database would reject out of a batch (:class:`InvalidSample`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from oslo_log import log

from telemeter import utils
from telemeter.storage import validation
from telemeter.storage.sqlalchemy import tables

LOG = log.getLogger(__name__)

MeterKey = tuple[str, str | None, str | None]

_BIGINT_MIN, _BIGINT_MAX = -(2 ** 63), 2 ** 63 - 1
_KEY_MAX = 255


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


def metadata_rows(internal_id: int, metadata: Any
                  ) -> Iterator[tuple[sa.Table, dict]]:
    """Yield ``(table, row)`` for every queryable leaf of ``metadata``."""
    for key, value in utils.dict_to_keyval(metadata):
        table = metadata_table_for(value)
        if (table is None or len(key) > _KEY_MAX
                or (table is tables.metadata_int
                    and not _BIGINT_MIN <= value <= _BIGINT_MAX)):
            LOG.warning('Unknown metadata type. Key (%s) will not be '
                        'queryable.', key)
            continue
        yield table, {'id': internal_id, 'meta_key': key, 'value': value}


@dataclasses.dataclass(slots=True)
class PreparedSample:
    """A metering dict split into its meter, resource and sample parts.

    ``sample`` holds the values of :data:`SAMPLE_COLUMNS` after
    ``meter_id`` and ``resource_id``.
    """

    meter: MeterKey
    identity: str
    resource: dict
    metadata: Any
    sample: tuple


class InvalidSample(ValueError):
    """A metering dict the database would reject."""


class IdentityCache:
    """Memo of resource identities: repr of the resource part → hashes.

    Computing ``metadata_hash`` needs a sorted JSON dump and two MD5s per
    sample; consecutive samples of one resource state share the same
    ``repr`` (an exact spelling of the values), so the result is reused.
    Bounded: cleared when it reaches ``size`` entries.
    """

    def __init__(self, size: int = 20000) -> None:
        self.size = size
        self._items: dict[str, dict] = {}

    def get(self, resource_id: str, user_id: str | None,
            project_id: str | None, source: str | None,
            metadata: Any) -> dict:
        """The resource row of one resource state (without its metadata
        text), with ``metadata_hash`` and ``identity_hash``. Shared: do
        not modify it."""
        key = repr((resource_id, user_id, project_id, source, metadata))
        found = self._items.get(key)
        if found is None:
            reason = validation.resource_problem(resource_id, user_id,
                                                 project_id, source)
            if reason:
                raise InvalidSample(reason)
            found = resource_row(resource_id, user_id, project_id, source,
                                 metadata_hash(metadata))
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = found
        return found


def _naive_utc(timestamp: Any) -> Any:
    if timestamp is not None and (not isinstance(timestamp,
                                                 datetime.datetime)
                                  or timestamp.tzinfo is not None):
        return utils.sanitize_timestamp(timestamp)
    return timestamp


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


def prepare(data: dict, recorded_at: datetime.datetime,
            identities: IdentityCache | None = None) -> PreparedSample:
    """Normalise one metering dict for writing."""
    metadata = data.get('resource_metadata')
    resource_id = data['resource_id']
    user_id = data.get('user_id')
    project_id = data.get('project_id')
    source = data.get('source')
    if identities is None:
        reason = validation.resource_problem(resource_id, user_id,
                                             project_id, source)
        if reason:
            raise InvalidSample(reason)
        resource = resource_row(resource_id, user_id, project_id, source,
                                metadata_hash(metadata))
    else:
        resource = identities.get(resource_id, user_id, project_id, source,
                                  metadata)
    identity = resource['identity_hash']
    volume = data.get('counter_volume')
    sample = (None if volume is None else float(volume),
              _naive_utc(data.get('timestamp')) or recorded_at,
              recorded_at,
              data.get('message_signature'),
              data.get('message_id'))
    meter = (data['counter_name'], data.get('counter_type'),
             data.get('counter_unit'))
    return PreparedSample(meter, identity, resource, metadata, sample)


# Columns of a sample row: the meter and resource ids, then the values
# of PreparedSample.sample.
SAMPLE_COLUMNS = ('meter_id', 'resource_id', 'volume', 'timestamp',
                  'recorded_at', 'message_signature', 'message_id')
