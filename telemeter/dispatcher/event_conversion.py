"""Event dicts off the bus turned back into Event models.

The dicts are what ``models.Event.serialize()`` makes (plus the message
signature): ``message_id``, ``event_type``, ``generated`` as ISO 8601
text, ``traits`` as ``[name, dtype, value]`` lists with datetime values as
ISO 8601 text, and ``raw``. The values come out as
:meth:`models.Trait.convert_value` makes them, which is only called when
a value is not of its stored type already (most are: JSON gives text,
integers and floats), and timestamps are read with
:func:`telemeter.utils.parse_isotime`, a tenth of oslo.utils' cost.
"""

from __future__ import annotations

import datetime
from typing import Any

from telemeter import utils
from telemeter.storage import models

_TEXT_MAX = models.TEXT_MAX_LENGTH
_INT = models.Trait.INT_TYPE
_FLOAT = models.Trait.FLOAT_TYPE
_DATETIME = models.Trait.DATETIME_TYPE
_convert = models.Trait.convert_value
_Trait = models.Trait


def naive_utc(timestamp: Any) -> datetime.datetime:
    """An ISO 8601 string or a datetime as a naive UTC datetime."""
    if not isinstance(timestamp, datetime.datetime):
        timestamp = utils.parse_isotime(timestamp)
    return utils.naive_utc(timestamp)


def _value(dtype: int, value: Any) -> Any:
    """``convert_value(dtype, value)``, skipped when it would return
    ``value`` unchanged."""
    cls = value.__class__
    if dtype == _INT:
        return value if cls is int else int(value)
    if dtype == _FLOAT:
        return value if cls is float else float(value)
    if dtype == _DATETIME:
        if cls is str:
            return utils.naive_utc(utils.parse_isotime(value))
        return _convert(dtype, value)
    if cls is str and len(value) <= _TEXT_MAX:
        return value
    return _convert(dtype, value)


def event_from_dict(data: dict) -> models.Event:
    """The Event model of a serialised event; raise KeyError, TypeError or
    ValueError for a dict that is not one."""
    traits = []
    for name, dtype, value in data['traits']:
        traits.append(_Trait(name, dtype, _value(dtype, value)))
    return models.Event(message_id=data['message_id'],
                        event_type=data['event_type'],
                        generated=naive_utc(data['generated']),
                        traits=traits, raw=data.get('raw', {}))
