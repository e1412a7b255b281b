"""Event type ids of a batch, with a per-process cache.

The ids of a batch's event types are resolved at once, inside the batch's
transaction, every row share-locked (``FOR KEY SHARE`` / ``LOCK IN SHARE
MODE``; SQLite serialises writers) until the transaction ends: cached ids
are read again by id, so a type the expirer deleted meanwhile is noticed
(and created again), and none can be deleted before the batch commits.
``event.event_type_id`` keeps its foreign key, so an expirer deleting an
event type a writer has just started to use fails and tries again (see
``EventStore.clear_expired_event_data``); no residual-data lock is needed.
Names not cached are read, the missing ones inserted (duplicates from
concurrent writers ignored) and read again. Only ids of committed rows
enter the cache (:meth:`EventTypes.remember` after the commit).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import tables
from telemeter.storage.sqlalchemy.event_loading import chunks


class EventTypes:
    """Resolves event type names to ids for one database."""

    def __init__(self, dialect_name: str) -> None:
        self._cache: dict[str, int] = {}
        self._insert = db_engine.insert_ignore(tables.event_type,
                                               dialect_name)
        # MySQL's default collations compare names loosely (case, accents,
        # trailing spaces): the stored name may differ from the one asked.
        self._loose = dialect_name == 'mysql'

    def forget(self) -> None:
        """Drop the cache (after a clear, an expiry or a failed write)."""
        self._cache.clear()

    def remember(self, ids: dict[str, int]) -> None:
        """Cache ids of rows now committed."""
        self._cache.update(ids)

    def resolve(self, conn: Connection, names: set[str]
                ) -> tuple[dict[str, int], dict[str, int]]:
        """``({name: id} of every name, {name: id} of those not cached
        before)``."""
        event_type = tables.event_type
        found: dict[str, int] = {}
        cached = {name: self._cache[name] for name in names
                  if name in self._cache}
        if cached:
            alive = set(conn.execute(
                sa.select(event_type.c.id)
                .where(event_type.c.id.in_(sorted(cached.values())))
                .with_for_update(read=True, key_share=True)).scalars())
            for name, type_id in cached.items():
                if type_id in alive:
                    found[name] = type_id
                else:
                    del self._cache[name]
        missing = sorted(names - found.keys())
        if not missing:
            return found, {}
        new = self._read(conn, missing)
        absent = [name for name in missing if name not in new]
        if absent:
            conn.execute(self._insert, [{'desc': name} for name in absent])
            new.update(self._read(conn, absent))
        lost = [name for name in missing if name not in new]
        if lost:
            raise RuntimeError(f'Event types {lost} could not be created')
        found.update(new)
        return found, new

    def _read(self, conn: Connection, names: list[str]) -> dict[str, int]:
        event_type = tables.event_type
        found: dict[str, int] = {}
        for chunk in chunks(names):
            found.update((row.desc, row.id) for row in conn.execute(
                sa.select(event_type.c.id, event_type.c.desc)
                .where(event_type.c.desc.in_(chunk))
                .with_for_update(read=True, key_share=True)))
        if not self._loose:
            return found
        for name in names:
            if name not in found:
                # A stored name the collation matches loosely is this
                # event type, as the single lookup finds it.
                type_id = conn.execute(
                    sa.select(event_type.c.id)
                    .where(event_type.c.desc == name)
                    .with_for_update(read=True, key_share=True)).scalar()
                if type_id is not None:
                    found[name] = type_id
        return found
