"""Storage models as the JSON objects of Ceilometer's v2 API.

Times are ISO 8601 without a zone (UTC), as WSME wrote them; resource
metadata is flattened to ``{dotted key: text}`` as Ceilometer's
``flatten_metadata`` did.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable
from typing import Any

from telemeter import utils
from telemeter.storage import models


def isotime(moment: datetime.datetime | None) -> str | None:
    """``moment`` (naive UTC) as ISO 8601 text."""
    return moment.isoformat() if moment is not None else None


def flatten_metadata(metadata: dict | None) -> dict[str, str]:
    """Nested metadata as ``{'a.b:c': 'text'}`` (the first separator a
    dot, the next ones colons; values as text; sets left out)."""
    if not metadata:
        return {}
    flat = {}
    for key, value in utils.recursive_keypairs(metadata, separator='.'):
        if isinstance(value, (set, frozenset)):
            continue
        flat[key.replace('.', ':').replace(':', '.', 1)] = str(value)
    return flat


def meter(model: models.Meter) -> dict[str, Any]:
    """A Meter; ``meter_id`` is base64 of ``<resource_id>+<name>``."""
    ident = f'{model.resource_id}+{model.name}'.encode()
    return {'name': model.name, 'type': model.type, 'unit': model.unit,
            'resource_id': model.resource_id,
            'project_id': model.project_id, 'user_id': model.user_id,
            'source': model.source,
            'meter_id': base64.b64encode(ident).decode()}


def old_sample(model: models.Sample) -> dict[str, Any]:
    """The sample of ``/v2/meters/<name>`` (counter_* fields)."""
    volume = model.counter_volume
    return {'source': model.source, 'counter_name': model.counter_name,
            'counter_type': model.counter_type,
            'counter_unit': model.counter_unit,
            'counter_volume': float(volume) if volume is not None else None,
            'user_id': model.user_id, 'project_id': model.project_id,
            'resource_id': model.resource_id,
            'timestamp': isotime(model.timestamp),
            'recorded_at': isotime(model.recorded_at),
            'resource_metadata': flatten_metadata(model.resource_metadata),
            'message_id': model.message_id}


def sample(model: models.Sample) -> dict[str, Any]:
    """The sample of ``/v2/samples``."""
    volume = model.counter_volume
    return {'id': model.message_id, 'meter': model.counter_name,
            'type': model.counter_type, 'unit': model.counter_unit,
            'volume': float(volume) if volume is not None else None,
            'user_id': model.user_id, 'project_id': model.project_id,
            'resource_id': model.resource_id, 'source': model.source,
            'timestamp': isotime(model.timestamp),
            'recorded_at': isotime(model.recorded_at),
            'metadata': flatten_metadata(model.resource_metadata)}


def resource(model: models.Resource, links: list[dict]) -> dict[str, Any]:
    """A Resource with its ``links`` (self, then one per meter)."""
    return {'resource_id': model.resource_id,
            'project_id': model.project_id, 'user_id': model.user_id,
            'first_sample_timestamp': isotime(model.first_sample_timestamp),
            'last_sample_timestamp': isotime(model.last_sample_timestamp),
            'metadata': flatten_metadata(model.metadata),
            'links': links, 'source': model.source}


AGGREGATE_FIELDS = ('min', 'max', 'avg', 'sum', 'count')


def statistics(model: models.Statistics,
               start: datetime.datetime | None,
               end: datetime.datetime | None) -> dict[str, Any]:
    """A Statistics; the duration is clamped to the query's
    ``[start, end]`` as Ceilometer did."""
    first, last = model.duration_start, model.duration_end
    if start and first and first < start:
        first = start
    if end and last and last > end:
        last = end
    if first is not None and last is not None and first <= last:
        duration = (last - first).total_seconds()
    else:
        first = last = duration = None
    data: dict[str, Any] = {
        'groupby': model.groupby, 'unit': model.unit,
        'duration': duration, 'duration_start': isotime(first),
        'duration_end': isotime(last), 'period': model.period,
        'period_start': isotime(model.period_start),
        'period_end': isotime(model.period_end)}
    for name in AGGREGATE_FIELDS:
        if name in model.fields:
            data[name] = getattr(model, name)
    if 'aggregate' in model.fields:
        data['aggregate'] = model.aggregate
        # Also as fields, the names under which the client prints them
        # (``stddev``, ``cardinality/resource_id``).
        for key, value in model.aggregate.items():
            data.setdefault(key, value)
    return data


def trait(model: models.Trait, with_value: bool = True) -> dict[str, Any]:
    """A trait: ``name``, ``type`` (type name) and its value as text."""
    data = {'name': model.name, 'type': model.get_type_name()}
    if with_value:
        value = model.value
        if isinstance(value, datetime.datetime):
            value = value.isoformat()
        data['value'] = str(value) if value is not None else None
    return data


def event(model: models.Event) -> dict[str, Any]:
    """An event with its traits and raw notification."""
    return {'message_id': model.message_id,
            'event_type': model.event_type,
            'generated': isotime(model.generated),
            'traits': [trait(item) for item in model.traits or []],
            'raw': model.raw or {}}


def flatten_capabilities(tree: dict, prefix: str = '') -> dict[str, Any]:
    """``{'a': {'b': True}}`` → ``{'a:b': True}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten_capabilities(value, f'{name}:'))
        else:
            flat[name] = value
    return flat


def many(render: Any, items: Iterable[Any]) -> list[dict]:
    """``[render(item) for item in items]``."""
    return [render(item) for item in items]
