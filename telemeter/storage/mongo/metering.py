"""Sample writes and sample / resource / meter queries on MongoDB.

Collections (storage.md §6): ``meter`` holds one document per sample (the
metering dict without ``monotonic_time``, plus ``recorded_at``);
``resource`` one document per resource id with its latest user, project,
source and metadata, first/last sample timestamps and the set of its
meters. A batch is written with two bulk requests: the resource upserts,
then the samples (unordered; a sample whose ``message_id`` is already
stored is rejected by the unique index and skipped, so redelivery never
duplicates). BSON datetimes keep milliseconds, not microseconds.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pymongo
from oslo_log import log
from pymongo import errors as mongo_errors

from telemeter import utils
from telemeter.storage import models
from telemeter.storage.mongo import keys, queries

if TYPE_CHECKING:
    from telemeter.storage import MeterFilter, ResourceFilter, SampleFilter

LOG = log.getLogger(__name__)

DUPLICATE_KEY = 11000


def utcnow() -> datetime.datetime:
    """Naive UTC now."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _document(data: dict, recorded_at: datetime.datetime) -> dict:
    doc = {key: value for key, value in data.items()
           if key != 'monotonic_time'}
    doc['resource_metadata'] = keys.improve_keys(
        data.get('resource_metadata'))
    timestamp = data.get('timestamp')
    if timestamp is not None and (not isinstance(timestamp,
                                                 datetime.datetime)
                                  or timestamp.tzinfo is not None):
        timestamp = utils.sanitize_timestamp(timestamp)
    doc['timestamp'] = timestamp or recorded_at
    doc['recorded_at'] = recorded_at
    volume = data.get('counter_volume')
    doc['counter_volume'] = None if volume is None else float(volume)
    if doc.get('message_id') is None:
        # The unique message_id index is sparse: leave the key out.
        doc.pop('message_id', None)
    return doc


def _resource_requests(docs: list[dict]) -> list[Any]:
    """Bulk upserts keeping each resource document current."""
    by_resource: dict[str, list[dict]] = {}
    for doc in docs:
        by_resource.setdefault(doc['resource_id'], []).append(doc)
    requests: list[Any] = []
    for resource_id, samples in by_resource.items():
        last_in_batch = samples[-1]
        newest = max(reversed(samples), key=lambda d: d['timestamp'])
        oldest = min(samples, key=lambda d: d['timestamp'])
        meters = []
        for doc in samples:
            meter = {'counter_name': doc['counter_name'],
                     'counter_type': doc.get('counter_type'),
                     'counter_unit': doc.get('counter_unit')}
            if meter not in meters:
                meters.append(meter)
        requests.append(pymongo.UpdateOne(
            {'_id': resource_id},
            {'$set': {'user_id': last_in_batch.get('user_id'),
                      'project_id': last_in_batch.get('project_id'),
                      'source': last_in_batch.get('source')},
             '$setOnInsert': {
                 'metadata': newest['resource_metadata'],
                 'first_sample_timestamp': oldest['timestamp'],
                 'last_sample_timestamp': newest['timestamp']},
             '$addToSet': {'meter': {'$each': meters}}},
            upsert=True))
        # Newer last sample: it brings its metadata along.
        requests.append(pymongo.UpdateOne(
            {'_id': resource_id,
             'last_sample_timestamp': {'$lt': newest['timestamp']}},
            {'$set': {'metadata': newest['resource_metadata'],
                      'last_sample_timestamp': newest['timestamp']}}))
        requests.append(pymongo.UpdateOne(
            {'_id': resource_id,
             'first_sample_timestamp': {'$gt': oldest['timestamp']}},
            {'$set': {'first_sample_timestamp': oldest['timestamp']}}))
    return requests


def record_batch(database: Any, samples: Iterable[dict]) -> None:
    """Store a batch of metering dicts; known message ids are skipped."""
    recorded_at = utcnow()
    docs = []
    seen: set[str] = set()
    for data in samples:
        message_id = data.get('message_id')
        if message_id is not None:
            if message_id in seen:
                continue
            seen.add(message_id)
        docs.append(_document(data, recorded_at))
    if not docs:
        return
    database.resource.bulk_write(_resource_requests(docs), ordered=True)
    try:
        database.meter.insert_many(docs, ordered=False)
    except mongo_errors.BulkWriteError as err:
        errors = err.details.get('writeErrors', [])
        others = [e for e in errors if e.get('code') != DUPLICATE_KEY]
        if others:
            raise
        LOG.debug('%d already stored samples skipped', len(errors))


def to_sample(doc: dict) -> models.Sample:
    """A ``meter`` document as a Sample model."""
    volume = doc.get('counter_volume')
    return models.Sample(
        source=doc.get('source'), counter_name=doc['counter_name'],
        counter_type=doc.get('counter_type'),
        counter_unit=doc.get('counter_unit'),
        counter_volume=None if volume is None else float(volume),
        user_id=doc.get('user_id'), project_id=doc.get('project_id'),
        resource_id=doc['resource_id'], timestamp=doc.get('timestamp'),
        resource_metadata=keys.unquote_keys(doc.get('resource_metadata')),
        message_id=doc.get('message_id'),
        message_signature=doc.get('message_signature'),
        recorded_at=doc.get('recorded_at'))


