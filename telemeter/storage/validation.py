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


def problem(data: Any) -> str | None:
    """Why ``data`` cannot be stored, or None if it can."""
    if not isinstance(data, dict):
        return f'not a metering dict but {type(data).__name__}'
    for field in REQUIRED:
        if not data.get(field):
            return f'{field} is missing'
    for field, limit in MAX_LENGTHS.items():
        value = data.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            return f'{field} is a {type(value).__name__}, not text'
        if len(value) > limit:
            return f'{field} is longer than {limit} characters'
    volume = data.get('counter_volume')
    if volume is not None:
        try:
            number = float(volume)
        except (TypeError, ValueError):
            return f'counter_volume {volume!r} is not a number'
        if not math.isfinite(number):
            return f'counter_volume {volume!r} is not finite'
    timestamp = data.get('timestamp')
    if timestamp is not None and not isinstance(timestamp,
                                                datetime.datetime):
        try:
            utils.sanitize_timestamp(timestamp)
        except (TypeError, ValueError) as err:
            return f'timestamp {timestamp!r} cannot be parsed: {err}'
    return None


class SampleChecker:
    """Filters batches; counts what it dropped (``dropped``)."""

    def __init__(self) -> None:
        self.dropped = 0

    def valid(self, samples: Iterable[Any]) -> Iterator[dict]:
        """Yield the storable samples; log and count the others."""
        for data in samples:
            reason = problem(data)
            if reason is None:
                yield data
                continue
            self.dropped += 1
            message_id = (data.get('message_id')
                          if isinstance(data, dict) else None)
            LOG.warning('Dropping a sample that cannot be stored '
                        '(message_id %(id)s): %(reason)s; %(count)d '
                        'dropped so far',
                        {'id': message_id, 'reason': reason,
                         'count': self.dropped})
