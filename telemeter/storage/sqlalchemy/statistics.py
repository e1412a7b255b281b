"""``get_meter_statistics`` for the SQL driver: one GROUP BY query.

Samples matching the filter are grouped by unit, the requested groupby
fields and, with a period, the bucket number ``floor((timestamp - start)
/ period)`` computed by the database (PostgreSQL: double-precision
interval epochs, see :func:`_bucket_column`; MySQL timestamps are
DECIMAL epoch seconds; SQLite uses an integer-microsecond function
registered on each connection). SQLite also
gets a ``stddev_pop`` aggregate written in Python.
"""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from telemeter import utils
from telemeter.storage import models
from telemeter.storage import statistics as stats
from telemeter.storage.sqlalchemy import filters, tables

# SQLite function names registered by the engine (see engine.py).
SQLITE_EPOCH_US = 'telemeter_epoch_us'

# PostgreSQL work_mem of a statistics query (its transaction only): with
# the default 4MB, grouping 100,000 samples sorted on disk and took
# twice as long.
POSTGRESQL_WORK_MEM = '64MB'


def _aggregate_column(spec: stats.AggregateSpec) -> sa.ColumnElement:
    volume = tables.sample.c.volume
    if spec.func == 'cardinality':
        column = getattr(tables.resource.c, 'source_id'
                         if spec.param == 'source' else str(spec.param))
        return sa.func.count(sa.distinct(column))
    if spec.func == 'stddev':
        return sa.func.stddev_pop(volume)
    return getattr(sa.func, spec.func)(volume)


def _bucket_column(dialect: str, start: datetime.datetime,
                   period: float) -> sa.ColumnElement:
    """The bucket number of each sample (samples are >= start)."""
    timestamp = tables.sample.c.timestamp
    if dialect == 'postgresql':
        # date_part gives double precision, several times cheaper than
        # EXTRACT's numeric; exact enough: a microsecond is far above its
        # rounding error for any span of samples, so floor() cannot cross
        # a bucket boundary, and whole-second boundaries are exact.
        seconds = sa.func.date_part('epoch', timestamp
                                    - sa.literal(start, sa.DateTime()),
                                    type_=sa.Float())
        return sa.cast(sa.func.floor(seconds / float(period)),
                       sa.BigInteger)
    if dialect == 'mysql':
        decimal = sa.Numeric(20, 6)
        elapsed = (sa.type_coerce(timestamp, decimal)
                   - sa.literal(utils.dt_to_decimal(start), decimal))
        return sa.cast(sa.func.floor(elapsed / period), sa.BigInteger)
    # SQLite: integer microseconds, integer division.
    start_us = _epoch_us(start)
    epoch_us = getattr(sa.func, SQLITE_EPOCH_US)(timestamp,
                                                 type_=sa.BigInteger)
    return (epoch_us - start_us) // round(period * 1_000_000)


def _epoch_us(when: datetime.datetime) -> int:
    delta = when - datetime.datetime(1970, 1, 1)
    return ((delta.days * 86400 + delta.seconds) * 1_000_000
            + delta.microseconds)


def _group_columns(groupby: list[str], with_resource: bool = True
                   ) -> tuple[list[sa.ColumnElement], Any]:
    """Columns of the groupby fields and the FROM clause they need
    (the resource table only if ``with_resource`` or a field needs it)."""
    sample, meter, res = tables.sample, tables.meter, tables.resource
    joined: Any = sample.join(meter, meter.c.id == sample.c.meter_id)
    if with_resource or groupby:
        joined = joined.join(res,
                             res.c.internal_id == sample.c.resource_id)
    columns: list[sa.ColumnElement] = []
    for field in groupby:
        if field == 'resource_metadata.instance_type':
            text = tables.metadata_text
            # Inner join: resources without that text key do not count.
            joined = joined.join(text, sa.and_(
                text.c.id == res.c.internal_id,
                text.c.meta_key == 'instance_type'))
            columns.append(text.c.value)
        else:
            columns.append(getattr(res.c, field))
    return columns, joined


def _only_meter_and_time(sample_filter: Any) -> bool:
    return not (sample_filter.user or sample_filter.project
                or sample_filter.source or sample_filter.resource
                or sample_filter.message_id or sample_filter.metaquery)


