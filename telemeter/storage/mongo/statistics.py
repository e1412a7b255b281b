"""``get_meter_statistics`` on MongoDB: one aggregation pipeline.

``$match`` on the filter (and the bucket range), ``$group`` by unit, the
groupby fields and the bucket number ``floor((timestamp - start) /
period)`` (date difference in milliseconds), with ``$min``/``$max``/
``$sum``/``$avg``/``$stdDevPop`` and ``$addToSet`` for cardinalities.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import pymongo

from telemeter.storage import models
from telemeter.storage import statistics as stats
from telemeter.storage.mongo import queries

if TYPE_CHECKING:
    from telemeter.storage import SampleFilter

CARDINALITY_PARAMS = ('resource_id', 'user_id', 'project_id', 'source')

_GROUP_PATHS = {
    'user_id': '$user_id',
    'project_id': '$project_id',
    'resource_id': '$resource_id',
    'resource_metadata.instance_type': '$resource_metadata.instance_type',
}

_ACCUMULATORS = {
    'min': '$min',
    'max': '$max',
    'sum': '$sum',
    'avg': '$avg',
    'stddev': '$stdDevPop',
}


def _accumulator(spec: stats.AggregateSpec) -> dict:
    if spec.func == 'count':
        return {'$sum': 1}
    if spec.func == 'cardinality':
        return {'$addToSet': f'${spec.param}'}
    return {_ACCUMULATORS[spec.func]: '$counter_volume'}


def _span(database: Any, query: dict) -> tuple[datetime.datetime | None,
                                               datetime.datetime | None]:
    first = database.meter.find_one(query, {'timestamp': 1},
                                    sort=[('timestamp', pymongo.ASCENDING)])
    last = database.meter.find_one(query, {'timestamp': 1},
                                   sort=[('timestamp', pymongo.DESCENDING)])
    return ((first or {}).get('timestamp'), (last or {}).get('timestamp'))


def get_meter_statistics(database: Any, sample_filter: SampleFilter,
                         period: float | None = None,
                         groupby: list | None = None,
                         aggregate: list | None = None
                         ) -> list[models.Statistics]:
    """Statistics of the samples matching ``sample_filter`` (storage.md
    §3)."""
    stats.require_meter(sample_filter)
    fields = stats.check_groupby(groupby)
    specs = stats.parse_aggregates(aggregate, CARDINALITY_PARAMS)
    query = queries.sample_query(sample_filter)
    group_id: dict[str, Any] = {'unit': '$counter_unit'}
    for index, field in enumerate(fields):
        group_id[f'g{index}'] = _GROUP_PATHS[field]
    start = None
    if period:
        start = sample_filter.start_timestamp
        end = sample_filter.end_timestamp
        if start is None or end is None:
            first, last = _span(database, query)
            start = start or first
            end = end or last
        if start is None or end is None:
            return []
        count = stats.bucket_count(start, end, period)
        if not count:
            return []
        limit = start + count * datetime.timedelta(seconds=period)
        query = {'$and': [query, {'timestamp': {'$gte': start,
                                                '$lt': limit}}]}
        group_id['bucket'] = {'$floor': {'$divide': [
            {'$subtract': ['$timestamp', start]}, period * 1000]}}
    group: dict[str, Any] = {'_id': group_id,
                             'first': {'$min': '$timestamp'},
                             'last': {'$max': '$timestamp'}}
    for index, spec in enumerate(specs):
        group[f'a{index}'] = _accumulator(spec)
    builder = stats.StatisticsBuilder(specs, period, bool(aggregate))
    results = []
    for doc in database.meter.aggregate([{'$match': query},
                                         {'$group': group}]):
        key = doc['_id']
        groups = {field: key.get(f'g{index}')
                  for index, field in enumerate(fields)}
        itype = groups.get('resource_metadata.instance_type')
        if ('resource_metadata.instance_type' in groups
                and not isinstance(itype, str)):
            continue  # only resources having that text metadata key
        values = []
        for index, spec in enumerate(specs):
            value = doc.get(f'a{index}')
            if spec.func == 'cardinality':
                value = len({repr(item) for item in value or []
                             if item is not None})
            values.append(value)
        results.append(builder.build(
            unit=key.get('unit'),
            bucket=(stats.bucket_bounds(start, period, int(key['bucket']))
                    if period and start else None),
            first=doc.get('first'), last=doc.get('last'),
            groupby=groups if fields else None, values=values))
    results.sort(key=stats.sort_key)
    return results
