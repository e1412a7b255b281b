"""The Sample: one measurement of one meter for one resource.

Every agent speaks in Samples: pollsters yield them, notification handlers
build them from notifications, transformers turn them into new ones and
publishers serialise them (see :mod:`telemeter.publisher.utils`).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from telemeter import utils

OPTS = [
    cfg.StrOpt('sample_source',
               default='openstack',
               help='Source for samples emitted on this instance.'),
    cfg.ListOpt('reserved_metadata_namespace',
                default=['metering.'],
                help='List of metadata prefixes reserved for metering use.'),
    cfg.IntOpt('reserved_metadata_length',
               default=256,
               help='Limit on length of reserved metadata values.'),
    cfg.ListOpt('reserved_metadata_keys',
                default=[],
                help='List of metadata keys reserved for metering use. And '
                     'these keys are additional to the ones included in the '
                     'namespace.'),
]

TYPE_GAUGE = 'gauge'
TYPE_DELTA = 'delta'
TYPE_CUMULATIVE = 'cumulative'
TYPES = (TYPE_GAUGE, TYPE_DELTA, TYPE_CUMULATIVE)


def setup(conf: cfg.ConfigOpts) -> None:
    """Make ``[DEFAULT] sample_source`` the default source of new samples."""
    Sample.SOURCE_DEFAULT = conf.sample_source


def add_reserved_user_metadata(conf: cfg.ConfigOpts, src_metadata: dict,
                               dest_metadata: dict) -> dict:
    """Copy the operator-reserved keys of ``src_metadata`` into
    ``dest_metadata['user_metadata']`` and return ``dest_metadata``."""
    limit = conf.reserved_metadata_length
    user_metadata: dict[str, Any] = {}

    def _collect(key: str, value: Any) -> None:
        key = key.replace('.', '_')
        if key in dest_metadata or key in user_metadata:
            return
        if isinstance(value, str):
            value = value[:limit]
        user_metadata[key] = value

    for prefix in conf.reserved_metadata_namespace:
        for key, value in src_metadata.items():
            if key.startswith(prefix):
                _collect(key[len(prefix):], value)
    for key in conf.reserved_metadata_keys:
        if key in src_metadata:
            _collect(key, src_metadata[key])
    if user_metadata:
        dest_metadata['user_metadata'] = user_metadata
    return dest_metadata


#: Namespace of the sample ids derived from notifications (UUID version 5).
ID_NAMESPACE = uuid.UUID('b7b4f7a4-3f0e-4d5c-9a61-5a8f3c1e2d40').bytes


def _as_uuid(digest: str, version: str) -> str:
    """A UUID string of ``version`` from 32 hex digits (RFC 4122 bits)."""
    variant = '89ab'[int(digest[16], 16) & 0x3]
    return (f'{digest[:8]}-{digest[8:12]}-{version}{digest[13:16]}-'
            f'{variant}{digest[17:20]}-{digest[20:32]}')


# 100 ns intervals from the Gregorian reform to the Unix epoch (RFC 4122).
_UUID_EPOCH = 0x01b21dd213814000


class _TimeIds:
    """Version 1 UUIDs of this process: a random node with the multicast
    bit set (RFC 4122 §4.5) and a random clock sequence, both drawn again
    after a fork so that workers never share them, and timestamps that
    never repeat (the next 100 ns tick when the clock has not moved)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._suffix = ''
        self._last = 0

    def _reseed(self) -> None:
        node = int.from_bytes(os.urandom(6), 'big') | (1 << 40)
        clock_seq = int.from_bytes(os.urandom(2), 'big') & 0x3fff
        self._suffix = f'-{0x8000 | clock_seq:04x}-{node:012x}'
        self._pid = os.getpid()

    def __call__(self) -> str:
        with self._lock:
            if self._pid != os.getpid():
                self._reseed()
            tick = time.time_ns() // 100 + _UUID_EPOCH
            if tick <= self._last:
                tick = self._last + 1
            self._last = tick
            suffix = self._suffix
        return (f'{tick & 0xffffffff:08x}-{(tick >> 32) & 0xffff:04x}-'
                f'{0x1000 | (tick >> 48) & 0x0fff:04x}{suffix}')


#: A new sample id: a version 1 UUID as Ceilometer's ``str(uuid1())``,
#: made without the system's UUID clock lock (20 µs a call here; this
#: takes about 1 µs).
new_id = _TimeIds()


