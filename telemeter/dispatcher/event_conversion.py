"""Event dicts off the bus turned back into Event models.

The dicts are what ``models.Event.serialize()`` makes (plus the message
signature): ``message_id``, ``event_type``, ``generated`` as ISO 8601
text, ``traits`` as ``[name, dtype, value]`` lists with datetime values as
ISO 8601 text, and ``raw``. The values come out as
:meth:`models.Trait.convert_value` makes them, which is only called when
a value is not of its stored type already (most are: JSON gives text,
integers and floats), and timestamps are read with
:func:`telemeter.utils.sanitize_timestamp`, a tenth of oslo.utils' cost.
"""

from __future__ import annotations

import datetime
from typing import Any

from telemeter import utils
from telemeter.storage import models

_TEXT_MAX = models.TEXT_MAX_LENGTH
_TEXT = models.Trait.TEXT_TYPE
_INT = models.Trait.INT_TYPE
_FLOAT = models.Trait.FLOAT_TYPE
_DATETIME = models.Trait.DATETIME_TYPE
_convert = models.Trait.convert_value
_Trait = models.Trait


def _timestamp(text: Any) -> datetime.datetime:
    """An event's ISO 8601 time as a naive UTC datetime; ValueError (or
    TypeError) when there is none or it is not a time."""
    moment = utils.sanitize_timestamp(text) if text else None
    if moment is None:
        raise ValueError(f'{text!r} is not a timestamp')
    return moment


def _value(dtype: int, value: Any) -> Any:
    """``convert_value(dtype, value)`` for the values not taken as they
    are by :func:`event_from_dict`."""
    if dtype == _DATETIME and value.__class__ is str:
        return _timestamp(value)
    return _convert(dtype, value)


def event_from_dict(data: dict) -> models.Event:
    """The Event model of a serialised event; raise KeyError, TypeError or
    ValueError for a dict that is not one.

    A value of its stored type already (text of at most 255 characters,
    an int, a float) is taken as it is: ``convert_value`` would return it
    unchanged.
    """
    traits: list[models.Trait] = []
    append = traits.append
    for name, dtype, value in data['traits']:
        cls = value.__class__
        if not ((cls is str and dtype == _TEXT and len(value) <= _TEXT_MAX)
                or (cls is int and dtype == _INT)
                or (cls is float and dtype == _FLOAT)):
            value = _value(dtype, value)
        append(_Trait(name, dtype, value))
    return models.Event(message_id=data['message_id'],
                        event_type=data['event_type'],
                        generated=_timestamp(data['generated']),
                        traits=traits, raw=data.get('raw', {}))
