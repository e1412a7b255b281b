"""Event models turned into rows, and the events a database would refuse.

An event the database would reject forever (a NUL character in a text on
PostgreSQL, a value longer than its column, an integer outside 64 bits, a
non-finite float on MySQL, a trait twice in one event, a value that is
not of its trait's type...) would fail its whole batch, and the collector
would requeue the batch forever; such an event is found here, before
anything is written, and the writer logs, counts and drops it
(:class:`telemeter.storage.event_checker.EventChecker`).

The rules follow what each database refuses, so an event stored before
is still stored: SQLite keeps over-long texts, PostgreSQL and SQLite keep
NaN and infinite floats (SQLite reads NaN back as NULL), MySQL keeps NUL
characters.
"""

from __future__ import annotations

import datetime
import json
import math
from typing import Any, NamedTuple

from telemeter import utils
from telemeter.storage import models

MESSAGE_ID_LENGTH = 50       # event.message_id
NAME_LENGTH = 255            # event_type.desc, trait key
MYSQL_TEXT_BYTES = 65535     # event.raw is TEXT on MySQL
INT_MIN, INT_MAX = -2 ** 63, 2 ** 63 - 1

# Index of the trait table of each dtype, in filters.TRAIT_TABLES order
# (text, int, float, datetime); a trait without type is text.
TABLE_INDEX = {
    models.Trait.NONE_TYPE: 0,
    models.Trait.TEXT_TYPE: 0,
    models.Trait.INT_TYPE: 1,
    models.Trait.FLOAT_TYPE: 2,
    models.Trait.DATETIME_TYPE: 3,
}
_TEXT_MAX = models.TEXT_MAX_LENGTH


class Unstorable(ValueError):
    """The event can never be stored; the message says why."""


class PreparedEvent(NamedTuple):
    """The values of one event's rows.

    ``traits`` holds one list of ``(key, value)`` per trait table, in
    ``filters.TRAIT_TABLES`` order.
    """

    message_id: str | None
    event_type: str
    generated: datetime.datetime | None
    raw: str | None
    traits: tuple[list[tuple[str, Any]], ...]


class Rules:
    """What the database of ``dialect`` refuses."""

    def __init__(self, dialect: str) -> None:
        self.lengths = dialect != 'sqlite'      # VARCHAR(n) is enforced
        self.nul = dialect == 'postgresql'      # no NUL in text
        self.finite = dialect not in ('postgresql', 'sqlite')
        self.raw_bytes = MYSQL_TEXT_BYTES if dialect == 'mysql' else None

    def text_problem(self, field: str, value: Any,
                     limit: int | None) -> str | None:
        """Why ``value`` cannot be stored in a text column, or None."""
        if not isinstance(value, str):
            return f'{field} is a {type(value).__name__}, not text'
        if limit is not None and self.lengths and len(value) > limit:
            return f'{field} is longer than {limit} characters'
        if self.nul and '\x00' in value:
            return f'{field} contains a NUL character'
        if not value.isascii():
            try:
                value.encode('utf-8')
            except UnicodeEncodeError:
                return f'{field} is not valid Unicode text'
        return None


def _check_text(rules: Rules, field: str, value: Any,
                limit: int | None) -> None:
    reason = rules.text_problem(field, value, limit)
    if reason:
        raise Unstorable(reason)


