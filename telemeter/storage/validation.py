"""The rules a metering dict must meet to be stored, in one place.

A sample the database would reject (a volume that is not a finite number,
text that is too long, holds a NUL character or is not valid Unicode, a
missing name or resource id, a timestamp that cannot be parsed) would make
its whole batch fail and be redelivered forever; such samples are logged,
counted and dropped instead, and the rest of the batch is stored.

The drivers' fast paths apply these rules with the helpers below
(:func:`text_ok`, :func:`volume`, :func:`timestamp`); :func:`problem`
explains in words what is wrong with a sample (and is the whole check of
drivers without a fast path).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Iterator
from typing import Any

from oslo_log import log

from telemeter import utils, wire
from telemeter.utils import canonical_isotime
from telemeter.wire import MAX_LENGTHS, METER_FIELDS, REQUIRED, RESOURCE_FIELDS

LOG = log.getLogger(__name__)

_LENGTHS = tuple(MAX_LENGTHS.items())
_isfinite = math.isfinite


class InvalidSample(ValueError):
    """A metering dict the database would reject."""


def _encodable(text: str) -> bool:
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def text_ok(value: Any, limit: int) -> bool:
    """True if ``value`` is text a database stores in a column of
    ``limit`` characters: not too long, no NUL, valid Unicode."""
    return (isinstance(value, str) and len(value) <= limit
            and '\x00' not in value
            and (value.isascii() or _encodable(value)))


def text_problem(field: str, value: Any, limit: int) -> str | None:
    """Why ``value`` (None allowed) cannot be stored in ``field``."""
    if value is None or text_ok(value, limit):
        return None
    if not isinstance(value, str):
        return f'{field} is a {type(value).__name__}, not text'
    if len(value) > limit:
        return f'{field} is longer than {limit} characters'
    if '\x00' in value:
        return f'{field} contains a NUL character'
    return f'{field} is not valid Unicode text'


def volume(value: Any) -> float | None:
    """``counter_volume`` as a float (None stays None); raises
    :class:`InvalidSample` unless it is a finite number or the text of
    one (:func:`telemeter.wire.volume_problem`)."""
    if value is None:
        return None
    if value.__class__ is float and _isfinite(value):
        return value
    problem = wire.volume_problem(value, finite=True)
    if problem is not None:
        raise InvalidSample(f'counter_volume {value!r} is {problem.value}')
    return float(value)


def timestamp(value: Any) -> datetime.datetime | None:
    """``value`` (an ISO 8601 string, naive strings meaning UTC, or a
    datetime) as a naive UTC datetime; None and '' give None. Raises
    :class:`InvalidSample` if it cannot be read as a time."""
    if value.__class__ is str:
        parsed = canonical_isotime(value)
        if parsed is not None:
            return parsed
    elif value.__class__ is datetime.datetime and value.tzinfo is None:
        return value
    try:
        return utils.sanitize_timestamp(value) or None
    except (TypeError, ValueError, OverflowError, AttributeError) as err:
        raise InvalidSample(
            f'timestamp {value!r} cannot be parsed: {err}') from None


def resource_problem(resource_id: Any, user_id: Any, project_id: Any,
                     source: Any) -> str | None:
    """The problem of a sample's resource fields, if any."""
    if not resource_id:
        return 'resource_id is missing'
    for field, value in zip(RESOURCE_FIELDS,
                            (resource_id, user_id, project_id, source),
                            strict=True):
        reason = text_problem(field, value, MAX_LENGTHS[field])
        if reason:
            return reason
    return None


def meter_problem(name: Any, type_: Any, unit: Any) -> str | None:
    """The problem of a sample's meter fields, if any."""
    if not name:
        return 'counter_name is missing'
    for field, value in zip(METER_FIELDS, (name, type_, unit), strict=True):
        reason = text_problem(field, value, MAX_LENGTHS[field])
        if reason:
            return reason
    return None


def problem(data: Any) -> str | None:
    """Why ``data`` cannot be stored, or None if it can."""
    if not isinstance(data, dict):
        return f'not a metering dict but {type(data).__name__}'
    get = data.get
    for field in REQUIRED:
        if not get(field):
            return f'{field} is missing'
    for field, limit in _LENGTHS:
        reason = text_problem(field, get(field), limit)
        if reason:
            return reason
    try:
        volume(get('counter_volume'))
        timestamp(get('timestamp'))
    except InvalidSample as err:
        return str(err)
    return None


class SampleChecker:
    """Filters batches; counts what it dropped (``dropped``)."""

    def __init__(self) -> None:
        self.dropped = 0

    def drop(self, data: Any, reason: str | None = None) -> None:
        """Log and count one sample that cannot be stored."""
        self.dropped += 1
        message_id = (data.get('message_id')
                      if isinstance(data, dict) else None)
        LOG.error('Error processing sample and it will be dropped '
                  '(%(reason)s; message_id %(id)s; %(count)d dropped so '
                  'far): %(sample)s',
                  {'id': message_id, 'reason': reason or problem(data),
                   'count': self.dropped, 'sample': data})

    def valid(self, samples: Iterable[Any]) -> Iterator[dict]:
        """Yield the storable samples; log and count the others."""
        for data in samples:
            reason = problem(data)
            if reason is None:
                yield data
            else:
                self.drop(data, reason)
