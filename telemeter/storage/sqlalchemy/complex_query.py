"""The complex sample query (:mod:`telemeter.storage.complex_query`) as SQL.

The parsed tree compiles into one condition over sample ⋈ meter ⋈
resource; ``=~`` is ``~`` on PostgreSQL and ``REGEXP`` on MySQL and
SQLite. A ``resource_metadata.<flattened key>`` comparison tests the typed
metadata table chosen by the value's Python type.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from telemeter.storage import complex_query
from telemeter.storage.sqlalchemy import filters, tables

ColumnElement = sa.ColumnElement[Any]

_COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement]] = {
    '=': operator.eq,
    '!=': operator.ne,
    '<': operator.lt,
    '>': operator.gt,
    '<=': operator.le,
    '>=': operator.ge,
    'in': lambda column, values: column.in_(values),
    '=~': lambda column, pattern: column.regexp_match(pattern),
}


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
        'timestamp': sample.c.timestamp,
        'recorded_at': sample.c.recorded_at,
        'message_id': sample.c.message_id,
        'message_signature': sample.c.message_signature,
    }


_FIELDS = sample_fields()


def _comparison(node: complex_query.Comparison) -> ColumnElement:
    compare = _COMPARISONS[node.op]
    key = node.metadata_key
    if key is None:
        return compare(_FIELDS[node.field], node.value)
    table = filters.metadata_table_for_query(node.field, node.value)
    return sa.exists().where(
        table.c.id == tables.resource.c.internal_id,
        table.c.meta_key == key,
        compare(table.c.value, node.value))


def _compile(node: complex_query.Expression) -> ColumnElement:
    if isinstance(node, complex_query.Junction):
        parts = [_compile(part) for part in node.parts]
        return sa.and_(*parts) if node.op == 'and' else sa.or_(*parts)
    if isinstance(node, complex_query.Negation):
        return sa.not_(_compile(node.part))
    return _comparison(node)


def condition(expr: dict | None) -> ColumnElement | None:
    """The SQL condition of a filter expression, None for no filter."""
    tree = complex_query.parse_filter(expr)
    return None if tree is None else _compile(tree)


def order_by(orderby: list[dict] | None) -> list[ColumnElement]:
    """ORDER BY clauses of ``[{field: 'asc'|'desc'}, ...]``; default
    timestamp descending."""
    keys = complex_query.parse_orderby(orderby)
    if not keys:
        sample = tables.sample
        return [sample.c.timestamp.desc(), sample.c.id.desc()]
    return [_FIELDS[key.field].desc() if key.descending
            else _FIELDS[key.field].asc() for key in keys]
