"""Whether a worker's consumers keep up: the depth of the queues it consumes.

A collector or agent that stores or handles fewer messages per second than
arrive shows nothing wrong by itself: it consumes, acknowledges, and the
queue grows. :class:`Backlog` looks at the queues every ``[delivery]
backlog_check_interval`` seconds (a passive ``queue.declare`` on a channel
of its own, never on the consuming connection), keeps the depth for the
``backlog`` gauge of ``/metrics`` and logs a warning while a queue holds
more than ``[delivery] backlog_warning`` messages and keeps growing, and
once when it has caught up.

It also sees the queues' consumers: a queue that holds messages and has
no consumer at two looks in a row, while this worker believes it consumes
it, means the worker's consumer is gone without an error it could see;
:meth:`Backlog.unconsumed` names them, and the listener then starts its
consumers again (:mod:`.rabbit`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from oslo_log import log
from oslo_messaging._drivers import common as rpc_common

LOG = log.getLogger(__name__)


class Backlog:
    """The depth of ``queues`` on the broker of ``driver`` (oslo.messaging's
    RabbitMQ driver), looked at every ``interval`` seconds."""

    def __init__(self, driver: Any, queues: Iterable[str], interval: float,
                 warning: int) -> None:
        self.driver = driver
        self.queues = sorted(set(queues))
        self.interval = interval
        self.warning = warning
        #: Ready messages per queue at the last look (a queue that could not
        #: be looked at is left out).
        self.depth: dict[str, int] = {}
        self._behind: set[str] = set()
        #: Consumers per queue at the last look.
        self.consumers: dict[str, int] = {}
        #: Looks in a row at which a queue held messages and had no
        #: consumer.
        self._orphaned: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or self.interval <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='backlog',
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop looking (a look in progress is not waited for: it may be
        stuck on a broker that is away)."""
        self._stop.set()
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.judge(self.look())
            except Exception as err:  # the broker is away: try next time
                self._orphaned.clear()
                LOG.debug('Could not look at the queue depths: %s', err)

    def look(self) -> dict[str, int]:
        """Ready messages per queue, now (one passive declare each)."""
        found: dict[str, int] = {}
        consumers: dict[str, int] = {}
        with self.driver._get_connection(rpc_common.PURPOSE_SEND) as ctx:
            for queue in self.queues:
                channel = ctx.connection.connection.channel()
                try:
                    ok = channel.queue_declare(queue=queue, passive=True)
                    found[queue] = ok.message_count
                    consumers[queue] = ok.consumer_count
                except Exception as err:  # not declared (yet): unknown
                    LOG.debug('No depth for queue %s: %s', queue, err)
                finally:
                    try:
                        channel.close()
                    except Exception:
                        LOG.debug('Closing a channel failed', exc_info=True)
        self.consumers = consumers
        return found

    def judge(self, found: dict[str, int]) -> None:
        """Remember ``found`` and log the queues that fall behind or have
        caught up since the previous look."""
        previous, self.depth = self.depth, found
        self._orphaned = {
            queue: self._orphaned.get(queue, 0) + 1
            for queue, depth in found.items()
            if depth and self.consumers.get(queue) == 0}
        for queue, depth in found.items():
            before = previous.get(queue)
            if depth > self.warning and before is not None and depth > before:
                LOG.warning(
                    'Queue %(queue)s holds %(depth)d messages (%(delta)+d in '
                    '%(interval)gs): its consumers are falling behind. Add '
                    'workers or hosts of this daemon, or look for a slow '
                    'next hop (database, publisher target).',
                    {'queue': queue, 'depth': depth, 'delta': depth - before,
                     'interval': self.interval})
                self._behind.add(queue)
            elif queue in self._behind and depth <= self.warning:
                LOG.info('Queue %s has caught up: %d messages', queue, depth)
                self._behind.discard(queue)

    def unconsumed(self, looks: int = 2) -> list[str]:
        """The queues that held messages and had no consumer at the last
        ``looks`` looks in a row."""
        return sorted(q for q, n in self._orphaned.items() if n >= looks)

    def forget_unconsumed(self) -> None:
        """Count afresh (the consumers were just started again)."""
        self._orphaned.clear()
