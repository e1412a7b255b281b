"""Small helpers shared by the agents, publishers and storage drivers."""

from __future__ import annotations

import calendar
import copy
import datetime
import decimal
import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml
from oslo_utils import timeutils

#: libyaml's loader when PyYAML was built with it (about 10x faster on the
#: meter and event definitions, which every daemon start reads twice:
#: preflight in the master, then each worker).
_YAML_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)


def decode_unicode(value: Any) -> Any:
    """Convert text to UTF-8 bytes (and bytes to text) recursively.

    Dicts are rebuilt with their keys in sorted order, lists and tuples become
    lists. This is the form in which list values enter a message signature,
    so that a JSON or msgpack round trip does not change the digest.
    """
    if isinstance(value, dict):
        return {decode_unicode(k): decode_unicode(value[k])
                for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [decode_unicode(item) for item in value]
    if isinstance(value, str):
        return value.encode('utf-8')
    if isinstance(value, bytes):
        return value.decode('utf-8')
    return value


def recursive_keypairs(d: Mapping, separator: str = ':'
                       ) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, value)`` for every leaf of a nested mapping.

    Keys are visited in sorted order at every level; nested names are joined
    with ``separator``; list and tuple values are yielded once, converted by
    :func:`decode_unicode`; an empty dict yields nothing.
    """
    for name, value in sorted(d.items()):
        if isinstance(value, dict):
            for subname, subvalue in recursive_keypairs(value, separator):
                yield f'{name}{separator}{subname}', subvalue
        elif isinstance(value, (tuple, list)):
            yield name, decode_unicode(value)
        else:
            yield name, value


def restore_nesting(d: Mapping, separator: str = ':') -> dict:
    """Turn ``{'a:b': 1}`` back into ``{'a': {'b': 1}}``."""
    if not any(separator in k for k in d):
        return dict(d)
    result: dict = {}
    for key, value in d.items():
        if isinstance(value, dict):
            value = restore_nesting(value, separator)
        *parents, leaf = key.split(separator)
        target = result
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return result


def dict_to_keyval(value: Any, key_base: str | None = None
                   ) -> Iterator[tuple[str, Any]]:
    """Flatten nested dicts and lists into dotted ``(key, value)`` pairs.

    ``{'a': {'b': 1}, 'l': ['x']}`` yields ``('a.b', 1)`` and
    ``('l[0]', 'x')``.
    """
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = ((f'[{i}]', v) for i, v in enumerate(value))
    else:
        return
    for key, val in items:
        if isinstance(value, dict):
            name = f'{key_base}.{key}' if key_base else str(key)
        else:
            name = f'{key_base}{key}' if key_base else key
        if isinstance(val, (dict, list, tuple)):
            yield from dict_to_keyval(val, name)
        else:
            yield name, val


# The ISO 8601 spellings datetime.isoformat() writes: YYYY-MM-DDTHH:MM:SS
# (19 characters, a space instead of the T allowed) or with .ffffff (26),
# then nothing, Z or ±HH:MM. _MARKS: the characters at 4, 7, 10, 13, 16.
_CANONICAL_LENGTHS = frozenset((19, 20, 25, 26, 27, 32))
_CANONICAL_MARKS = frozenset(('--T::', '-- ::'))
_UTC_SUFFIXES = frozenset(('Z', '+00:00', '-00:00'))
_fromisoformat = datetime.datetime.fromisoformat


def _offset_shaped(suffix: str) -> bool:
    return (len(suffix) == 6 and suffix[0] in '+-' and suffix[3] == ':'
            and suffix[1:3].isdigit() and suffix[4:].isdigit())


def _local_length(text: str) -> int | None:
    """The length of the date and time part of a canonical spelling
    (19 or 26), or None if ``text`` is not one."""
    size = len(text)
    if size not in _CANONICAL_LENGTHS or text[4:17:3] not in _CANONICAL_MARKS:
        return None
    if size < 26:
        local = 19
    elif text[19] == '.' and text[20:26].isdigit():
        local = 26
    else:
        return None
    suffix = text[local:]
    if suffix and suffix not in _UTC_SUFFIXES and not _offset_shaped(suffix):
        return None
    return local


def canonical_isotime(text: str) -> datetime.datetime | None:
    """``text`` as a naive UTC datetime if it has one of the spellings
    ``datetime.isoformat()`` writes (``T`` or space separator, no or six
    fraction digits, no offset (UTC), ``Z`` or ``±HH:MM``), else None.

    The fast path of :func:`sanitize_timestamp`: for these spellings
    ``datetime.fromisoformat`` gives exactly what the ISO 8601 parser
    gives, 50 times faster; the other spellings it accepts (week dates,
    any separator, other fraction lengths...) are left to that parser,
    which decides as before.
    """
    local = _local_length(text)
    if local is None:
        return None
    try:
        if len(text) == local:
            return _fromisoformat(text)
        if text[local:] in _UTC_SUFFIXES:
            return _fromisoformat(text[:local])
        parsed = _fromisoformat(text)
        offset = parsed.utcoffset()
        if offset is None:  # not reached: the text has an offset
            return parsed
        return parsed.replace(tzinfo=None) - offset
    except (ValueError, OverflowError):
        return None


def parse_isotime(text: str) -> datetime.datetime:
    """An ISO 8601 timestamp as an aware datetime (naive text is UTC):
    exactly :func:`oslo_utils.timeutils.parse_isotime`, with the fast path
    of :func:`canonical_isotime` for the spellings OpenStack sends."""
    if text.__class__ is str and _local_length(text) is not None:
        try:
            moment = _fromisoformat(text)
        except (ValueError, OverflowError):
            return timeutils.parse_isotime(text)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=datetime.UTC)
        return moment
    return timeutils.parse_isotime(text)


def naive_utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` in UTC without a time zone (naive input is UTC)."""
    offset = moment.utcoffset()
    if offset is None:
        return moment
    return (moment - offset).replace(tzinfo=None)


