"""Checks of metering dicts before they are written.

A sample the database would reject (a volume that is not a number, a key
longer than its column, a timestamp that cannot be parsed) would make its
whole batch fail and be redelivered forever; such samples are logged,
counted and dropped instead, and the rest of the batch is stored.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Iterator
from typing import Any

from oslo_log import log

from telemeter import utils

LOG = log.getLogger(__name__)

# Longest value of each text field (the SQL column sizes).
MAX_LENGTHS = {
    'counter_name': 255, 'counter_type': 255, 'counter_unit': 255,
    'resource_id': 255, 'user_id': 255, 'project_id': 255, 'source': 255,
    'message_id': 128, 'message_signature': 64,
}
REQUIRED = ('counter_name', 'resource_id')


_LENGTHS = tuple(MAX_LENGTHS.items())


def _text_problem(field: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        return f'{field} is a {type(value).__name__}, not text'
    return f'{field} is longer than {limit} characters'


def _volume_problem(volume: Any) -> str | None:
    try:
        number = float(volume)
    except (TypeError, ValueError):
        return f'counter_volume {volume!r} is not a number'
    if not math.isfinite(number):
        return f'counter_volume {volume!r} is not finite'
    return None


def problem(data: Any) -> str | None:
    """Why ``data`` cannot be stored, or None if it can.

    Written for speed (it runs for every sample): the common types are
    tested first, the explanations built only for a bad sample.
    """
    if not isinstance(data, dict):
        return f'not a metering dict but {type(data).__name__}'
    get = data.get
    for field in REQUIRED:
        if not get(field):
            return f'{field} is missing'
    for field, limit in _LENGTHS:
        value = get(field)
        if value is not None and (value.__class__ is not str
                                  or len(value) > limit):
            if isinstance(value, str) and len(value) <= limit:
                continue  # a str subclass
            return _text_problem(field, value, limit)
    volume = get('counter_volume')
    if volume is not None and (volume.__class__ is not float
                               or not math.isfinite(volume)):
        reason = _volume_problem(volume)
        if reason:
            return reason
    timestamp = get('timestamp')
    if timestamp is not None and not isinstance(timestamp,
                                                datetime.datetime):
        try:
            utils.sanitize_timestamp(timestamp)
        except (TypeError, ValueError) as err:
            return f'timestamp {timestamp!r} cannot be parsed: {err}'
    return None


def resource_problem(resource_id: Any, user_id: Any, project_id: Any,
                     source: Any) -> str | None:
    """The problem of a sample's resource fields, if any."""
    return problem({'counter_name': '-', 'resource_id': resource_id,
                    'user_id': user_id, 'project_id': project_id,
                    'source': source})


def meter_problem(name: Any, type_: Any, unit: Any) -> str | None:
    """The problem of a sample's meter fields, if any."""
    return problem({'counter_name': name, 'resource_id': '-',
                    'counter_type': type_, 'counter_unit': unit})


class SampleChecker:
    """Filters batches; counts what it dropped (``dropped``)."""

    def __init__(self) -> None:
        self.dropped = 0

    def drop(self, data: Any, reason: str | None = None) -> None:
        """Log and count one sample that cannot be stored."""
        self.dropped += 1
        message_id = (data.get('message_id')
                      if isinstance(data, dict) else None)
        LOG.warning('Dropping a sample that cannot be stored '
                    '(message_id %(id)s): %(reason)s; %(count)d dropped '
                    'so far',
                    {'id': message_id, 'reason': reason or problem(data),
                     'count': self.dropped})

    def valid(self, samples: Iterable[Any]) -> Iterator[dict]:
        """Yield the storable samples; log and count the others."""
        for data in samples:
            reason = problem(data)
            if reason is None:
                yield data
            else:
                self.drop(data, reason)
