"""``GET /`` (API versions) and ``GET /v2/capabilities``."""

from __future__ import annotations

import webob

from telemeter.api import context, render

UPDATED = '2013-02-13T00:00:00Z'


def versions(ctx: context.Context) -> object:
    """The versions document; a browser is sent to the operator page."""
    accept = ctx.request.headers.get('Accept', '')
    if 'text/html' in accept and 'application/json' not in accept:
        return webob.exc.HTTPFound(location=ctx.url('/dashboard'))
    v2 = {'id': 'v2', 'status': 'stable', 'updated': UPDATED,
          'links': [{'href': ctx.url('/v2'), 'rel': 'self'},
                    {'href': 'https://docs.openstack.org/',
                     'rel': 'describedby', 'type': 'text/html'}],
          'media-types': [
              {'base': 'application/json',
               'type': 'application/vnd.openstack.telemetry-v2+json'}]}
    return {'versions': {'values': [v2]}}


def capabilities(ctx: context.Context) -> dict:
    """What the storage drivers support, flattened (``a:b:c``)."""
    ctx.enforce('capabilities')
    metering, events = ctx.metering, ctx.events
    api = dict(metering.get_capabilities())
    api.update(events.get_capabilities())
    return {'api': render.flatten_capabilities(api),
            'storage': render.flatten_capabilities(
                metering.get_storage_capabilities()),
            'event_storage': render.flatten_capabilities(
                events.get_storage_capabilities())}


ROUTES = [
    ('/', 'GET', versions),
    ('/v2/capabilities', 'GET', capabilities),
]