def sanitize_timestamp(timestamp: Any) -> datetime.datetime | None:
    """Return a naive UTC datetime for an ISO string or a datetime.

    Strings without an offset are UTC. Raises ValueError (or TypeError,
    OverflowError) if ``timestamp`` cannot be read as a time.
    """
    if not timestamp:
        return timestamp
    if timestamp.__class__ is str:
        parsed = canonical_isotime(timestamp)
        if parsed is not None:
            return parsed
    if not isinstance(timestamp, datetime.datetime):
        timestamp = parse_isotime(timestamp)
    return naive_utc(timestamp)


def dt_to_decimal(utc: datetime.datetime | None) -> decimal.Decimal | None:
    """Naive UTC datetime to epoch seconds with microsecond precision."""
    if utc is None:
        return None
    seconds = calendar.timegm(utc.utctimetuple())
    return decimal.Decimal(seconds) + decimal.Decimal(utc.microsecond) / (
        decimal.Decimal(1000000))


def decimal_to_dt(dec: decimal.Decimal | None) -> datetime.datetime | None:
    """Epoch seconds (Decimal) to a naive UTC datetime."""
    if dec is None:
        return None
    integer = int(dec)
    micro = int(((dec - decimal.Decimal(integer)) * 1000000)
                .to_integral_value())
    moment = datetime.datetime.fromtimestamp(integer, datetime.UTC)
    return moment.replace(microsecond=micro, tzinfo=None)


def update_nested(original: Mapping, updates: Mapping) -> dict:
    """Return a deep copy of ``original`` with ``updates`` merged in."""
    result = copy.deepcopy(dict(original))
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = update_nested(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class LazyModule:
    """A module imported on first attribute access.

    For libraries that only some daemons use but every daemon imports for
    the options of the module that uses them (pysnmp: 0.1 s and 4.5 MB).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


def entry_point_names(group: str) -> list[str]:
    """The sorted plugin names of an entry point ``group`` (what an error
    about an unknown driver, publisher or dispatcher lists), read from the
    installed metadata without importing the plugins."""
    from importlib import metadata

    return sorted({ep.name for ep in metadata.entry_points(group=group)})


def load_yaml(stream: Any) -> Any:
    """``yaml.safe_load`` with libyaml when available: same types, same
    :class:`yaml.MarkedYAMLError` (with ``problem_mark``) on bad syntax."""
    return yaml.load(stream, Loader=_YAML_LOADER)  # noqa: S506 (safe)
