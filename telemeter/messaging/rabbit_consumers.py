"""The consumers of :class:`~telemeter.messaging.rabbit.RabbitBatchListener`:
its connection's state, its counters, and starting them again.

oslo.messaging's guarded ``consume()`` (re)connects and starts every
consumer after an error it caught itself. :class:`ConsumerHealth` covers
what it does not see - a consumer the broker cancelled, a channel it
closed, a settle that failed - by dropping the connection, so that the next
``consume()`` reconnects and starts them all again. It also holds what the
health checks (:mod:`telemeter.health.bus`) read: :attr:`~ConsumerHealth.
alive`, :attr:`~ConsumerHealth.connected` and :class:`Stats`.
"""

from __future__ import annotations

import threading
from typing import Any

from oslo_log import log

from telemeter.messaging import backlog

#: The listener's logger: what its parts log keeps the name it had.
LOG = log.getLogger('telemeter.messaging.rabbit')


class Stats:
    """What a listener has seen (read by tests and logged at stop)."""

    def __init__(self) -> None:
        self.received = 0
        self.malformed = 0
        self.requeued = 0
        self.quarantined = 0
        self.failed_deliveries = 0
        self.acknowledged = 0
        self.settle_failed = 0
        self.unhandled = 0
        self.released = 0
        self.restarts = 0
        self.batches = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class ConsumerHealth:
    """The listener's consumers and the connection they consume on.

    A part of :class:`~telemeter.messaging.rabbit.RabbitBatchListener`,
    which sets these attributes; :class:`.rabbit_filling.BatchFilling` and
    :class:`.rabbit_settling.BatchSettling` build on them.
    """

    #: The driver's connection (None before ``start()``, after ``wait()``).
    _conn: Any
    #: Deliveries received and not yet taken into a batch, in tag order.
    _received: list[Any]
    _thread: threading.Thread | None
    stats: Stats
    #: Set once the broker has started every consumer of the listener
    #: (readiness: :func:`telemeter.messaging.consuming`).
    consuming: threading.Event
    #: The depth of the consumed queues (started with the listener).
    backlog: backlog.Backlog

    @property
    def alive(self) -> bool:
        """Whether the consuming thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up (False while the driver
        reconnects)."""
        conn = self._conn
        return bool(conn is not None and conn.connection.connected)

    def _check_consuming(self) -> None:
        """Set :attr:`consuming` once the driver's guarded ``consume()``
        has sent ``basic.consume`` for every queue on a live connection."""
        conn = self._conn
        if (conn is not None and conn.connection.connected
                and not getattr(conn, '_new_tags', None)):
            self.consuming.set()

    def _consumers_missing(self) -> list[str]:
        """The queues whose consumer the current channel no longer has
        (the broker cancelled it, or closed the channel) while the driver
        believes them all started; read from the channel, no round trip."""
        conn = self._conn
        if conn is None or not conn.connection.connected \
                or getattr(conn, '_new_tags', None):
            return []  # the driver's consume() (re)starts them itself
        channel = conn.channel
        if channel is None:
            return []
        if not getattr(channel, 'is_open', False):
            return sorted(c.queue_name for c in conn._consumers)
        started = getattr(channel, 'callbacks', None)
        if started is None:
            return []
        return sorted(c.queue_name for c, tag in conn._consumers.items()
                      if str(tag) not in started)

    def _restart_consumers(self, reason: str) -> None:
        """Drop the connection, so that the next ``consume()`` reconnects
        and starts every consumer again; what it delivered and nobody
        settled goes back to its queues.

        The driver's guarded ``consume()`` restarts the consumers only
        after an error it caught itself. One caught here - a channel the
        broker closed, a consumer it cancelled, a settle that failed -
        would leave it consuming from a connection on which nothing
        arrives any more, for good, with the queues filling up.
        """
        conn = self._conn
        if conn is None:
            return
        LOG.warning('Restarting the consumers on a new connection (%s); the '
                    '%d message(s) received and not handled go back to '
                    'their queues (lost with them if the queues are '
                    'transient and the broker restarted)', reason,
                    len(self._received))
        self._received.clear()
        self.stats.restarts += 1
        self.backlog.forget_unconsumed()
        try:
            conn.connection.collect()
        except Exception:
            LOG.debug('Dropping the connection failed', exc_info=True)
        conn._new_tags = set(conn._consumers.values())
