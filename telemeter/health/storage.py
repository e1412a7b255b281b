"""Counting the collector's dispatchers and probing their storage.

:class:`CountedDispatcher` stands in for a dispatcher plugin object
(``ext.obj`` of the dispatcher managers) and counts, per call, the items
of the calls that returned (``taken``) and of those that raised
(``failed``): the bus endpoints and the UDP receiver both reach the
dispatchers through ``ext.obj``, so both are counted, at the cost of two
integer additions per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from telemeter.health.checks import Check, last_call
from telemeter.health.ledger import Reading, reading
from telemeter.pipeline import base


class CountedDispatcher:
    """A dispatcher with counts of what it took; any other attribute is
    the dispatcher's own."""

    def __init__(self, dispatcher: Any, name: str, kind: str) -> None:
        self.dispatcher = dispatcher
        self.name = name
        self.kind = kind
        #: Items of the calls that returned (``published``) and raised.
        self.outcome = base.Outcome()

    @property
    def taken(self) -> int:
        return self.outcome.published

    @property
    def failed(self) -> int:
        return self.outcome.failed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dispatcher, name)

    def record_metering_data(self, data: list[dict] | dict) -> None:
        self._call(self.dispatcher.record_metering_data, data)

    def record_events(self, events: list[dict] | dict) -> None:
        self._call(self.dispatcher.record_events, events)

    def _call(self, method: Callable[[Any], None], data: Any) -> None:
        count = 1 if isinstance(data, dict) else len(data)
        try:
            method(data)
        except Exception as err:
            self.outcome.failure(count, err)
            raise
        self.outcome.ok(count)

    def unstorable(self) -> int:
        """Items the dispatcher and its storage driver dropped as
        impossible to store (the database dispatchers' ``dropped``)."""
        return getattr(self.dispatcher, 'dropped', 0)

    def connection(self) -> Any:
        """The storage connection, if the dispatcher opened one (never
        opens it: that may retry for minutes)."""
        return getattr(self.dispatcher, 'opened_connection', None)


def count(manager: Any, kind: str) -> list[CountedDispatcher]:
    """Put a :class:`CountedDispatcher` in place of every dispatcher of a
    stevedore manager; return them."""
    counted = []
    for ext in manager:
        if not isinstance(ext.obj, CountedDispatcher):
            ext.obj = CountedDispatcher(ext.obj, ext.name, kind)
        counted.append(ext.obj)
    return counted


def readings(dispatchers: Iterable[CountedDispatcher]) -> list[Reading]:
    """``dispatcher_taken``, ``dispatch_failed``, ``stored`` and storage
    drops of each dispatcher."""
    found = []
    for d in dispatchers:
        stage = f'dispatcher:{d.name}'
        unstorable = d.unstorable()
        found += [
            reading('dispatcher_taken', d.taken, stage=stage, kind=d.kind),
            reading('dispatch_failed', d.failed, stage=stage, kind=d.kind),
            reading('stored', d.taken - unstorable, stage=stage,
                    kind=d.kind),
            reading('dropped', unstorable, stage=f'storage:{d.name}',
                    kind=d.kind, reason='unstorable'),
        ]
    return found


def last_write(d: CountedDispatcher) -> Check:
    """Fails while the dispatcher's last call raised."""
    name = f'dispatcher:{d.name}:{d.kind}'
    return last_call(name, d.outcome, 'write') or Check(
        name, True, 'last write ok' if d.outcome.last_ok else
        'nothing written yet')


def ping(d: CountedDispatcher) -> str:
    """Ask ``d``'s storage server for an answer; raise if it gives none.
    Returns what was checked."""
    conn = d.connection()
    if conn is None:
        return 'not connected yet (nothing written)'
    engine = getattr(conn, 'engine', None)
    if engine is not None:
        from sqlalchemy import pool

        if isinstance(engine.pool, pool.StaticPool):
            # One connection shared with the writer: not to be borrowed.
            return 'in-memory database, not probed'
        with engine.connect() as sql:
            sql.exec_driver_sql('SELECT 1')
        return f'{engine.dialect.name} answers'
    client = getattr(conn, '_client', None)
    if client is not None and hasattr(client, 'admin'):
        client.admin.command('ping')
        return 'mongodb answers'
    return f'{type(conn).__name__} is not probed'
