"""``/v2/meters``: meters, a meter's samples and its statistics."""

from __future__ import annotations

from typing import Any

from oslo_utils import strutils

from telemeter import storage
from telemeter.api import context, errors, query, render, v2

GROUPBY_FIELDS = ('user_id', 'resource_id', 'project_id', 'source',
                  'resource_metadata.instance_type')
AGGREGATE_FUNCS = ('max', 'min', 'sum', 'avg', 'count', 'stddev',
                   'cardinality')


def list_meters(ctx: context.Context) -> list[dict]:
    """``GET /v2/meters`` (``unique``: one line per meter)."""
    ctx.enforce('get_meters')
    queries = query.parse(ctx.params)
    limit = ctx.limit()
    unique_text = ctx.param('unique') or ''
    try:
        unique = strutils.bool_from_string(unique_text, strict=True) \
            if unique_text else False
    except ValueError:
        raise errors.BadRequest('unique', f'{unique_text!r} is not a '
                                'boolean') from None
    kwargs = v2.scoped_kwargs(ctx, queries, query.METER_KEYS,
                              allow_timestamps=False)
    return render.many(render.meter, ctx.metering.get_meters(
        limit=limit, unique=unique, **kwargs))


def meter_samples(ctx: context.Context, meter_name: str) -> list[dict]:
    """``GET /v2/meters/<name>``: its samples, newest first."""
    ctx.enforce('get_samples')
    queries = query.parse(ctx.params)
    limit = ctx.limit()
    sample_filter = v2.sample_filter(ctx, queries, meter=meter_name)
    return render.many(render.old_sample, ctx.metering.get_samples(
        sample_filter, limit=limit))


def _aggregates(ctx: context.Context) -> list[storage.Aggregate]:
    """``aggregate.func`` / ``aggregate.param`` pairs, in request order
    (a param belongs to the func before it)."""
    pairs: list[list[Any]] = []
    for name, value in ctx.params.items():
        if name == 'aggregate.func':
            if value not in AGGREGATE_FUNCS:
                raise errors.BadRequest(
                    'aggregate.func', f'Invalid aggregation function: '
                    f'{value!r}; use one of {", ".join(AGGREGATE_FUNCS)}')
            pairs.append([value, None])
        elif name == 'aggregate.param':
            if not pairs or pairs[-1][1] is not None:
                raise errors.BadRequest(
                    'aggregate.param', 'each aggregate.param must follow '
                    'its aggregate.func')
            pairs[-1][1] = value
    unique: list[storage.Aggregate] = []
    for func, param in pairs:
        item = storage.Aggregate(func, param or None)
        if item not in unique:
            unique.append(item)
    return unique


def statistics(ctx: context.Context, meter_name: str) -> list[dict]:
    """``GET /v2/meters/<name>/statistics``."""
    ctx.enforce('compute_statistics')
    queries = query.parse(ctx.params)
    period = ctx.integer('period')
    if period is not None and period < 0:
        raise errors.BadRequest('period', 'Period must be positive.')
    groupby = ctx.params.getall('groupby')
    for field in groupby:
        if field not in GROUPBY_FIELDS:
            raise errors.BadRequest(
                'groupby', f'Invalid groupby field {field!r}; use one of '
                f'{", ".join(GROUPBY_FIELDS)}')
    aggregate = _aggregates(ctx)
    sample_filter = v2.sample_filter(ctx, queries, meter=meter_name)
    maximum = ctx.conf.api.max_api_return_limit
    results = []
    try:
        computed = ctx.metering.get_meter_statistics(
            sample_filter, period or None, list(dict.fromkeys(groupby)),
            aggregate)
        for stat in computed:
            if len(results) == maximum:
                raise errors.BadRequest(
                    'period', f'more than {maximum} statistics ([api] '
                    'max_api_return_limit): ask for a longer period, '
                    'fewer groups or a shorter time range')
            results.append(render.statistics(
                stat, sample_filter.start_timestamp,
                sample_filter.end_timestamp))
    except OverflowError as err:
        raise errors.BadRequest('period', f'Invalid period {period}: '
                                f'{err}') from None
    except storage.StorageBadAggregate as err:
        raise errors.BadRequest('aggregate.param', str(err)) from None
    return results


ROUTES = [
    ('/v2/meters', 'GET', list_meters),
    ('/v2/meters/{meter_name}', 'GET', meter_samples),
    ('/v2/meters/{meter_name}/statistics', 'GET', statistics),
]
