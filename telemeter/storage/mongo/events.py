"""Event storage on MongoDB.

Collection ``event``: ``{_id: message_id, event_type, timestamp:
generated, traits: [{trait_name, trait_type, trait_value}], raw}``; the
``_id`` makes a redelivered event a duplicate that is skipped. A batch is
written with one unordered ``insert_many``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pymongo
from bson import errors as bson_errors
from oslo_log import log
from pymongo import errors as mongo_errors

from telemeter import utils
from telemeter.storage import models
from telemeter.storage import trait_filter as trait_filter_mod
from telemeter.storage.event_checker import EventChecker
from telemeter.storage.mongo.metering import DUPLICATE_KEY

if TYPE_CHECKING:
    from telemeter.storage import EventFilter

LOG = log.getLogger(__name__)

_TRAIT_TYPES = {
    'string': models.Trait.TEXT_TYPE,
    'integer': models.Trait.INT_TYPE,
    'float': models.Trait.FLOAT_TYPE,
    'datetime': models.Trait.DATETIME_TYPE,
}
_OPS = {'eq': '$eq', 'lt': '$lt', 'le': '$lte', 'gt': '$gt', 'ge': '$gte',
        'ne': '$ne'}


def _trait_document(trait: models.Trait) -> dict:
    dtype = (models.Trait.TEXT_TYPE
             if trait.dtype == models.Trait.NONE_TYPE else trait.dtype)
    if dtype not in _TRAIT_TYPES.values():
        raise ValueError(f'Trait {trait.name} has unknown type '
                         f'{trait.dtype}')
    value = trait.value
    if value is not None:
        value = models.Trait.convert_value(dtype, value)
    return {'trait_name': trait.name, 'trait_type': dtype,
            'trait_value': value}


def _document(event: models.Event) -> dict:
    """The ``event`` document; ValueError or TypeError if the event
    cannot be stored."""
    return {'_id': event.message_id,
            'event_type': event.event_type,
            'timestamp': utils.sanitize_timestamp(event.generated),
            'traits': [_trait_document(t) for t in event.traits or []],
            'raw': event.raw}


def record_events(database: Any, events: Iterable[models.Event],
                  checker: EventChecker) -> None:
    """Insert a batch with one unordered ``insert_many``.

    A message id already stored (or seen earlier in the batch) is logged
    and skipped; an event that cannot be stored (a trait value not of its
    type, a document BSON cannot encode, one the server refuses) is
    logged, counted by ``checker`` and dropped; other errors (the server
    is down, a write concern failed) are raised.
    """
    docs = []
    seen: set[Any] = set()
    for event in events:
        try:
            doc = _document(event)
        except (ValueError, TypeError, OverflowError,
                AttributeError) as err:
            reason: str | None = str(err)
        else:
            reason = None
        if reason is not None:
            checker.drop(getattr(event, 'message_id', None), reason)
            continue
        if doc['_id'] in seen:
            _log_duplicate(doc['_id'])
            continue
        seen.add(doc['_id'])
        docs.append(doc)
    if not docs:
        return
    try:
        database.event.insert_many(docs, ordered=False)
    except mongo_errors.BulkWriteError as err:
        _bulk_errors(docs, err, checker)
    except _UNENCODABLE:
        # Raised while encoding, before the server had the batch (or
        # part of it): find the documents at fault one by one.
        for doc in docs:
            _insert_one(database, doc, checker)


# What BSON cannot encode: a document (raw notification) with an object of
# no BSON type, an integer over 64 bits, text that is not valid Unicode,
# a document over 16 MiB.
_UNENCODABLE = (bson_errors.InvalidDocument, mongo_errors.DocumentTooLarge,
                OverflowError, UnicodeError)


def _bulk_errors(docs: list[dict], err: mongo_errors.BulkWriteError,
                 checker: EventChecker) -> None:
    if err.details.get('writeConcernErrors'):
        raise err
    for error in err.details.get('writeErrors', []):
        message_id = docs[error['index']]['_id']
        if error.get('code') == DUPLICATE_KEY:
            _log_duplicate(message_id)
        else:
            checker.drop(message_id, error.get('errmsg', 'refused'))


def _insert_one(database: Any, doc: dict, checker: EventChecker) -> None:
    try:
        database.event.insert_one(doc)
    except mongo_errors.DuplicateKeyError:
        _log_duplicate(doc['_id'])
    except _UNENCODABLE as err:
        checker.drop(doc['_id'], f'not storable in BSON: {err}')


def _log_duplicate(message_id: Any) -> None:
    LOG.info('Duplicate event detected, skipping it: %s', message_id)


def _trait_condition(trait_filter: dict) -> dict:
    condition = trait_filter_mod.parse(trait_filter)
    return {'traits': {'$elemMatch': {
        'trait_name': condition.key,
        'trait_type': _TRAIT_TYPES[condition.type_name],
        'trait_value': {_OPS[condition.op]: condition.value}}}}


def event_query(event_filter: EventFilter) -> dict:
    """The ``event`` collection query of an EventFilter."""
    parts: list[dict] = []
    if event_filter.event_type:
        parts.append({'event_type': event_filter.event_type})
    if event_filter.message_id:
        parts.append({'_id': event_filter.message_id})
    span = {}
    start = utils.sanitize_timestamp(event_filter.start_timestamp)
    end = utils.sanitize_timestamp(event_filter.end_timestamp)
    if start:
        span['$gte'] = start
    if end:
        span['$lte'] = end
    if span:
        parts.append({'timestamp': span})
    parts.extend(_trait_condition(item)
                 for item in event_filter.traits_filter or [])
    if event_filter.admin_proj:
        parts.append({'$or': [
            {'traits': {'$not': {'$elemMatch': {
                'trait_name': 'project_id'}}}},
            {'traits': {'$elemMatch': {
                'trait_name': 'project_id',
                'trait_value': event_filter.admin_proj}}}]})
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {'$and': parts}


def _traits(doc: dict) -> list[models.Trait]:
    traits = [models.Trait(t['trait_name'], t['trait_type'],
                           t.get('trait_value'))
              for t in doc.get('traits') or []]
    return sorted(traits, key=lambda t: (t.name, t.dtype))


def get_events(database: Any, event_filter: EventFilter,
               limit: int | None = None) -> list[models.Event]:
    """Events matching ``event_filter``, oldest first."""
    if limit == 0:
        return []
    cursor = database.event.find(event_query(event_filter)).sort(
        [('timestamp', pymongo.ASCENDING), ('_id', pymongo.ASCENDING)])
    if limit:
        cursor = cursor.limit(limit)
    return [models.Event(message_id=doc['_id'],
                         event_type=doc['event_type'],
                         generated=doc['timestamp'], traits=_traits(doc),
                         raw=doc.get('raw')) for doc in cursor]


def get_event_types(database: Any) -> list[str]:
    """All event types, sorted."""
    return sorted(database.event.distinct('event_type'))


def get_trait_types(database: Any, event_type: str) -> list[dict]:
    """``{'name', 'data_type'}`` per distinct trait: text, int, float,
    datetime, each by name."""
    found = set()
    for doc in database.event.find({'event_type': event_type},
                                   {'traits': 1}):
        for trait in doc.get('traits') or []:
            found.add((trait['trait_type'], trait['trait_name']))
    return [{'name': name, 'data_type': dtype}
            for dtype, name in sorted(found)]


def get_traits(database: Any, event_type: str,
               trait_type: str | None = None) -> list[models.Trait]:
    """Trait models of every event of ``event_type`` (only the
    ``trait_type`` key when given)."""
    result = []
    for doc in database.event.find({'event_type': event_type},
                                   {'traits': 1}).sort('_id'):
        for trait in doc.get('traits') or []:
            if trait_type and trait['trait_name'] != trait_type:
                continue
            result.append(models.Trait(trait['trait_name'],
                                       trait['trait_type'],
                                       trait.get('trait_value')))
    return result