def _generated(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    if value.__class__ is not datetime.datetime:
        try:
            value = utils.sanitize_timestamp(value)
        except (TypeError, ValueError) as err:
            raise Unstorable(f'generated {value!r} cannot be parsed: '
                             f'{err}') from None
        if not isinstance(value, datetime.datetime):
            raise Unstorable(f'generated {value!r} is not a time')
    return utils.naive_utc(value)


def _raw(rules: Rules, raw: Any) -> str | None:
    if raw is None:
        return None
    if raw.__class__ is dict and not raw:
        return '{}'   # what json.dumps makes of it (store_raw is off)
    try:
        text = json.dumps(raw, default=str)
    except (TypeError, ValueError) as err:
        raise Unstorable(f'raw cannot be written as JSON: {err}') from None
    # ASCII only (ensure_ascii): one byte a character.
    if rules.raw_bytes is not None and len(text) > rules.raw_bytes:
        raise Unstorable(f'raw is longer than {rules.raw_bytes} bytes as '
                         f'JSON')
    return text


def trait_value(rules: Rules, name: str, dtype: int, value: Any) -> Any:
    """``value`` as stored for ``dtype`` (converted as
    :meth:`models.Trait.convert_value` does, which is skipped when the
    value has its stored type already)."""
    if value is None:
        return None
    cls = value.__class__
    if dtype == models.Trait.INT_TYPE:
        if cls is not int:
            value = int(value)
        if not INT_MIN <= value <= INT_MAX:
            raise Unstorable(f'trait {name} {value} does not fit 64 bits')
        return value
    if dtype == models.Trait.FLOAT_TYPE:
        if cls is not float:
            value = float(value)
        if rules.finite and not math.isfinite(value):
            raise Unstorable(f'trait {name} {value!r} is not finite')
        return value
    if dtype == models.Trait.DATETIME_TYPE:
        if cls is datetime.datetime and value.tzinfo is None:
            return value
        return models.Trait.convert_value(dtype, value)
    if cls is not str or len(value) > _TEXT_MAX:
        value = models.Trait.convert_value(models.Trait.TEXT_TYPE, value)
    _check_text(rules, f'trait {name}', value, None)
    return value


def prepare(event: models.Event, rules: Rules) -> PreparedEvent:
    """The rows of ``event``; raise :class:`Unstorable` if the database
    would refuse them.

    Runs for every trait of every event: the common case (a short ASCII
    name, a value of its stored type) is tested inline, the full checks
    and conversions only run for the others.
    """
    message_id = event.message_id
    if message_id is not None:
        _check_text(rules, 'message_id', message_id, MESSAGE_ID_LENGTH)
    event_type = event.event_type
    _check_text(rules, 'event_type', event_type, NAME_LENGTH)
    nul = rules.nul
    finite = rules.finite
    traits: tuple[list[tuple[str, Any]], ...] = ([], [], [], [])
    seen: tuple[set[str], ...] = (set(), set(), set(), set())
    for trait in event.traits or ():
        name = trait.name
        if (name.__class__ is not str or not name.isascii()
                or len(name) > NAME_LENGTH or (nul and '\x00' in name)):
            _check_text(rules, 'trait name', name, NAME_LENGTH)
        index = TABLE_INDEX.get(trait.dtype)
        if index is None:
            raise Unstorable(f'Trait {name} has unknown type {trait.dtype}')
        names = seen[index]
        if name in names:
            raise Unstorable(f'trait {name} appears twice')
        names.add(name)
        value = trait.value
        cls = value.__class__
        if not (value is None
                or (index == 0 and cls is str and len(value) <= _TEXT_MAX
                    and value.isascii() and not (nul and '\x00' in value))
                or (index == 1 and cls is int and INT_MIN <= value <= INT_MAX)
                or (index == 2 and cls is float
                    and not (finite and not math.isfinite(value)))
                or (index == 3 and cls is datetime.datetime
                    and value.tzinfo is None)):
            value = _converted(rules, name, trait.dtype, value)
        traits[index].append((name, value))
    return PreparedEvent(message_id, event_type, _generated(event.generated),
                         _raw(rules, event.raw), traits)


def _converted(rules: Rules, name: str, dtype: int, value: Any) -> Any:
    try:
        return trait_value(rules, name, dtype, value)
    except Unstorable:
        raise
    except (TypeError, ValueError, OverflowError) as err:
        raise Unstorable(f'trait {name} {value!r} is not of its type: '
                         f'{err}') from None
