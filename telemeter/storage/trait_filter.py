"""The trait conditions of an EventFilter, parsed once for every backend.

``EventFilter.traits_filter`` is a list of ``{'key': name, '<type>':
value, 'op': op}`` dicts: one type of ``string``, ``integer``, ``float``
and ``datetime``, and op one of ``eq`` (the default), ``lt``, ``le``,
``gt``, ``ge``, ``ne``. :func:`parse` checks one and gives a
:class:`TraitCondition` whose value is of its type (a datetime naive
UTC); each backend compiles that (``storage/sqlalchemy/filters.py``,
``storage/mongo/events.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from telemeter import utils

OPERATORS = ('eq', 'lt', 'le', 'gt', 'ge', 'ne')
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    'string': lambda value: value,
    'integer': int,
    'float': float,
    'datetime': utils.sanitize_timestamp,
}
TYPES = tuple(_CONVERTERS)


@dataclasses.dataclass(frozen=True)
class TraitCondition:
    """``trait key op value``, the value of the named type."""

    key: str
    op: str
    type_name: str
    value: Any


def parse(trait_filter: dict) -> TraitCondition:
    """The condition of one trait filter; ValueError naming the filter
    when it is malformed or its value is not of its type."""
    spec = dict(trait_filter)
    try:
        key = spec.pop('key')
    except KeyError:
        raise ValueError(f'Trait filter {trait_filter!r} has no key') from None
    op = spec.pop('op', 'eq') or 'eq'
    if len(spec) != 1:
        raise ValueError(f'Trait filter {trait_filter!r} must name exactly '
                         f'one of {", ".join(TYPES)}')
    (type_name, value), = spec.items()
    if type_name not in _CONVERTERS or op not in OPERATORS:
        raise ValueError(f'Unsupported trait filter {trait_filter!r}')
    return TraitCondition(key, op, type_name,
                          _CONVERTERS[type_name](value))
