"""``/v2/resources``."""

from __future__ import annotations

import urllib.parse

from telemeter.api import context, errors, query, render, v2


def _links(ctx: context.Context, resource_id: str,
           meter_links: bool) -> list[dict]:
    quoted = urllib.parse.quote(resource_id, safe='')
    links = [{'href': ctx.url(f'/v2/resources/{quoted}'), 'rel': 'self'}]
    if meter_links:
        for meter in ctx.metering.get_meters(resource=resource_id,
                                             project=ctx.limited_project):
            name = urllib.parse.quote(meter.name, safe='')
            links.append({
                'href': ctx.url(f'/v2/meters/{name}?q.field=resource_id'
                                f'&q.value={quoted}'),
                'rel': meter.name})
    return links


def list_resources(ctx: context.Context) -> list[dict]:
    """``GET /v2/resources`` (``meter_links=0``: only the self link)."""
    ctx.enforce('get_resources')
    queries = query.parse(ctx.params)
    limit = ctx.limit()
    meter_links = ctx.integer('meter_links')
    kwargs = v2.scoped_kwargs(ctx, queries, query.RESOURCE_KEYS)
    return [render.resource(model, _links(ctx, model.resource_id,
                                          meter_links != 0))
            for model in ctx.metering.get_resources(limit=limit, **kwargs)]


def show_resource(ctx: context.Context, resource_id: str) -> dict:
    """``GET /v2/resources/<id>`` with its meter links."""
    ctx.enforce('get_resource')
    found = list(ctx.metering.get_resources(resource=resource_id,
                                            project=ctx.limited_project,
                                            limit=1))
    if not found:
        raise errors.NotFound('Resource', resource_id)
    return render.resource(found[0], _links(ctx, resource_id, True))


ROUTES = [
    ('/v2/resources', 'GET', list_resources),
    ('/v2/resources/{resource_id:.+}', 'GET', show_resource),
]
