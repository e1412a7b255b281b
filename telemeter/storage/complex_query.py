"""The complex sample query of ``query_samples``, parsed for every backend.

``Connection.query_samples(filter_expr, orderby, limit)`` takes

* ``filter_expr``: ``{"and": [e, ...]}``, ``{"or": [e, ...]}``, ``{"not":
  e}`` or ``{op: {field: value}}`` with op one of ``=``, ``!=``, ``<``,
  ``>``, ``<=``, ``=<``, ``>=``, ``=>``, ``in`` (a list of values) and
  ``=~`` (a regular expression), in any case; a field is a sample's
  (``counter_name``, ``resource_id``, ``timestamp``, ...; ``source_id``
  is ``source``) or ``resource_metadata.<flattened key>``;
* ``orderby``: ``[{field: "asc"|"desc"}, ...]`` (no metadata fields).

:func:`parse_filter` and :func:`parse_orderby` check them and give typed
trees (:class:`Comparison`, :class:`Junction`, :class:`Negation`,
:class:`Ordering`) with canonical names (``=<`` is ``<=``, ``source_id``
is ``source``) and timestamps as naive UTC datetimes; each backend only
compiles a tree (``storage/sqlalchemy/complex_query.py`` into SQL,
``storage/mongo/queries.py`` into a MongoDB query). A malformed
expression raises ``ValueError`` naming what is wrong; ``in`` on a
metadata field raises :class:`telemeter.NotImplementedError`, as the
spec says.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import telemeter
from telemeter import utils

#: Comparison operators, with the spellings the language also accepts.
OPERATORS = ('=', '!=', '<', '>', '<=', '>=', 'in', '=~')
_SPELLINGS = {'=<': '<=', '=>': '>='}

#: The sample fields a filter or an order may name.
FIELDS = frozenset((
    'counter_name', 'counter_type', 'counter_unit', 'counter_volume',
    'resource_id', 'user_id', 'project_id', 'source', 'timestamp',
    'recorded_at', 'message_id', 'message_signature'))
ALIASES = {'source_id': 'source'}
TIMESTAMP_FIELDS = frozenset(('timestamp', 'recorded_at'))
METADATA_PREFIX = 'resource_metadata.'


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``field op value``; ``in`` has a list of values."""

    op: str
    field: str
    value: Any

    @property
    def metadata_key(self) -> str | None:
        """The flattened metadata key, or None for a sample field."""
        if self.field.startswith(METADATA_PREFIX):
            return self.field.removeprefix(METADATA_PREFIX)
        return None


@dataclasses.dataclass(frozen=True)
class Junction:
    """All (``and``) or any (``or``) of at least one expression."""

    op: Literal['and', 'or']
    parts: tuple[Expression, ...]


@dataclasses.dataclass(frozen=True)
class Negation:
    """``not`` an expression."""

    part: Expression


Expression = Comparison | Junction | Negation


@dataclasses.dataclass(frozen=True)
class Ordering:
    """One key of the order: a sample field, ascending or descending."""

    field: str
    descending: bool


def _field_names() -> str:
    return ', '.join(sorted(FIELDS | set(ALIASES)))


def _comparison(op: str, operand: Any) -> Comparison:
    op = _SPELLINGS.get(op, op)
    if op not in OPERATORS:
        raise ValueError(f'Unknown operator {op!r} in a complex query: use '
                         f'one of {", ".join(OPERATORS)}, =<, =>, and, or, '
                         f'not')
    if not isinstance(operand, dict) or len(operand) != 1:
        raise ValueError(f'Operator {op!r} needs exactly one '
                         f'{{field: value}} pair, got {operand!r}')
    (field, value), = operand.items()
    if not isinstance(field, str):
        raise ValueError(f'A field name is text, got {field!r}')
    if field.startswith(METADATA_PREFIX):
        if op == 'in':
            raise telemeter.NotImplementedError(
                'Metadata query with in operator is not implemented')
        return Comparison(op, field, value)
    field = ALIASES.get(field, field)
    if field not in FIELDS:
        raise ValueError(f'Unknown field {field!r} in a complex query: use '
                         f'one of {_field_names()} or '
                         f'{METADATA_PREFIX}<key>')
    if op == 'in':
        if not isinstance(value, (list, tuple)):
            raise ValueError(f'Operator in needs a list of values for '
                             f'{field!r}, got {value!r}')
        value = list(value)
    if field in TIMESTAMP_FIELDS:
        value = ([utils.sanitize_timestamp(item) for item in value]
                 if op == 'in' else utils.sanitize_timestamp(value))
    return Comparison(op, field, value)


def parse_filter(expr: Any) -> Expression | None:
    """The tree of a filter expression; None for no filter (None, {})."""
    if not expr:
        return None
    return _expression(expr)


def _expression(expr: Any) -> Expression:
    if not isinstance(expr, dict) or len(expr) != 1:
        raise ValueError(f'A complex query expression is a one-key dict, '
                         f'got {expr!r}')
    (op, operand), = expr.items()
    op = str(op).lower()
    if op in ('and', 'or'):
        if not isinstance(operand, list) or not operand:
            raise ValueError(f'{op!r} needs a non-empty list of '
                             f'expressions, got {operand!r}')
        parts = tuple(_expression(item) for item in operand)
        return Junction('and', parts) if op == 'and' else Junction('or', parts)
    if op == 'not':
        return Negation(_expression(operand))
    return _comparison(op, operand)


def parse_orderby(orderby: Any) -> list[Ordering]:
    """The order keys of ``[{field: 'asc'|'desc'}, ...]``; [] for none
    (each backend then orders newest first)."""
    if not orderby:
        return []
    if not isinstance(orderby, list):
        raise ValueError(f'orderby is a list of {{field: "asc"|"desc"}}, '
                         f'got {orderby!r}')
    keys = []
    for item in orderby:
        if not isinstance(item, dict):
            raise ValueError(f'An orderby item is a {{field: direction}} '
                             f'dict, got {item!r}')
        for field, direction in item.items():
            name = ALIASES.get(field, field)
            if name not in FIELDS:
                raise ValueError(f'Unknown field {field!r} in orderby: use '
                                 f'one of {_field_names()}')
            direction = str(direction).lower()
            if direction not in ('asc', 'desc'):
                raise ValueError(f'Order of {field!r} must be asc or desc, '
                                 f'got {direction!r}')
            keys.append(Ordering(name, direction == 'desc'))
    return keys
