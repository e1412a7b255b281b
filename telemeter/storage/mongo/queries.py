"""MongoDB filters: SampleFilter, resource filters and the complex
sample query of ``query_samples`` (parsed by
:mod:`telemeter.storage.complex_query`).

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
from telemeter.storage import complex_query as storage_query

if TYPE_CHECKING:
    from telemeter.storage import SampleFilter

METADATA_PREFIX = storage_query.METADATA_PREFIX

_OPERATORS = {
    '=': None,
    '!=': '$ne',
    '<': '$lt',
    '>': '$gt',
    '<=': '$lte',
    '>=': '$gte',
    'in': '$in',
    '=~': '$regex',
}


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


def _comparison(node: storage_query.Comparison) -> dict:
    key = node.metadata_key
    field = node.field if key is None else METADATA_PREFIX + metadata_path(key)
    mongo_op = _OPERATORS[node.op]
    if mongo_op is None:
        return {field: node.value}
    return {field: {mongo_op: node.value}}


def _compile(node: storage_query.Expression) -> dict:
    if isinstance(node, storage_query.Junction):
        return {f'${node.op}': [_compile(part) for part in node.parts]}
    if isinstance(node, storage_query.Negation):
        return {'$nor': [_compile(node.part)]}
    return _comparison(node)


def complex_query(expr: dict | None) -> dict:
    """The ``meter`` collection query of a complex filter expression
    (see :mod:`telemeter.storage.complex_query`)."""
    tree = storage_query.parse_filter(expr)
    return {} if tree is None else _compile(tree)


def sort_spec(orderby: list[dict] | None) -> list[tuple[str, int]]:
    """pymongo sort of ``[{field: 'asc'|'desc'}, ...]``; default newest
    first."""
    keys = storage_query.parse_orderby(orderby)
    if not keys:
        return [('timestamp', pymongo.DESCENDING),
                ('_id', pymongo.DESCENDING)]
    return [(key.field, pymongo.DESCENDING if key.descending
             else pymongo.ASCENDING) for key in keys]
