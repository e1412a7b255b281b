"""``/v2/events`` and ``/v2/event_types`` (Ceilometer's, later Panko's,
event API).

A non-admin request sees only the events whose ``project_id`` trait is
its project.
"""

from __future__ import annotations

from telemeter import storage
from telemeter.api import context, errors, query, rbac, render
from telemeter.storage import models

EVENT_FIELDS = ('event_type', 'message_id', 'start_timestamp',
                'end_timestamp')
TRAIT_TYPES = ('string', 'integer', 'float', 'datetime')


def _event_filter(ctx: context.Context,
                  queries: list[query.Query]) -> storage.EventFilter:
    kwargs: dict = {}
    traits: list[dict] = []
    for item in queries:
        if item.field in EVENT_FIELDS:
            if item.op != 'eq' and item.field in ('event_type',
                                                  'message_id'):
                raise errors.BadRequest(
                    'q.op', f'Operator {item.op} is not supported. Only '
                    f'equality operator is available for field '
                    f'{item.field}')
            if item.field.endswith('_timestamp'):
                kwargs[item.field] = query.parse_datetime(item.value,
                                                          'q.value')
            else:
                kwargs[item.field] = item.value
            continue
        kind = item.type or 'string'
        if kind not in TRAIT_TYPES:
            raise errors.BadRequest(
                'q.type', f'trait {item.field!r} cannot be of type {kind}; '
                f'use one of {", ".join(TRAIT_TYPES)}')
        value = item.typed_value(kind)
        if isinstance(value, str) and '\x00' in value:
            raise errors.BadRequest('q.value', 'NUL character')
        if isinstance(value, int) and not -2**31 <= value < 2**31:
            raise errors.BadRequest('q.value', f'{value} is out of the '
                                    'range of integer traits')
        traits.append({'key': item.field, kind: value, 'op': item.op})
    limited = ctx.limited_project
    if limited is not None:
        rbac.check_projects([trait['string'] for trait in traits
                             if trait['key'] == 'project_id'
                             and 'string' in trait], limited)
        traits.append({'key': 'project_id', 'string': limited, 'op': 'eq'})
    return storage.EventFilter(traits_filter=traits, **kwargs)


def list_events(ctx: context.Context) -> list[dict]:
    """``GET /v2/events``, oldest first."""
    ctx.enforce('events:index')
    queries = query.parse(ctx.params)
    limit = ctx.limit()
    event_filter = _event_filter(ctx, queries)
    return render.many(render.event, ctx.events.get_events(event_filter,
                                                           limit=limit))


def show_event(ctx: context.Context, message_id: str) -> dict:
    """``GET /v2/events/<message_id>``."""
    ctx.enforce('events:show')
    event_filter = _event_filter(
        ctx, [query.Query('message_id', 'eq', message_id)])
    found = list(ctx.events.get_events(event_filter, limit=1))
    if not found:
        raise errors.NotFound('Event', message_id)
    return render.event(found[0])


def _visible_types(ctx: context.Context) -> list[str]:
    types = list(ctx.events.get_event_types())
    limited = ctx.limited_project
    if limited is None:
        return types
    own = storage.EventFilter(traits_filter=[
        {'key': 'project_id', 'string': limited, 'op': 'eq'}])
    seen = {event.event_type for event in ctx.events.get_events(own)}
    return [name for name in types if name in seen]


def list_event_types(ctx: context.Context) -> list[str]:
    """``GET /v2/event_types``."""
    ctx.enforce('event_types:index')
    return _visible_types(ctx)


def _check_type(ctx: context.Context, event_type: str) -> None:
    if ctx.limited_project is not None and \
            event_type not in _visible_types(ctx):
        raise errors.NotFound('Event type', event_type)


def trait_descriptions(ctx: context.Context, event_type: str) -> list[dict]:
    """``GET /v2/event_types/<type>/traits``: name and type of each."""
    ctx.enforce('event_types:index')
    _check_type(ctx, event_type)
    return [{'name': item['name'],
             'type': models.Trait.get_name_by_type(item['data_type'])}
            for item in ctx.events.get_trait_types(event_type)]


def traits(ctx: context.Context, event_type: str,
           trait_name: str) -> list[dict]:
    """``GET /v2/event_types/<type>/traits/<name>``: every value."""
    ctx.enforce('event_types:index')
    limited = ctx.limited_project
    if limited is None:
        found = ctx.events.get_traits(event_type, trait_name)
    else:
        own = storage.EventFilter(event_type=event_type, traits_filter=[
            {'key': 'project_id', 'string': limited, 'op': 'eq'}])
        found = [trait for event in ctx.events.get_events(own)
                 for trait in event.traits if trait.name == trait_name]
    return render.many(render.trait, found)


ROUTES = [
    ('/v2/events', 'GET', list_events),
    ('/v2/events/{message_id}', 'GET', show_event),
    ('/v2/event_types', 'GET', list_event_types),
    ('/v2/event_types/{event_type}/traits', 'GET', trait_descriptions),
    ('/v2/event_types/{event_type}/traits/{trait_name}', 'GET', traits),
]
