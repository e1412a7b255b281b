"""WHERE-clause builders for sample and event queries."""

from __future__ import annotations

import datetime
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

import telemeter
from telemeter import utils
from telemeter.storage import trait_filter as trait_filter_mod
from telemeter.storage.models import Trait
from telemeter.storage.sqlalchemy import tables

if TYPE_CHECKING:
    from telemeter.storage import EventFilter, SampleFilter

ColumnElement = sa.ColumnElement[Any]

_META_TABLES: dict[type, sa.Table] = {
    bool: tables.metadata_bool,
    str: tables.metadata_text,
    type(None): tables.metadata_text,
    int: tables.metadata_int,
    float: tables.metadata_float,
}

_TRAIT_FILTER_TABLES = {
    'string': tables.trait_text,
    'integer': tables.trait_int,
    'float': tables.trait_float,
    'datetime': tables.trait_datetime,
}

_TRAIT_OPS: dict[str, Callable[[Any, Any], ColumnElement]] = {
    'eq': operator.eq,
    'lt': operator.lt,
    'le': operator.le,
    'gt': operator.gt,
    'ge': operator.ge,
    'ne': operator.ne,
}

# Trait tables with the dtype of the Trait models read from them.
TRAIT_TABLES: tuple[tuple[sa.Table, int], ...] = (
    (tables.trait_text, Trait.TEXT_TYPE),
    (tables.trait_int, Trait.INT_TYPE),
    (tables.trait_float, Trait.FLOAT_TYPE),
    (tables.trait_datetime, Trait.DATETIME_TYPE),
)

TRAIT_TABLE_BY_DTYPE: dict[int, sa.Table] = {
    Trait.NONE_TYPE: tables.trait_text,
    Trait.TEXT_TYPE: tables.trait_text,
    Trait.INT_TYPE: tables.trait_int,
    Trait.FLOAT_TYPE: tables.trait_float,
    Trait.DATETIME_TYPE: tables.trait_datetime,
}


def equal_or_null(column: sa.ColumnElement, value: str) -> ColumnElement:
    """``column == value``, where the string ``'None'`` means NULL."""
    if value == 'None':
        return column.is_(None)
    return column == value


def metadata_table_for_query(query_key: str, value: Any) -> sa.Table:
    """The typed metadata table to search for ``value``.

    bool / int / float / str or None pick their table; any other type
    raises :class:`telemeter.NotImplementedError`.
    """
    table = _META_TABLES.get(type(value))
    if table is None:
        raise telemeter.NotImplementedError(
            f'Query on {query_key} is of {type(value)} type and is not '
            f'supported')
    return table


def metaquery_conditions(metaquery: dict | None) -> list[ColumnElement]:
    """Conditions on ``resource`` for ``{'metadata.<key>': value}``.

    The flattened key is looked up in the typed metadata table chosen by
    the Python type of the value.
    """
    conditions: list[sa.ColumnElement[Any]] = []
    for query_key, value in (metaquery or {}).items():
        table = metadata_table_for_query(query_key, value)
        meta_key = query_key.removeprefix('metadata.')
        conditions.append(sa.exists().where(
            table.c.id == tables.resource.c.internal_id,
            table.c.meta_key == meta_key,
            table.c.value.is_(None) if value is None
            else table.c.value == value))
    return conditions


def resource_conditions(user: str | None = None,
                        project: str | None = None,
                        source: str | None = None,
                        resource: str | None = None,
                        metaquery: dict | None = None
                        ) -> list[ColumnElement]:
    """Conditions on the ``resource`` table."""
    res = tables.resource
    conditions: list[ColumnElement] = []
    if user:
        conditions.append(equal_or_null(res.c.user_id, user))
    if project:
        conditions.append(equal_or_null(res.c.project_id, project))
    if source:
        conditions.append(res.c.source_id == source)
    if resource:
        conditions.append(res.c.resource_id == resource)
    conditions.extend(metaquery_conditions(metaquery))
    return conditions


def timestamp_conditions(column: sa.ColumnElement,
                         start: datetime.datetime | None,
                         start_op: str | None,
                         end: datetime.datetime | None,
                         end_op: str | None) -> list[ColumnElement]:
    """``start`` is inclusive unless ``gt``, ``end`` exclusive unless ``le``.
    """
    conditions: list[ColumnElement] = []
    start = utils.sanitize_timestamp(start)
    end = utils.sanitize_timestamp(end)
    if start:
        conditions.append(column > start if start_op == 'gt'
                          else column >= start)
    if end:
        conditions.append(column <= end if end_op == 'le'
                          else column < end)
    return conditions


def sample_conditions(sample_filter: SampleFilter) -> list[ColumnElement]:
    """Conditions for a ``SampleFilter`` over sample ⋈ meter ⋈ resource."""
    sample = tables.sample
    conditions = resource_conditions(
        user=sample_filter.user, project=sample_filter.project,
        source=sample_filter.source, resource=sample_filter.resource,
        metaquery=sample_filter.metaquery)
    if sample_filter.meter:
        conditions.append(tables.meter.c.name == sample_filter.meter)
    if sample_filter.message_id:
        conditions.append(sample.c.message_id == sample_filter.message_id)
    conditions.extend(timestamp_conditions(
        sample.c.timestamp,
        sample_filter.start_timestamp, sample_filter.start_timestamp_op,
        sample_filter.end_timestamp, sample_filter.end_timestamp_op))
    return conditions


def _trait_filter_condition(trait_filter: dict) -> ColumnElement:
    condition = trait_filter_mod.parse(trait_filter)
    table = _TRAIT_FILTER_TABLES[condition.type_name]
    compare = _TRAIT_OPS[condition.op]
    return sa.exists().where(table.c.event_id == tables.event.c.id,
                             table.c.key == condition.key,
                             compare(table.c.value, condition.value))


def event_conditions(event_filter: EventFilter) -> list[ColumnElement]:
    """Conditions for an ``EventFilter`` over event ⋈ event_type."""
    event = tables.event
    conditions: list[ColumnElement] = []
    if event_filter.event_type:
        conditions.append(tables.event_type.c.desc
                          == event_filter.event_type)
    if event_filter.message_id:
        conditions.append(event.c.message_id == event_filter.message_id)
    start = utils.sanitize_timestamp(event_filter.start_timestamp)
    end = utils.sanitize_timestamp(event_filter.end_timestamp)
    if start:
        conditions.append(event.c.generated >= start)
    if end:
        conditions.append(event.c.generated <= end)
    for trait_filter in event_filter.traits_filter or []:
        conditions.append(_trait_filter_condition(trait_filter))
    if event_filter.admin_proj:
        text = tables.trait_text
        project_trait = sa.and_(text.c.event_id == event.c.id,
                                text.c.key == 'project_id')
        conditions.append(sa.or_(
            ~sa.exists().where(project_trait),
            sa.exists().where(project_trait,
                              text.c.value == event_filter.admin_proj)))
    return conditions
