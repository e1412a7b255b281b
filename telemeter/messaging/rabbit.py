"""A batch notification listener for oslo.messaging's RabbitMQ driver.

oslo.messaging's own batch listener spends about 0.25 ms of CPU per
message on this project's 2-core machine before an endpoint sees it: one
guarded ``consume()`` round per message, two JSON decodes through kombu's
generic serializer registry, a deep copy of the context, one executor
hand-off per batch and one ``basic.ack`` frame per message. At the rates
the daemons must sustain that is most of a core.

:class:`RabbitBatchListener` keeps everything an operator configures in
oslo.messaging's hands - the transport URL and its failover hosts, TLS,
``[oslo_messaging_rabbit]`` queue options (durable, quorum, HA), the
queues and bindings it declares, reconnection - by using the driver's own
connection and consumer classes. What it replaces is the per-message path:

* one thread per listener drains the socket and fills a batch until
  ``batch_size`` messages, ``batch_bytes`` bytes of message bodies (when
  set), ``batch_timeout`` seconds since the first one, or a pause in the
  flow (:data:`IDLE_GAP`), so a short tail is never left waiting; the
  byte bound keeps a batch of large messages (50-sample polling
  notifications, 100-sample metering messages) from holding thousands of
  decoded samples at once, while small ones still batch by the hundred;
* bodies are decoded once with :mod:`json` (:mod:`.envelope`);
* the batch goes through :class:`~telemeter.messaging.dispatch.
  BatchDispatcher` (oslo.messaging's rules) in that thread;
* then requeued messages are rejected one by one and the rest
  acknowledged with one ``basic.ack(multiple=True)``: a message is settled
  only after its endpoint returned, i.e. after the next hop took what it
  produced;
* a batch that must be requeued is held back first, longer for each
  consecutive one (:class:`.delivery.Backoff`), so an outage is not a busy
  loop;
* a message that cannot be decoded, or that an endpoint keeps failing on
  (isolated from its batch by the dispatcher, counted over deliveries by
  :class:`.delivery.FailedDeliveries`), is moved to the quarantine queue
  (:mod:`.quarantine`) and acknowledged, so one bad message never blocks
  a consumer nor loops (:mod:`.triage`);
* the channel's prefetch is raised to twice the batch size, so
  ``rabbit_qos_prefetch_count`` cannot cap a batch.

If the connection fails mid-batch the messages received on it are
discarded unprocessed: the broker redelivers them. Whatever goes wrong
with the connection or the channel outside the driver's own guarded
``consume()`` - a settle that failed, a consumer the broker cancelled, a
channel it closed - drops the connection, so that the driver reconnects
and starts every consumer again.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import kombu.compression
from oslo_log import log
from oslo_messaging._drivers import common as rpc_common
from oslo_messaging._drivers import impl_rabbit

from telemeter.messaging import (
    backlog,
    declarations,
    delivery,
    dispatch,
    envelope,
    settlement,
    triage,
)

LOG = log.getLogger(__name__)

#: Seconds without a new message after which a partial batch is handed on.
IDLE_GAP = 0.05
#: Seconds one wait for the first message of a batch may take. Short: the
#: consumers start inside that wait and their first deliveries, which can
#: fill the prefetch window, are only handed on after it; and ``stop()``
#: is noticed between waits.
POLL_TIMEOUT = 0.1


def supports(transport: Any) -> bool:
    """Whether ``transport`` runs on oslo.messaging's RabbitMQ driver."""
    return isinstance(getattr(transport, '_driver', None),
                      impl_rabbit.RabbitDriver)


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


