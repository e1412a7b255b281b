"""Which ``telemeter-pipe-*`` queues this notification agent consumes.

Agents join the tooz group ``telemeter.notification``; queue index ``i``
belongs to the member the group's consistent hash ring assigns ``i`` to.
Because members learn of joins and leaves at different moments, ownership
alone could let two agents consume one queue for a while (and a stateful
transformer would then compute rates from samples split between them).
So an agent consumes queue ``i`` only while it also holds the tooz lock
``telemeter.notification.queue-<i>``: a new owner waits until the previous
one has stopped consuming (listener stopped and in-flight batches finished)
and released the lock. Locks of a dead agent expire with its heartbeat.

Without ``[coordination] backend_url`` the single agent owns every queue.
"""

from __future__ import annotations

import threading
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_log import log

from telemeter import coordination, messaging
from telemeter.notification import pipe, pipe_endpoints

LOG = log.getLogger(__name__)

GROUP = 'telemeter.notification'


def lock_name(index: int) -> str:
    return f'{GROUP}.queue-{index}'


class QueueOwnership:
    """Keeps the IPC listener on exactly the queues this agent may consume.

    :meth:`refresh` is run at start and then every ``[coordination]
    check_watchers`` seconds by :meth:`start`'s thread, and on SIGHUP with
    ``force=True`` (the pipelines, hence the targets, may have changed).
    """

    def __init__(self, conf: cfg.ConfigOpts,
                 coordinator: coordination.PartitionCoordinator,
                 transport: Any, sample_pipelines: Any,
                 event_pipelines: Any) -> None:
        self.conf = conf
        self.coordinator = coordinator
        self.transport = transport
        self.sample_pipelines = sample_pipelines
        self.event_pipelines = event_pipelines
        self.queues = conf.notification.pipeline_processing_queues
        self.locks: dict[int, Any] = {}
        self.consuming: set[int] = set()
        self.listener: Any = None
        self.members: set[bytes] = set()
        #: Transformer state per pipeline queue (dropped with the queue).
        self.states = pipe_endpoints.TransformerStates()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- ownership -------------------------------------------------------

    def _wanted(self) -> set[int]:
        return {i for i in range(self.queues)
                if self.coordinator.belongs_to_self(GROUP, i)}

    def _still_held(self, index: int) -> bool:
        try:
            return bool(self.locks[index].is_still_owner())
        except coordination.tooz().ToozError:
            LOG.warning('Cannot confirm the lock of queue %d; it stops '
                        'being consumed until confirmed', index,
                        exc_info=True)
            return False

    def _acquire(self, index: int) -> bool:
        lock = self.coordinator.get_lock(lock_name(index))
        try:
            if lock.acquire(blocking=False):
                self.locks[index] = lock
                return True
        except coordination.tooz().ToozError:
            LOG.warning('Cannot take the lock of queue %d', index,
                        exc_info=True)
        return False

    def _release(self, index: int) -> None:
        lock = self.locks.pop(index, None)
        if lock is None:
            return
        try:
            lock.release()
        except coordination.tooz().ToozError:
            LOG.warning('Cannot release the lock of queue %d; it expires '
                        'on its own', index, exc_info=True)

    def refresh(self, force: bool = False) -> None:
        """Recompute ownership and move the listener if it changed."""
        with self._lock:
            if self._stop.is_set() and not force:
                return
            if not self.coordinator.is_active:
                self._apply(set(range(self.queues)), set(), force)
                return
            self.coordinator.run_watchers()
            members = self.coordinator.members(GROUP)
            if members != self.members:
                LOG.info('Notification agents in group %s: %d member(s)',
                         GROUP, len(members))
                self.members = members
            wanted = self._wanted()
            held = set(self.locks)
            lost = {i for i in held & wanted if not self._still_held(i)}
            for index in sorted(lost):
                # Let go (tooz stops heart-beating it), then take it again
                # if nobody holds it: a backend that restarted without its
                # data lost every lock, and re-taking ours at once keeps
                # the queue (and its transformer state) where it was.
                self._release(index)
                if self._acquire(index):
                    lost.discard(index)
            to_release = held - wanted
            for index in sorted(wanted - held - lost):
                self._acquire(index)
            final = set(self.locks) - to_release
            self._apply(final, to_release, force)

    def _apply(self, final: set[int], to_release: set[int],
               force: bool) -> None:
        previous = set(self.consuming)
        if final != previous or to_release or force:
            self._restart_listener(final, previous - final, force)
        for index in sorted(to_release):
            self._release(index)
        waiting = self._wanted_waiting(final)
        if waiting:
            LOG.debug('Waiting for the previous owners of queues %s',
                      sorted(waiting))

    def _wanted_waiting(self, final: set[int]) -> set[int]:
        if not self.coordinator.is_active:
            return set()
        return self._wanted() - final

    # -- listener --------------------------------------------------------

    def _targets(self, indices: set[int]) -> list[oslo_messaging.Target]:
        names = [p.name for p in self.sample_pipelines.current.pipelines]
        names += [p.name for p in self.event_pipelines.current.pipelines]
        return [oslo_messaging.Target(topic=pipe.queue_topic(name, index))
                for index in sorted(indices) for name in names]

    def _restart_listener(self, indices: set[int],
                          given_up: set[int] | None = None,
                          reloaded: bool = False) -> None:
        old, self.listener = self.listener, None
        if old is not None:
            # Every batch in flight is finished (and acknowledged) before
            # the queues are given up.
            messaging.stop_listeners([old])
        # Nothing consumes now: drop the transformer state of the queues
        # given up (all of it when the pipelines were reloaded).
        if reloaded:
            self.states.clear()
        for index in given_up or ():
            self.states.forget(index)
        self.consuming = set(indices)
        targets = self._targets(indices)
        if targets:
            batch_size = self.conf.notification.batch_size
            listener = messaging.get_batch_notification_listener(
                self.transport, targets,
                pipe_endpoints.endpoints(self.conf, self.sample_pipelines,
                                         self.event_pipelines, self.states),
                allow_requeue=True, batch_size=batch_size,
                batch_timeout=self.conf.notification.batch_timeout,
                batch_bytes=self.conf.notification.batch_max_bytes)
            pool = (1 if batch_size > 1
                    else self.conf.max_parallel_requests)
            listener.start(override_pool_size=pool)
            self.listener = listener
        LOG.info('Consuming pipeline queues %s', sorted(indices))

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Refresh now, then every ``check_watchers`` seconds."""
        self._stop.clear()
        self.refresh()
        self._thread = threading.Thread(target=self._run,
                                        name='pipe-ownership', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = self.conf.coordination.check_watchers
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception:
                LOG.error('Refreshing the pipeline queue ownership failed',
                          exc_info=True)

    def stop(self) -> None:
        """Stop consuming, then give every queue up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            old, self.listener = self.listener, None
            if old is not None:
                messaging.stop_listeners([old])
            self.consuming = set()
            self.states.clear()
            for index in list(self.locks):
                self._release(index)
