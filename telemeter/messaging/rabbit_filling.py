"""How :class:`~telemeter.messaging.rabbit.RabbitBatchListener` fills a
batch.

The consumers' callback (:meth:`BatchFilling._deliver`) only appends each
raw delivery to a list. The listener's thread drains the socket into it
until ``batch_size`` messages, ``batch_bytes`` bytes of message bodies
(when set), ``batch_timeout`` seconds since the first one, or a pause in
the flow (:data:`IDLE_GAP`), so a short tail is never left waiting; the
byte bound keeps a batch of large messages (50-sample polling
notifications, 100-sample metering messages) from holding thousands of
decoded samples at once, while small ones still batch by the hundred. A
quiet poll is when the listener looks for consumers gone missing and
deliveries left unsettled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from oslo_messaging._drivers import common as rpc_common

from telemeter.messaging import rabbit_consumers, settlement

#: Seconds without a new message after which a partial batch is handed on.
IDLE_GAP = 0.05
#: Seconds one wait for the first message of a batch may take. Short: the
#: consumers start inside that wait and their first deliveries, which can
#: fill the prefetch window, are only handed on after it; and ``stop()``
#: is noticed between waits.
POLL_TIMEOUT = 0.1


class BatchFilling(rabbit_consumers.ConsumerHealth):
    """Raw deliveries, received and taken in batches.

    A part of :class:`~telemeter.messaging.rabbit.RabbitBatchListener`,
    which sets these attributes.
    """

    batch_size: int
    batch_timeout: float | None
    #: Body bytes after which a batch is handed on (0: no bound).
    batch_bytes: int
    settlement: settlement.SettlementWatch
    #: :meth:`.rabbit_settling.BatchSettling._release_unsettled`.
    _release_unsettled: Callable[[], None]

    def _next_batch(self) -> list[Any]:
        """Raw messages of one batch (empty after a quiet poll)."""
        conn = self._conn
        received = self._received
        if not received:
            try:
                # The driver's guarded consume: (re)connects, (re)declares,
                # starts the consumers, and returns after the first frame.
                # Deliveries may arrive while consumers start, so a time-out
                # can still leave messages to hand over.
                conn.consume(timeout=POLL_TIMEOUT)
            except rpc_common.Timeout:
                pass
            if not received:
                missing = self._consumers_missing() or [
                    f'{queue} (no consumer on the broker)'
                    for queue in self.backlog.unconsumed()]
                if missing:
                    self._restart_consumers(
                        'no consumer on the channel for ' + ', '.join(missing))
                    return []
                self._release_unsettled()
                return []
        deadline = (None if self.batch_timeout is None
                    else time.monotonic() + self.batch_timeout)
        drain = conn.connection.drain_events
        limit = self.batch_bytes
        size = sum(len(m.body) for m in received) if limit else 0
        try:
            while len(received) < self.batch_size and not (
                    limit and size >= limit):
                seen = len(received)
                wait = IDLE_GAP
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                try:
                    drain(timeout=wait)
                except TimeoutError:
                    break
                if limit:
                    size += sum(len(m.body) for m in received[seen:])
        except conn.connection.connection_errors + \
                conn.connection.channel_errors as err:
            self._restart_consumers(f'connection or channel lost while '
                                    f'filling a batch: {err!r}')
            return []
        # Deliveries are in tag order: the first of them have the lowest
        # tags, so acknowledging up to the last of them settles only them.
        end = batch_end([len(m.body) for m in received[:self.batch_size]],
                        limit)
        batch = received[:end]
        del received[:end]
        # Only what the current channel delivered can be acknowledged.
        channel = conn.channel
        return [m for m in batch if m.channel is channel]

    def _deliver(self, message: Any) -> None:
        """The consumers' callback: one raw delivery."""
        self.settlement.delivered(message)
        self._received.append(message)


def batch_end(sizes: list[int], limit: int) -> int:
    """How many of the leading messages (body sizes ``sizes``, at most a
    batch's count) make the batch: all of them, or up to the first whose
    body brings the total to ``limit`` bytes (0: no bound). Never 0 for a
    non-empty list, so a single message larger than the bound still
    goes through."""
    if limit:
        total = 0
        for count, size in enumerate(sizes, 1):
            total += size
            if total >= limit:
                return count
    return len(sizes)
