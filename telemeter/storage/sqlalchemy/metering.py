"""Sample, resource and meter queries of the SQL driver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from telemeter.storage import models
from telemeter.storage.sqlalchemy import complex_query, filters, tables

if TYPE_CHECKING:
    from telemeter.storage import MeterFilter, ResourceFilter

_IN_CHUNK = 500


def json_loads(text: str | None) -> Any:
    """Stored JSON text → value (None stays None)."""
    return None if text is None else json.loads(text)


def _chunks(items: list, size: int = _IN_CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _read(engine: Engine, query: sa.Select) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(query))


def _sample_query(conditions: list, order_by: list) -> sa.Select:
    sample, meter, resource = tables.sample, tables.meter, tables.resource
    return (sa.select(
        resource.c.source_id, meter.c.name, meter.c.type, meter.c.unit,
        sample.c.volume, resource.c.user_id, resource.c.project_id,
        resource.c.resource_id, sample.c.timestamp,
        resource.c.resource_metadata, sample.c.message_id,
        sample.c.message_signature, sample.c.recorded_at)
        .select_from(sample
                     .join(meter, meter.c.id == sample.c.meter_id)
                     .join(resource, resource.c.internal_id
                           == sample.c.resource_id))
        .where(*conditions)
        .order_by(*order_by))


def _to_samples(rows: list[sa.Row]) -> list[models.Sample]:
    return [models.Sample(
        source=row.source_id, counter_name=row.name,
        counter_type=row.type, counter_unit=row.unit,
        counter_volume=(None if row.volume is None else float(row.volume)),
        user_id=row.user_id, project_id=row.project_id,
        resource_id=row.resource_id, timestamp=row.timestamp,
        resource_metadata=json_loads(row.resource_metadata),
        message_id=row.message_id,
        message_signature=row.message_signature,
        recorded_at=row.recorded_at) for row in rows]


def get_samples(engine: Engine, sample_filter: Any,
                limit: int | None = None) -> list[models.Sample]:
    """Samples matching ``sample_filter``, newest first."""
    if limit == 0:
        return []
    sample = tables.sample
    query = _sample_query(filters.sample_conditions(sample_filter),
                          [sample.c.timestamp.desc(), sample.c.id.desc()])
    if limit:
        query = query.limit(limit)
    return _to_samples(_read(engine, query))


def query_samples(engine: Engine, filter_expr: dict | None = None,
                  orderby: list | None = None,
                  limit: int | None = None) -> list[models.Sample]:
    """Samples matching a complex filter expression (see
    :mod:`complex_query`), ordered by ``orderby`` (default newest
    first)."""
    if limit == 0:
        return []
    where = complex_query.condition(filter_expr)
    conditions = [] if where is None else [where]
    query = _sample_query(conditions, complex_query.order_by(orderby))
    if limit:
        query = query.limit(limit)
    return _to_samples(_read(engine, query))


def get_resources(engine: Engine, wanted: ResourceFilter
                  ) -> list[models.Resource]:
    """One Resource per resource_id with matching samples.

    One GROUP BY over the matching samples (no join: resource conditions
    become a sub-select of internal ids) gives each resource row's
    first/last timestamp; per resource_id the row with the newest sample
    wins (a tie on that timestamp goes to the row of the latest inserted
    sample). Its user, project, source and metadata are reported.
    """
    if wanted.limit == 0:
        return []
    sample, res = tables.sample, tables.resource
    conditions = filters.timestamp_conditions(
        sample.c.timestamp, wanted.start_timestamp,
        wanted.start_timestamp_op, wanted.end_timestamp,
        wanted.end_timestamp_op)
    resource_conditions = filters.resource_conditions(
        user=wanted.user, project=wanted.project, source=wanted.source,
        resource=wanted.resource, metaquery=wanted.metaquery)
    if resource_conditions:
        conditions.append(sample.c.resource_id.in_(
            sa.select(res.c.internal_id).where(*resource_conditions)))
    spans = (sa.select(sample.c.resource_id.label('internal_id'),
                       sa.func.min(sample.c.timestamp).label('first'),
                       sa.func.max(sample.c.timestamp).label('last'))
             .where(*conditions)
             .group_by(sample.c.resource_id))
    with engine.connect() as conn:
        rows = conn.execute(spans).all()
        names = _resource_names(conn, [row.internal_id for row in rows])
        by_resource: dict[str, list[sa.Row]] = {}
        for row in rows:
            by_resource.setdefault(names[row.internal_id], []).append(row)
        resource_ids = sorted(by_resource)
        if wanted.limit:
            resource_ids = resource_ids[:wanted.limit]
        winners = {}
        for resource_id in resource_ids:
            group = by_resource[resource_id]
            winners[resource_id] = (_newest_row(conn, group)
                                    if len(group) > 1 else group[0])
        details = _resource_rows(conn, [row.internal_id
                                        for row in winners.values()])
    result = []
    for resource_id in resource_ids:
        group = by_resource[resource_id]
        detail = details[winners[resource_id].internal_id]
        result.append(models.Resource(
            resource_id=resource_id, project_id=detail.project_id,
            first_sample_timestamp=min(row.first for row in group),
            last_sample_timestamp=max(row.last for row in group),
            source=detail.source_id, user_id=detail.user_id,
            metadata=json_loads(detail.resource_metadata)))
    return result


def _resource_names(conn: sa.Connection,
                    internal_ids: list[int]) -> dict[int, str]:
    """internal_id → resource_id."""
    res = tables.resource
    names: dict[int, str] = {}
    for chunk in _chunks(sorted(internal_ids)):
        names.update(conn.execute(
            sa.select(res.c.internal_id, res.c.resource_id).where(
                res.c.internal_id.in_(chunk))).all())
    return names


def _newest_row(conn: sa.Connection, rows: list[sa.Row]) -> sa.Row:
    """The resource row whose newest sample is the latest (ties: the
    row of the latest inserted sample at that timestamp)."""
    last = max(row.last for row in rows)
    tied = [row for row in rows if row.last == last]
    if len(tied) == 1:
        return tied[0]
    sample = tables.sample
    newest = conn.execute(
        sa.select(sample.c.resource_id)
        .where(sample.c.resource_id.in_([row.internal_id for row in tied]),
               sample.c.timestamp == last)
        .order_by(sample.c.id.desc()).limit(1)).scalar_one()
    return next(row for row in tied if row.internal_id == newest)


def _resource_rows(conn: sa.Connection,
                   internal_ids: list[int]) -> dict[int, sa.Row]:
    res = tables.resource
    found: dict[Any, Any] = {}
    for chunk in _chunks(sorted(internal_ids)):
        query = sa.select(res.c.internal_id, res.c.user_id,
                          res.c.project_id, res.c.source_id,
                          res.c.resource_metadata).where(
            res.c.internal_id.in_(chunk))
        found.update((row.internal_id, row) for row in conn.execute(query))
    return found


def get_meters(engine: Engine, wanted: MeterFilter
               ) -> list[models.Meter]:
    """One Meter per (meter, resource_id), from its latest sample.

    With ``unique`` one Meter per meter, resource/project/source/user set
    to None.
    """
    if wanted.limit == 0:
        return []
    sample, meter, res = tables.sample, tables.meter, tables.resource
    if wanted.unique and not (wanted.user or wanted.project
                              or wanted.resource or wanted.source
                              or wanted.metaquery):
        # Every meter with a sample: one index probe per meter row.
        query = (sa.select(meter.c.name, meter.c.type, meter.c.unit)
                 .where(sa.exists().where(sample.c.meter_id == meter.c.id))
                 .distinct()
                 .order_by(meter.c.name, meter.c.type, meter.c.unit))
        if wanted.limit:
            query = query.limit(wanted.limit)
        return [models.Meter(name=row.name, type=row.type, unit=row.unit,
                             resource_id=None, project_id=None,
                             source=None, user_id=None)
                for row in _read(engine, query)]
    # Latest sample per (meter, resource row), then per (meter,
    # resource_id). A resource filter narrows the first step already.
    latest_query = sa.select(sample.c.meter_id,
                             sample.c.resource_id.label('internal_id'),
                             sa.func.max(sample.c.id).label('sample_id'))
    if wanted.resource:
        latest_query = latest_query.where(sample.c.resource_id.in_(
            sa.select(res.c.internal_id).where(
                res.c.resource_id == wanted.resource)))
    latest = latest_query.group_by(sample.c.meter_id,
                                   sample.c.resource_id).subquery()
    ranked = (sa.select(
        latest.c.meter_id, latest.c.internal_id,
        sa.func.row_number().over(
            partition_by=(latest.c.meter_id, res.c.resource_id),
            order_by=latest.c.sample_id.desc()).label('rank'))
        .select_from(latest.join(
            res, res.c.internal_id == latest.c.internal_id))
        .subquery())
    conditions = filters.resource_conditions(
        user=wanted.user, project=wanted.project, source=wanted.source,
        resource=wanted.resource, metaquery=wanted.metaquery)
    joined = (ranked
              .join(meter, meter.c.id == ranked.c.meter_id)
              .join(res, res.c.internal_id == ranked.c.internal_id))
    if wanted.unique:
        query = (sa.select(meter.c.name, meter.c.type, meter.c.unit)
                 .select_from(joined)
                 .where(ranked.c.rank == 1, *conditions)
                 .distinct()
                 .order_by(meter.c.name, meter.c.type, meter.c.unit))
        if wanted.limit:
            query = query.limit(wanted.limit)
        return [models.Meter(name=row.name, type=row.type, unit=row.unit,
                             resource_id=None, project_id=None,
                             source=None, user_id=None)
                for row in _read(engine, query)]
    per_resource = (sa.select(meter.c.name, meter.c.type, meter.c.unit,
                              res.c.resource_id, res.c.project_id,
                              res.c.source_id, res.c.user_id)
                    .select_from(joined)
                    .where(ranked.c.rank == 1, *conditions)
                    .order_by(meter.c.name, res.c.resource_id))
    if wanted.limit:
        per_resource = per_resource.limit(wanted.limit)
    return [models.Meter(name=row.name, type=row.type, unit=row.unit,
                         resource_id=row.resource_id,
                         project_id=row.project_id, source=row.source_id,
                         user_id=row.user_id)
            for row in _read(engine, per_resource)]
