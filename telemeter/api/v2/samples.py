"""``/v2/samples`` and ``POST /v2/query/samples``."""

from __future__ import annotations

from telemeter import storage
from telemeter.api import complex_query, context, errors, query, render, v2


def list_samples(ctx: context.Context) -> list[dict]:
    """``GET /v2/samples``, newest first."""
    ctx.enforce('get_samples')
    queries = query.parse(ctx.params)
    limit = ctx.limit()
    sample_filter = v2.sample_filter(ctx, queries)
    return render.many(render.sample, ctx.metering.get_samples(
        sample_filter, limit=limit))


def show_sample(ctx: context.Context, sample_id: str) -> dict:
    """``GET /v2/samples/<message_id>``."""
    ctx.enforce('get_sample')
    sample_filter = storage.SampleFilter(message_id=sample_id,
                                         project=ctx.limited_project)
    found = list(ctx.metering.get_samples(sample_filter, limit=1))
    if not found:
        raise errors.NotFound('Sample', sample_id)
    return render.sample(found[0])


def query_samples(ctx: context.Context) -> list[dict]:
    """``POST /v2/query/samples``: ``{"filter": "<JSON>", "orderby":
    "<JSON>", "limit": N}``."""
    ctx.enforce('query_sample')
    body = ctx.json_body()
    if not isinstance(body, dict):
        raise errors.BadRequest('body', 'must be a JSON object with '
                                'filter, orderby and limit')
    unknown = sorted(set(body) - {'filter', 'orderby', 'limit'})
    if unknown:
        raise errors.BadRequest(unknown[0], 'unknown attribute; the body '
                                'has filter, orderby and limit')
    limit = ctx.limit(body.get('limit'))
    filter_expr = complex_query.parse_filter(body.get('filter'))
    orderby = complex_query.parse_orderby(body.get('orderby'))
    limited = ctx.limited_project
    if limited is not None:
        complex_query.check_projects(filter_expr, limited)
        restriction = {'=': {'project_id': limited}}
        filter_expr = (restriction if filter_expr is None
                       else {'and': [restriction, filter_expr]})
    return render.many(render.sample, ctx.metering.query_samples(
        filter_expr, orderby, limit=limit))


ROUTES = [
    ('/v2/samples', 'GET', list_samples),
    ('/v2/samples/{sample_id}', 'GET', show_sample),
    ('/v2/query/samples', 'POST', query_samples),
]
