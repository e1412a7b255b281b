"""The complex sample query language (``query_samples``) as SQL.

An expression is ``{"and": [e, ...]}``, ``{"or": [e, ...]}``, ``{"not":
e}`` or ``{op: {field: value}}`` with op one of ``=``, ``!=``, ``<``,
``>``, ``<=``, ``=<``, ``>=``, ``=>``, ``in`` (a list of values) and
``=~`` (regular expression: ``~`` on PostgreSQL, ``REGEXP`` on MySQL and
SQLite). Operators arrive lower-cased. ``resource_metadata.<flattened
key>`` fields test the typed metadata table chosen by the value's Python
type (``in`` is not supported there).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

import telemeter
from telemeter import utils
from telemeter.storage.sqlalchemy import filters, tables

ColumnElement = sa.ColumnElement[Any]

_COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement]] = {
    '=': operator.eq,
    '!=': operator.ne,
    '<': operator.lt,
    '>': operator.gt,
    '<=': operator.le,
    '=<': operator.le,
    '>=': operator.ge,
    '=>': operator.ge,
    'in': lambda column, values: column.in_(values),
    '=~': lambda column, pattern: column.regexp_match(pattern),
}

_TIMESTAMP_FIELDS = frozenset(('timestamp', 'recorded_at'))
METADATA_PREFIX = 'resource_metadata.'


def sample_fields() -> dict[str, sa.ColumnElement]:
    """Query field name → column of sample ⋈ meter ⋈ resource."""
    sample, meter, resource = tables.sample, tables.meter, tables.resource
    return {
        'counter_name': meter.c.name,
        'counter_type': meter.c.type,
        'counter_unit': meter.c.unit,
        'counter_volume': sample.c.volume,
        'resource_id': resource.c.resource_id,
        'user_id': resource.c.user_id,
        'project_id': resource.c.project_id,
        'source': resource.c.source_id,
        'source_id': resource.c.source_id,
        'timestamp': sample.c.timestamp,
        'recorded_at': sample.c.recorded_at,
        'message_id': sample.c.message_id,
        'message_signature': sample.c.message_signature,
    }


_FIELDS = sample_fields()


def _field_value(field: str, value: Any) -> Any:
    if field in _TIMESTAMP_FIELDS:
        if isinstance(value, list):
            return [utils.sanitize_timestamp(item) for item in value]
        return utils.sanitize_timestamp(value)
    return value


def _metadata_condition(op: str, key: str, value: Any) -> ColumnElement:
    if op == 'in':
        raise telemeter.NotImplementedError(
            'Metadata query with in operator is not implemented')
    table = filters.metadata_table_for_query(key, value)
    compare = _COMPARISONS[op]
    return sa.exists().where(
        table.c.id == tables.resource.c.internal_id,
        table.c.meta_key == key.removeprefix(METADATA_PREFIX),
        compare(table.c.value, value))


def _simple_condition(op: str, operand: Any) -> ColumnElement:
    if op not in _COMPARISONS:
        raise ValueError(f'Unknown operator {op!r} in a complex query: use '
                         f'one of {", ".join(sorted(_COMPARISONS))}, and, '
                         f'or, not')
    if not isinstance(operand, dict) or len(operand) != 1:
        raise ValueError(f'Operator {op!r} needs exactly one '
                         f'{{field: value}} pair, got {operand!r}')
    (field, value), = operand.items()
    if field.startswith(METADATA_PREFIX):
        return _metadata_condition(op, field, value)
    column = _FIELDS.get(field)
    if column is None:
        raise ValueError(f'Unknown field {field!r} in a complex query: use '
                         f'one of {", ".join(sorted(_FIELDS))} or '
                         f'{METADATA_PREFIX}<key>')
    if op == 'in' and not isinstance(value, (list, tuple)):
        raise ValueError(f'Operator in needs a list of values for '
                         f'{field!r}, got {value!r}')
    return _COMPARISONS[op](column, _field_value(field, value))


def condition(expr: dict) -> ColumnElement:
    """The SQL condition of one filter expression."""
    if not isinstance(expr, dict) or len(expr) != 1:
        raise ValueError(f'A complex query expression is a one-key dict, '
                         f'got {expr!r}')
    (op, operand), = expr.items()
    op = op.lower()
    if op in ('and', 'or'):
        if not isinstance(operand, list) or not operand:
            raise ValueError(f'{op!r} needs a non-empty list of '
                             f'expressions, got {operand!r}')
        parts = [condition(item) for item in operand]
        return sa.and_(*parts) if op == 'and' else sa.or_(*parts)
    if op == 'not':
        return sa.not_(condition(operand))
    return _simple_condition(op, operand)


def order_by(orderby: list[dict] | None) -> list[ColumnElement]:
    """ORDER BY clauses of ``[{field: 'asc'|'desc'}, ...]``; default
    timestamp descending."""
    sample = tables.sample
    if not orderby:
        return [sample.c.timestamp.desc(), sample.c.id.desc()]
    clauses: list[sa.ColumnElement[Any]] = []
    for item in orderby:
        for field, direction in item.items():
            column = _FIELDS.get(field)
            if column is None:
                raise ValueError(f'Unknown field {field!r} in orderby: use '
                                 f'one of {", ".join(sorted(_FIELDS))}')
            direction = str(direction).lower()
            if direction not in ('asc', 'desc'):
                raise ValueError(f'Order of {field!r} must be asc or desc, '
                                 f'got {direction!r}')
            clauses.append(column.asc() if direction == 'asc'
                           else column.desc())
    return clauses