def derived_id(*parts: str) -> str:
    """The version 5 UUID of ``parts`` joined by ``/`` in the sample id
    namespace: the same parts always give the same id, so a notification
    delivered twice makes samples that storage keeps once."""
    name = '/'.join(parts).encode('utf-8')
    digest = hashlib.sha1(ID_NAMESPACE + name, usedforsecurity=False)
    return _as_uuid(digest.hexdigest(), '5')


def from_metering_dict(data: dict, **extra: Any) -> Sample:
    """Rebuild a Sample from a metering dict (``counter_*`` keys).

    ``extra`` sets what the caller carries over besides the measurement
    itself, e.g. ``id=data['message_id']``.
    """
    return Sample(name=data['counter_name'],
                  type=data['counter_type'],
                  unit=data['counter_unit'],
                  volume=data['counter_volume'],
                  user_id=data['user_id'],
                  project_id=data['project_id'],
                  resource_id=data['resource_id'],
                  timestamp=data['timestamp'],
                  resource_metadata=data['resource_metadata'],
                  source=data.get('source'),
                  **extra)


class Sample:
    """One data point of a meter.

    ``timestamp`` is an ISO 8601 string (or None until the polling agent
    stamps it); ``id`` becomes the ``message_id`` of the published dict.
    """

    SOURCE_DEFAULT = 'openstack'

    def __init__(self, name: str, type: str, unit: str | None, volume: Any,
                 user_id: str | None, project_id: str | None,
                 resource_id: str, timestamp: str | None = None,
                 resource_metadata: dict | None = None,
                 source: str | None = None, id: str | None = None,
                 monotonic_time: float | None = None) -> None:
        self.name = name
        self.type = type
        self.unit = unit
        self.volume = volume
        self.user_id = user_id
        self.project_id = project_id
        self.resource_id = resource_id
        self.timestamp = timestamp
        self.resource_metadata = resource_metadata or {}
        self.source = source or self.SOURCE_DEFAULT
        self._id = id or None
        self.monotonic_time = monotonic_time

    @property
    def id(self) -> str:
        """The sample's id, :func:`new_id` unless one was given (drawn on
        first use: notification handlers give most samples an id of their
        own, see :func:`derived_id`)."""
        if self._id is None:
            self._id = new_id()
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    def as_dict(self) -> dict[str, Any]:
        return {
            'name': self.name,
            'type': self.type,
            'unit': self.unit,
            'volume': self.volume,
            'user_id': self.user_id,
            'project_id': self.project_id,
            'resource_id': self.resource_id,
            'timestamp': self.timestamp,
            'resource_metadata': self.resource_metadata,
            'source': self.source,
            'id': self.id,
            'monotonic_time': self.monotonic_time,
        }

    def __repr__(self) -> str:
        return (f'<name: {self.name}, volume: {self.volume}, '
                f'resource_id: {self.resource_id}, '
                f'timestamp: {self.timestamp}>')

    def set_timestamp(self, timestamp: str | None) -> None:
        self.timestamp = timestamp

    def get_iso_timestamp(self) -> datetime.datetime:
        """The timestamp as an aware datetime (naive strings mean UTC);
        ValueError without one."""
        if self.timestamp is None:
            raise ValueError(f'sample {self.id} has no timestamp')
        return utils.parse_isotime(self.timestamp)

    @classmethod
    def from_notification(cls, name: str, type: str, volume: Any,
                          unit: str | None, user_id: str | None,
                          project_id: str | None, resource_id: str,
                          message: Mapping[str, Any],
                          timestamp: str | None = None,
                          metadata: dict | None = None,
                          source: str | None = None) -> Sample:
        """Build a Sample from an oslo.messaging notification dict."""
        if not metadata:
            payload = message.get('payload')
            metadata = (copy.copy(payload) if isinstance(payload, dict)
                        else {})
            metadata['event_type'] = message['event_type']
            metadata['host'] = message['publisher_id']
        ts = timestamp or message['metadata']['timestamp']
        moment = utils.parse_isotime(str(ts))
        return cls(name=name, type=type, volume=volume, unit=unit,
                   user_id=user_id, project_id=project_id,
                   resource_id=resource_id, timestamp=moment.isoformat(),
                   resource_metadata=metadata, source=source)
