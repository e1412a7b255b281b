"""MongoDB filters: SampleFilter, resource filters and the complex
sample query language of ``query_samples``.

Sample documents carry the metering dict's field names (``counter_name``,
``resource_id``, ``user_id``, ``source``, ``timestamp``, ...), so complex
query fields map to themselves; ``resource_metadata.<key>`` is a path into
the nested metadata document.
"""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Any

import pymongo

import telemeter
from telemeter import utils

if TYPE_CHECKING:
    from telemeter.storage import SampleFilter

METADATA_PREFIX = 'resource_metadata.'

_OPERATORS = {
    '=': None,
    '!=': '$ne',
    '<': '$lt',
    '>': '$gt',
    '<=': '$lte',
    '=<': '$lte',
    '>=': '$gte',
    '=>': '$gte',
    'in': '$in',
    '=~': '$regex',
}

FIELDS = frozenset((
    'counter_name', 'counter_type', 'counter_unit', 'counter_volume',
    'resource_id', 'user_id', 'project_id', 'source', 'timestamp',
    'recorded_at', 'message_id', 'message_signature'))
_ALIASES = {'source_id': 'source'}
_TIMESTAMP_FIELDS = frozenset(('timestamp', 'recorded_at'))


def equal_or_null(value: str) -> Any:
    """The string ``'None'`` matches a null (or missing) field."""
    return None if value == 'None' else value


def timestamp_range(start: datetime.datetime | None, start_op: str | None,
                    end: datetime.datetime | None,
                    end_op: str | None) -> dict:
    """``{'$gte'|'$gt': start, '$lt'|'$lte': end}`` (empty if neither)."""
    result = {}
    start = utils.sanitize_timestamp(start)
    end = utils.sanitize_timestamp(end)
    if start:
        result['$gt' if start_op == 'gt' else '$gte'] = start
    if end:
        result['$lte' if end_op == 'le' else '$lt'] = end
    return result


_LIST_INDEX = re.compile(r'\[(\d+)\]')


def metadata_path(key: str) -> str:
    """A flattened metadata key as a document path (``l[0]`` → ``l.0``)."""
    return _LIST_INDEX.sub(r'.\1', key)


def metaquery(query: dict | None, prefix: str) -> dict:
    """``{'metadata.<key>': value}`` → ``{prefix + key: value}``.

    Values must be bool, int, float, str or None (as for SQL); None
    matches an explicit null only, not a missing key.
    """
    result: dict[str, Any] = {}
    for key, value in (query or {}).items():
        if value is not None and not isinstance(value,
                                                (bool, int, float, str)):
            raise telemeter.NotImplementedError(
                f'Query on {key} is of {type(value)} type and is not '
                f'supported')
        path = prefix + metadata_path(key.removeprefix('metadata.'))
        result[path] = ({'$exists': True, '$eq': None} if value is None
                        else value)
    return result


def sample_query(sample_filter: SampleFilter) -> dict:
    """The ``meter`` collection query of a SampleFilter."""
    query: dict[str, Any] = {}
    if sample_filter.user:
        query['user_id'] = equal_or_null(sample_filter.user)
    if sample_filter.project:
        query['project_id'] = equal_or_null(sample_filter.project)
    if sample_filter.meter:
        query['counter_name'] = sample_filter.meter
    if sample_filter.resource:
        query['resource_id'] = sample_filter.resource
    if sample_filter.source:
        query['source'] = sample_filter.source
    if sample_filter.message_id:
        query['message_id'] = sample_filter.message_id
    span = timestamp_range(sample_filter.start_timestamp,
                           sample_filter.start_timestamp_op,
                           sample_filter.end_timestamp,
                           sample_filter.end_timestamp_op)
    if span:
        query['timestamp'] = span
    query.update(metaquery(sample_filter.metaquery, METADATA_PREFIX))
    return query


def _value(field: str, value: Any) -> Any:
    if field in _TIMESTAMP_FIELDS:
        if isinstance(value, list):
            return [utils.sanitize_timestamp(item) for item in value]
        return utils.sanitize_timestamp(value)
    return value


def _simple(op: str, operand: Any) -> dict:
    if op not in _OPERATORS:
        raise ValueError(f'Unknown operator {op!r} in a complex query: use '
                         f'one of {", ".join(sorted(_OPERATORS))}, and, '
                         f'or, not')
    if not isinstance(operand, dict) or len(operand) != 1:
        raise ValueError(f'Operator {op!r} needs exactly one '
                         f'{{field: value}} pair, got {operand!r}')
    (field, value), = operand.items()
    if field.startswith(METADATA_PREFIX):
        if op == 'in':
            raise telemeter.NotImplementedError(
                'Metadata query with in operator is not implemented')
        field = metadata_path(field)
    else:
        field = _ALIASES.get(field, field)
        if field not in FIELDS:
            raise ValueError(f'Unknown field {field!r} in a complex query: '
                             f'use one of {", ".join(sorted(FIELDS))} or '
                             f'{METADATA_PREFIX}<key>')
        value = _value(field, value)
    if op == 'in' and not isinstance(value, (list, tuple)):
        raise ValueError(f'Operator in needs a list of values for '
                         f'{field!r}, got {value!r}')
    mongo_op = _OPERATORS[op]
    if mongo_op is None:
        return {field: value}
    if mongo_op == '$in':
        value = list(value)
    return {field: {mongo_op: value}}


def complex_query(expr: dict | None) -> dict:
    """The ``meter`` collection query of a complex filter expression."""
    if not expr:
        return {}
    if not isinstance(expr, dict) or len(expr) != 1:
        raise ValueError(f'A complex query expression is a one-key dict, '
                         f'got {expr!r}')
    (op, operand), = expr.items()
    op = op.lower()
    if op in ('and', 'or'):
        if not isinstance(operand, list) or not operand:
            raise ValueError(f'{op!r} needs a non-empty list of '
                             f'expressions, got {operand!r}')
        return {f'${op}': [complex_query(item) for item in operand]}
    if op == 'not':
        return {'$nor': [complex_query(operand)]}
    return _simple(op, operand)


def sort_spec(orderby: list[dict] | None) -> list[tuple[str, int]]:
    """pymongo sort of ``[{field: 'asc'|'desc'}, ...]``; default newest
    first."""
    if not orderby:
        return [('timestamp', pymongo.DESCENDING),
                ('_id', pymongo.DESCENDING)]
    result = []
    for item in orderby:
        for field, direction in item.items():
            name = _ALIASES.get(field, field)
            if name not in FIELDS:
                raise ValueError(f'Unknown field {field!r} in orderby: use '
                                 f'one of {", ".join(sorted(FIELDS))}')
            direction = str(direction).lower()
            if direction not in ('asc', 'desc'):
                raise ValueError(f'Order of {field!r} must be asc or desc, '
                                 f'got {direction!r}')
            result.append((name, pymongo.ASCENDING if direction == 'asc'
                           else pymongo.DESCENDING))
    return result