class RabbitBatchListener:
    """Consumes ``<topic>.<priority>`` queues of every target in batches.

    The interface is that of the listener oslo.messaging returns:
    ``start()``, ``stop()`` (no new batch is begun) and ``wait()`` (the
    batch in flight is finished and settled, then the connection closed).
    """

    def __init__(self, transport: Any, targets: list[Any],
                 endpoints: list[Any], batch_size: int = 1,
                 batch_timeout: float | None = None,
                 batch_bytes: int = 0,
                 pool: str | None = None,
                 policy: delivery.DeliveryPolicy | None = None) -> None:
        self.transport = transport
        self.driver = transport._driver
        self.targets = targets
        self.dispatcher: dispatch.BatchDispatcher[Any] = (
            dispatch.BatchDispatcher(endpoints, reload=_notification))
        self.batch_size = max(1, batch_size)
        self.batch_timeout = batch_timeout
        #: Body bytes after which a batch is handed on (0: no bound).
        self.batch_bytes = max(0, batch_bytes)
        self.pool = pool
        self.policy = policy or delivery.DeliveryPolicy()
        self.backoff = delivery.Backoff(self.policy)
        self.stats = Stats()
        self.triage = triage.Triage(self.policy, self.stats)
        self._received: list[Any] = []
        self.settlement = settlement.SettlementWatch()
        self._context: Any = None
        self._conn: Any = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: Set once the broker has started every consumer of the listener
        #: (readiness: :func:`telemeter.messaging.consuming`).
        self.consuming = threading.Event()
        #: The depth of the consumed queues (started with the listener).
        self.backlog = backlog.Backlog(
            self.driver, [f'{t.topic}.{p}' for t in targets
                          for p in self.dispatcher.priorities],
            self.policy.backlog_check_interval, self.policy.backlog_warning)

    # -- state ---------------------------------------------------------------

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

    # -- lifecycle ---------------------------------------------------------

    def start(self, override_pool_size: int | None = None) -> None:
        """Declare the queues and start consuming (one thread; the pool
        size of oslo.messaging's executor does not apply)."""
        if self._thread is not None:
            return
        self._context = self.driver._get_connection(
            rpc_common.PURPOSE_LISTEN)
        self._conn = self._context.connection
        self._raise_prefetch()
        for target in self.targets:
            exchange = self.driver._get_exchange(target)
            for priority in self.dispatcher.priorities:
                self._conn.declare_consumer(declarations.topic_consumer(
                    self._conn, self._deliver, exchange,
                    f'{target.topic}.{priority}', self.pool))
        if not (self._conn.durable or self._conn.rabbit_quorum_queue):
            LOG.warning('Consuming transient queues (%s): what they hold is '
                        'lost if the broker restarts. Set [oslo_messaging_'
                        'rabbit] amqp_durable_queues = true (or rabbit_'
                        'quorum_queue = true) here and on every service '
                        'that sends to them (README, "Delivery").',
                        ', '.join(sorted({t.topic for t in self.targets})))
        self._stopping.clear()
        self.backlog.start()
        self._thread = threading.Thread(
            target=self._run, name='batch-listener', daemon=True)
        self._thread.start()

    def _raise_prefetch(self) -> None:
        """At least two batches in flight per consumer, whatever
        ``rabbit_qos_prefetch_count`` says.

        RabbitMQ applies a channel's prefetch to the consumers started
        after it is set, and the driver sets it on every new channel from
        this attribute: set both before any consumer starts.
        """
        conn = self._conn
        prefetch = max(conn.rabbit_qos_prefetch_count, 2 * self.batch_size)
        if prefetch != conn.rabbit_qos_prefetch_count:
            conn.rabbit_qos_prefetch_count = prefetch
            if conn.channel is not None:
                conn.channel.basic_qos(0, prefetch, False)

    def stop(self) -> None:
        """Begin no new batch."""
        self._stopping.set()
        self.backlog.stop()

    def wait(self) -> None:
        """Finish the batch in flight, then close the connection."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._context is not None:
            try:
                self._context.close()
            except Exception:
                LOG.debug('Closing the listener connection failed',
                          exc_info=True)
            self._context = self._conn = None
        LOG.debug('Batch listener stopped: %s', self.stats.as_dict())

    # -- the loop ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                batch = self._next_batch()
            except Exception as err:
                # ConsumerCancelled (the broker cancelled a consumer) is
                # neither a connection nor a channel error for kombu.
                LOG.exception('Consuming failed')
                self._restart_consumers(f'consuming failed: {err!r}')
                self._stopping.wait(1.0)
                continue
            if not self.consuming.is_set():
                self._check_consuming()
            if batch:
                try:
                    self._handle(batch)
                except Exception:
                    # A bug, not the data's fault: requeue the batch after a
                    # back-off and keep consuming.
                    LOG.exception('Handling a batch of %d message(s) failed; '
                                  'requeuing it', len(batch))
                    self._stopping.wait(self.backoff.next_delay())
                    self._settle(batch, batch)

    def _check_consuming(self) -> None:
        """Set :attr:`consuming` once the driver's guarded ``consume()``
        has sent ``basic.consume`` for every queue on a live connection."""
        conn = self._conn
        if (conn is not None and conn.connection.connected
                and not getattr(conn, '_new_tags', None)):
            self.consuming.set()

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

    def _release_unsettled(self) -> None:
        """Requeue deliveries of the channel that were neither handled nor
        settled (:mod:`.settlement`); they would stay unacknowledged for the
        life of the connection."""
        conn = self._conn
        if conn is None or not conn.connection.connected:
            return  # a lost connection gives its deliveries back itself
        channel = conn.channel
        if not getattr(channel, 'is_open', False):
            return
        found = self.settlement.unsettled(channel, len(self._received))
        if found is None:
            return
        first, last = found
        LOG.warning('Deliveries %d to %d of this listener\'s channel were '
                    'never settled; asking the broker to deliver them again',
                    first, last)
        try:
            channel.basic_recover(requeue=True)
        except Exception as err:
            LOG.warning('Returning unsettled deliveries failed (%s); they '
                        'go back to their queue when the connection '
                        'closes', err)
            return
        self.stats.released += last - first + 1

    def _handle(self, raw: list[Any]) -> None:
        batch = []
        poison: list[tuple[Any, str]] = []
        for message in raw:
            try:
                priority, notification = envelope.decode(_body(message))
            except Exception as err:
                # MalformedMessage, or what a bad compression header makes
                # kombu raise: the same message fails the same way again.
                self.stats.malformed += 1
                LOG.error('Quarantining a malformed message from %s: %s '
                          '(body %.200r)', triage.queue_of(message), err,
                          message.body)
                poison.append((message, f'malformed: {err}'))
                continue
            batch.append((priority, notification, message))
        self.stats.received += len(raw)
        self.stats.batches += 1
        requeue: list[Any] = []
        if batch:
            outcome = self.dispatcher.dispatch(batch)
            self.stats.unhandled += outcome.unhandled
            requeue.extend(outcome.requeue)
            self.triage.judge(outcome, poison, requeue)
            self.triage.keep_copies(self._conn, outcome.rejected, requeue)
        if requeue:
            delay = self.backoff.next_delay()
            LOG.warning('Requeuing %d of %d message(s) in %.1f s',
                        len(requeue), len(raw), delay)
            self._stopping.wait(delay)
        else:
            self.backoff.reset()
        requeue.extend(self.triage.quarantine(self._conn, poison))
        self._settle(raw, requeue)
        self.triage.settled(raw, requeue)

    def _settle(self, raw: list[Any], requeue: list[Any]) -> None:
        """Requeue ``requeue``, then acknowledge every other message of
        ``raw`` with one ``basic.ack(multiple=True)``."""
        try:
            for message in requeue:
                message.channel.basic_reject(message.delivery_tag,
                                             requeue=True)
            self.stats.requeued += len(requeue)
            chosen = {id(m) for m in requeue}
            last = next((m for m in reversed(raw) if id(m) not in chosen),
                        None)
            if last is not None:
                last.channel.basic_ack(last.delivery_tag, multiple=True)
                self.stats.acknowledged += len(raw) - len(requeue)
            self.settlement.settled(raw)
        except Exception as err:
            self.stats.settle_failed += len(raw)
            LOG.warning('Settling a batch of %d message(s) failed (%s); the '
                        'broker will redeliver them', len(raw), err)
            self._restart_consumers(f'settling failed: {err!r}')

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


def _body(message: Any) -> bytes | str:
    """The body of a raw AMQP message, decompressed if the sender used
    ``[oslo_messaging_rabbit] kombu_compression``."""
    headers = message.headers or {}
    compression = headers.get('compression')
    if compression:
        return kombu.compression.decompress(message.body, compression)
    return message.body


def _notification(message: Any) -> envelope.Notification:
    """The notification of a raw AMQP message, decoded afresh."""
    return envelope.decode(_body(message))[1]