def find_samples(database: Any, query: dict, sort: list,
                 limit: int | None) -> list[models.Sample]:
    """Samples of a ``meter`` query in ``sort`` order."""
    if limit == 0:
        return []
    cursor = database.meter.find(query).sort(sort)
    if limit:
        cursor = cursor.limit(limit)
    return [to_sample(doc) for doc in cursor]


def get_samples(database: Any, sample_filter: SampleFilter,
                limit: int | None = None) -> list[models.Sample]:
    """Samples matching ``sample_filter``, newest first."""
    return find_samples(database, queries.sample_query(sample_filter),
                        queries.sort_spec(None), limit)


def query_samples(database: Any, filter_expr: dict | None = None,
                  orderby: list | None = None,
                  limit: int | None = None) -> list[models.Sample]:
    """Samples matching a complex filter expression."""
    return find_samples(database, queries.complex_query(filter_expr),
                        queries.sort_spec(orderby), limit)


def _owner_match(wanted: ResourceFilter | MeterFilter) -> dict[str, Any]:
    """The match on the user, project (``'None'`` matching null) and
    source a query asks for."""
    match: dict[str, Any] = {}
    if wanted.user:
        match['user_id'] = queries.equal_or_null(wanted.user)
    if wanted.project:
        match['project_id'] = queries.equal_or_null(wanted.project)
    if wanted.source:
        match['source'] = wanted.source
    return match


def get_resources(database: Any, wanted: ResourceFilter
                  ) -> list[models.Resource]:
    """One Resource per resource id with matching samples, described by
    its newest matching sample (ties: the latest inserted)."""
    if wanted.limit == 0:
        return []
    query = _owner_match(wanted)
    if wanted.resource:
        query['resource_id'] = wanted.resource
    span = queries.timestamp_range(
        wanted.start_timestamp, wanted.start_timestamp_op,
        wanted.end_timestamp, wanted.end_timestamp_op)
    if span:
        query['timestamp'] = span
    query.update(queries.metaquery(wanted.metaquery,
                                   queries.METADATA_PREFIX))
    pipeline: list[dict] = [
        {'$match': query},
        {'$sort': {'timestamp': pymongo.DESCENDING,
                   '_id': pymongo.DESCENDING}},
        {'$group': {'_id': '$resource_id',
                    'first': {'$min': '$timestamp'},
                    'last': {'$max': '$timestamp'},
                    'user_id': {'$first': '$user_id'},
                    'project_id': {'$first': '$project_id'},
                    'source': {'$first': '$source'},
                    'metadata': {'$first': '$resource_metadata'}}},
        {'$sort': {'_id': pymongo.ASCENDING}},
    ]
    if wanted.limit:
        pipeline.append({'$limit': wanted.limit})
    return [models.Resource(
        resource_id=doc['_id'], project_id=doc.get('project_id'),
        first_sample_timestamp=doc.get('first'),
        last_sample_timestamp=doc.get('last'), source=doc.get('source'),
        user_id=doc.get('user_id'),
        metadata=keys.unquote_keys(doc.get('metadata')))
        for doc in database.meter.aggregate(pipeline)]


def get_meters(database: Any, wanted: MeterFilter
               ) -> list[models.Meter]:
    """One Meter per (meter, resource id) from its latest recorded
    sample, kept if that sample matches the filter; with ``unique`` one
    Meter per meter."""
    if wanted.limit == 0:
        return []
    pipeline: list[dict] = []
    if wanted.resource:
        pipeline.append({'$match': {'resource_id': wanted.resource}})
    pipeline += [
        {'$sort': {'_id': pymongo.DESCENDING}},
        {'$group': {'_id': {'resource_id': '$resource_id',
                            'name': '$counter_name',
                            'type': '$counter_type',
                            'unit': '$counter_unit'},
                    'user_id': {'$first': '$user_id'},
                    'project_id': {'$first': '$project_id'},
                    'source': {'$first': '$source'},
                    'metadata': {'$first': '$resource_metadata'}}},
    ]
    latest = _owner_match(wanted)
    latest.update(queries.metaquery(wanted.metaquery, 'metadata.'))
    if latest:
        pipeline.append({'$match': latest})
    result: list[models.Meter] = []
    seen: set[tuple] = set()
    for doc in database.meter.aggregate(pipeline):
        group = doc['_id']
        key = (group['name'], group.get('type'), group.get('unit'))
        if wanted.unique:
            if key not in seen:
                seen.add(key)
                result.append(models.Meter(
                    name=key[0], type=key[1], unit=key[2],
                    resource_id=None, project_id=None, source=None,
                    user_id=None))
            continue
        result.append(models.Meter(
            name=key[0], type=key[1], unit=key[2],
            resource_id=group['resource_id'],
            project_id=doc.get('project_id'), source=doc.get('source'),
            user_id=doc.get('user_id')))
    result.sort(key=lambda m: (m.name, str(m.type), str(m.unit),
                               str(m.resource_id)))
    return result[:wanted.limit] if wanted.limit else result