def _time_span(conn: Any, joined: Any, conditions: list,
               sample_filter: Any) -> tuple[datetime.datetime | None,
                                            datetime.datetime | None]:
    """First and last matching sample timestamps."""
    sample = tables.sample
    timestamp = sample.c.timestamp
    if _only_meter_and_time(sample_filter):
        # Per meter id, min/max come straight from the (meter_id,
        # timestamp) index; through the joins the database would scan
        # every sample of the meter.
        meter = tables.meter
        bounds = filters.timestamp_conditions(
            timestamp, sample_filter.start_timestamp,
            sample_filter.start_timestamp_op, sample_filter.end_timestamp,
            sample_filter.end_timestamp_op)
        firsts, lasts = [], []
        meter_ids = conn.execute(sa.select(meter.c.id).where(
            meter.c.name == sample_filter.meter)).scalars().all()
        for meter_id in meter_ids:
            first, last = conn.execute(
                sa.select(sa.func.min(timestamp), sa.func.max(timestamp))
                .where(sample.c.meter_id == meter_id, *bounds)).one()
            if first is not None:
                firsts.append(first)
                lasts.append(last)
        return (min(firsts), max(lasts)) if firsts else (None, None)
    row = conn.execute(sa.select(sa.func.min(timestamp),
                                 sa.func.max(timestamp))
                       .select_from(joined).where(*conditions)).one()
    return row[0], row[1]


def _bucket_order(group_count: int) -> Any:
    """Sort key of result rows: bucket, then unit and group values
    (None first)."""
    def key(row: Any) -> tuple:
        return (row[-1], *((value is not None, value)
                           for value in row[:1 + group_count]))
    return key


def get_meter_statistics(engine: Engine, sample_filter: Any,
                         period: float | None = None,
                         groupby: list | None = None,
                         aggregate: list | None = None
                         ) -> list[models.Statistics]:
    """Statistics of the samples matching ``sample_filter`` (storage.md
    §3)."""
    stats.require_meter(sample_filter)
    fields = stats.check_groupby(groupby)
    specs = stats.parse_aggregates(aggregate)
    timestamp = tables.sample.c.timestamp
    # Without filters, groups or cardinalities on resource fields the
    # join with the resource table only costs time.
    needs_resource = (not _only_meter_and_time(sample_filter)
                      or any(spec.func == 'cardinality' for spec in specs))
    group_columns, joined = _group_columns(fields, needs_resource)
    conditions = filters.sample_conditions(sample_filter)
    columns = [tables.meter.c.unit.label('unit'),
               *(column.label(f'g{index}')
                 for index, column in enumerate(group_columns)),
               sa.func.min(timestamp).label('first'),
               sa.func.max(timestamp).label('last'),
               *(_aggregate_column(spec).label(f'a{index}')
                 for index, spec in enumerate(specs))]
    group_by: list[Any] = [tables.meter.c.unit, *group_columns]
    start = None
    with engine.connect() as conn:
        if engine.dialect.name == 'postgresql':
            conn.exec_driver_sql(
                f"SET LOCAL work_mem = '{POSTGRESQL_WORK_MEM}'")
            # Compiling the query (JIT) took longer than it saved here.
            conn.exec_driver_sql('SET LOCAL jit = off')
        if period:
            start = sample_filter.start_timestamp
            end = sample_filter.end_timestamp
            if start is None or end is None:
                first, last = _time_span(conn, joined, conditions,
                                         sample_filter)
                start = start or first
                end = end or last
            if start is None or end is None:
                return []
            count = stats.bucket_count(start, end, period)
            if not count:
                return []
            bucket = _bucket_column(engine.dialect.name, start,
                                    period).label('bucket')
            columns.append(bucket)
            group_by.append(bucket)
            limit = start + count * datetime.timedelta(seconds=period)
            conditions = [*conditions, timestamp >= start, timestamp < limit]
        query = (sa.select(*columns).select_from(joined)
                 .where(*conditions).group_by(*group_by))
        if not period:
            query = query.order_by(*group_by)
        rows = conn.execute(query).all()
    if period:
        # Bucket order first (storage.md), then unit and groups: sorted
        # here, so the database may hash the groups (it cannot estimate
        # how many buckets there are and would sort every sample first).
        rows = sorted(rows, key=_bucket_order(len(fields)))
    # Row layout: unit, groups..., first, last, aggregates..., [bucket].
    builder = stats.StatisticsBuilder(specs, period, bool(aggregate))
    group_count = len(fields)
    first_agg = 3 + group_count
    last_agg = first_agg + len(specs)
    buckets: dict[int, tuple] = {}
    results = []
    for row in rows:
        bounds = None
        if period and start is not None:
            index = int(row[-1])
            bounds = buckets.get(index)
            if bounds is None:
                bounds = buckets[index] = stats.bucket_bounds(start, period,
                                                              index)
        results.append(builder.build(
            unit=row[0], bucket=bounds, first=row[1 + group_count],
            last=row[2 + group_count],
            groupby=(dict(zip(fields, row[1:1 + group_count], strict=True))
                     if fields else None),
            values=row[first_agg:last_agg]))
    return results
