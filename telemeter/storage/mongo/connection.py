"""MongoDB client, server version check, indexes and TTL indexes.

The database is the one named in the URL path (``telemeter`` if none);
credentials in the URL are used by pymongo. Tests replace
:data:`CLIENT_FACTORY` with an in-process double (mongomock-ng).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pymongo
from oslo_log import log
from pymongo import errors as mongo_errors
from pymongo import uri_parser

from telemeter import storage

LOG = log.getLogger(__name__)

MIN_VERSION = [2, 4]
DEFAULT_DATABASE = 'telemeter'

# Called as CLIENT_FACTORY(url) -> a pymongo.MongoClient-like object.
CLIENT_FACTORY: Callable[[str], Any] = pymongo.MongoClient


def connect(url: str) -> tuple[Any, Any]:
    """``(client, database)`` for ``url``; the server must be >= 2.4."""
    client = CLIENT_FACTORY(url)
    try:
        check_version(client)
        database = client[database_name(url)]
    except Exception:
        client.close()
        raise
    return client, database


def database_name(url: str) -> str:
    """The database named in the URL path, else ``telemeter``."""
    return uri_parser.parse_uri(url)['database'] or DEFAULT_DATABASE


def check_version(client: Any) -> None:
    """Raise StorageBadVersion for a server older than 2.4.

    A server that reports no version (some wire-protocol stand-ins) is
    accepted with a warning: pymongo itself refuses servers it cannot talk
    to.
    """
    info = client.server_info()
    version = info.get('versionArray')
    if not version:
        LOG.warning('The MongoDB server did not report its version; '
                    'assuming it is recent enough')
        return
    if list(version[:2]) < MIN_VERSION:
        raise storage.StorageBadVersion(
            f'Need at least MongoDB {MIN_VERSION}')


def _same_keys(info: dict, keys: Sequence[tuple[str, int]]) -> bool:
    return [(name, int(direction)) for name, direction in info['key']] == [
        (name, int(direction)) for name, direction in keys]


def ensure_index(collection: Any, keys: Sequence[tuple[str, int]],
                 name: str, **options: Any) -> None:
    """Create index ``name`` unless an index on the same keys exists."""
    existing = collection.index_information()
    if name in existing or any(_same_keys(info, keys)
                               and not info.get('expireAfterSeconds')
                               for info in existing.values()):
        return
    collection.create_index(list(keys), name=name, **options)


def set_ttl_index(collection: Any, field: str, name: str, ttl: int) -> None:
    """Keep a TTL index ``name`` on ``field`` expiring after ``ttl``
    seconds, or drop it when ``ttl <= 0``.

    An existing index with another TTL is changed with ``collMod`` (or
    dropped and recreated where the server lacks that).
    """
    existing = collection.index_information()
    if ttl <= 0:
        if name in existing:
            LOG.info('Dropping TTL index %s of %s', name, collection.name)
            collection.drop_index(name)
        return
    current = existing.get(name)
    if current is None:
        LOG.info('Creating TTL index %(name)s of %(coll)s: %(ttl)d s',
                 {'name': name, 'coll': collection.name, 'ttl': ttl})
        collection.create_index([(field, pymongo.ASCENDING)], name=name,
                                expireAfterSeconds=ttl)
        return
    if current.get('expireAfterSeconds') == ttl:
        return
    LOG.info('Changing TTL index %(name)s of %(coll)s to %(ttl)d s',
             {'name': name, 'coll': collection.name, 'ttl': ttl})
    try:
        collection.database.command(
            'collMod', collection.name,
            index={'keyPattern': {field: pymongo.ASCENDING},
                   'expireAfterSeconds': ttl})
    except (mongo_errors.OperationFailure, NotImplementedError):
        collection.drop_index(name)
        collection.create_index([(field, pymongo.ASCENDING)], name=name,
                                expireAfterSeconds=ttl)
