"""The notification agent service run by ``telemeter-agent-notification``."""

from __future__ import annotations

import threading
import time
from typing import Any

import cotyledon
from cotyledon import types as cotyledon_types
from oslo_config import cfg
from oslo_log import log
from stevedore import extension

from telemeter import coordination, messaging, pipeline, systemd
from telemeter.health import notification as health_notification
from telemeter.health import server as health_server
from telemeter.notification import events, partitioning, pipe

LOG = log.getLogger(__name__)


class ReloadablePipelines:
    """What handlers see as their manager: ``.conf`` and ``.publisher()``
    of the current pipeline manager, which SIGHUP may replace."""

    def __init__(self, conf: cfg.ConfigOpts, builder: Any) -> None:
        self.conf = conf
        self._builder = builder
        self.current = builder(conf)

    def publisher(self) -> pipeline.PublishContext:
        return self.current.publisher()

    def reload(self) -> bool:
        """Swap in freshly loaded pipelines; keep the old ones on error."""
        try:
            new = self._builder(self.conf)
        except Exception as err:
            LOG.error('Keeping the running pipelines: reloading %s failed: '
                      '%s', self.current.cfg_file, err)
            return False
        self.current = new
        LOG.info('Pipelines reloaded from %s', new.cfg_file)
        return True


class NotificationService(cotyledon.Service):
    """Listens for notifications and feeds the sample and event pipelines.

    ``run`` starts one batch listener per messaging URL on every topic x
    exchange the handlers ask for. With ``[notification]
    workload_partitioning`` the handlers send to the
    ``telemeter-pipe-<pipeline>-<i>`` queues instead and this agent
    consumes the queues it owns (see :mod:`.partitioning`). ``terminate``
    stops consuming and waits for the batches in flight, whose messages are
    only acknowledged once processed.
    """

    name = 'telemeter-agent-notification'
    NOTIFICATION_NAMESPACE = 'telemeter.notification'

    def __init__(self, worker_id: int, conf: cfg.ConfigOpts,
                 coordination_id: str | None = None) -> None:
        super().__init__(cotyledon_types.WorkerId(worker_id))
        self.conf = conf
        self.startup_delay = worker_id
        self.coordination_id = coordination_id
        self.listeners: list[Any] = []
        self.sample_pipelines: ReloadablePipelines | None = None
        self.event_pipelines: ReloadablePipelines | None = None
        self.partition_coordinator: coordination.PartitionCoordinator | None
        self.partition_coordinator = None
        self.ownership: partitioning.QueueOwnership | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()
        #: The endpoints of the main listeners (handlers, events).
        self.endpoints: list[Any] = []
        #: Called with (replaced pipeline manager, 'sample' | 'event').
        self.on_pipelines_replaced: Any = None
        self.ledger, self.checks = health_notification.watch(self)
        self.health: health_server.HealthServer | None = None

    def run(self) -> None:
        self.health = health_server.serve(self.conf, self.ledger,
                                          self.checks)
        # Staggered start so that several workers do not race for queues.
        time.sleep(self.startup_delay)
        self.sample_pipelines = ReloadablePipelines(
            self.conf, pipeline.setup_pipeline)
        self.event_pipelines = ReloadablePipelines(
            self.conf, pipeline.setup_event_pipeline)
        transport = messaging.get_transport(self.conf)
        partitioned = self.conf.notification.workload_partitioning
        if partitioned:
            sample_manager: Any = pipe.PipePublisher(
                self.conf, self.sample_pipelines, pipe.SAMPLES, transport)
            event_manager: Any = pipe.PipePublisher(
                self.conf, self.event_pipelines, pipe.EVENTS, transport)
            member = (self.coordination_id.encode('ascii')
                      if self.coordination_id else None)
            coordinator = coordination.PartitionCoordinator(self.conf, member)
            coordinator.start()
            self.partition_coordinator = coordinator
        else:
            sample_manager = self.sample_pipelines
            event_manager = self.event_pipelines

        handlers = self._load_handlers(sample_manager)
        endpoints = [events.EventsNotificationEndpoint(event_manager)]
        endpoints.extend(handlers)
        self.endpoints = endpoints
        targets = self._targets(handlers)
        urls = self.conf.notification.messaging_urls or [None]
        with self._lock:
            if self._stopping:
                return
            batch_size = self.conf.notification.batch_size
            # Batches are processed one at a time, in order (Ceilometer
            # does the same); single messages go to a pool of threads.
            pool = 1 if batch_size > 1 else self.conf.max_parallel_requests
            for url in urls:
                listener = messaging.get_batch_notification_listener(
                    messaging.get_transport(self.conf, url), targets,
                    endpoints, allow_requeue=True, batch_size=batch_size,
                    batch_timeout=self.conf.notification.batch_timeout,
                    batch_bytes=self.conf.notification.batch_max_bytes)
                listener.start(override_pool_size=pool)
                self.listeners.append(listener)
            if partitioned:
                coordinator.join_partitioned_group(partitioning.GROUP)
                self.ownership = partitioning.QueueOwnership(
                    self.conf, coordinator, transport,
                    self.sample_pipelines, self.event_pipelines)
                self.ownership.start()
            systemd.ready_when(
                [messaging.consuming(listener) for listener in self.listeners],
                f'Worker {self.worker_id} consuming notifications',
                stop=self._stopped)
        LOG.info('Notification agent listening on %d target(s) with %d '
                 'endpoint(s)%s', len(targets), len(endpoints),
                 ' (workload partitioning)' if partitioned else '')

    def _load_handlers(self, manager: Any) -> list[Any]:
        handlers: extension.ExtensionManager[Any] = extension.ExtensionManager(
            namespace=self.NOTIFICATION_NAMESPACE,
            invoke_on_load=True,
            invoke_args=(manager,),
            propagate_map_exceptions=False)
        if not list(handlers):
            LOG.warning('Failed to load any notification handlers for %s',
                        self.NOTIFICATION_NAMESPACE)
        return [ext.obj for ext in handlers]

    def _targets(self, handlers: list[Any]) -> list[Any]:
        targets: list[Any] = []
        for handler in handlers:
            for target in handler.get_targets(self.conf):
                if target not in targets:
                    targets.append(target)
        return targets

    def terminate(self) -> None:
        with self._lock:
            self._stopping = True
            self._stopped.set()
            listeners, self.listeners = self.listeners, []
            ownership, self.ownership = self.ownership, None
        # The main listeners first: they feed the pipeline queues.
        messaging.stop_listeners(listeners)
        if ownership is not None:
            ownership.stop()
        if self.partition_coordinator is not None:
            self.partition_coordinator.stop()
        messaging.cleanup()
        if self.health is not None:
            self.health.stop()
        LOG.info('Notification agent stopped')

    def reload(self) -> None:
        """SIGHUP: reload the pipeline files, keeping the old on error."""
        changed = False
        for kind, pipelines in (('sample', self.sample_pipelines),
                                ('event', self.event_pipelines)):
            if pipelines is not None:
                old = pipelines.current
                if pipelines.reload():
                    changed = True
                    if self.on_pipelines_replaced is not None:
                        # Their counts stay in the ledger.
                        self.on_pipelines_replaced(old, kind)
        if changed and self.ownership is not None:
            # Pipeline names make the queue names: follow them.
            self.ownership.refresh(force=True)
