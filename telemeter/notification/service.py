"""The notification agent service run by ``telemeter-agent-notification``."""

from __future__ import annotations

import threading
import time
from typing import Any

import cotyledon
from oslo_config import cfg
from oslo_log import log
from stevedore import extension

from telemeter import messaging, pipeline

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

    def reload(self) -> None:
        """Swap in freshly loaded pipelines; keep the old ones on error."""
        try:
            new = self._builder(self.conf)
        except Exception as err:
            LOG.error('Keeping the running pipelines: reloading %s failed: '
                      '%s', self.current.cfg_file, err)
            return
        self.current = new
        LOG.info('Pipelines reloaded from %s', new.cfg_file)


class NotificationService(cotyledon.Service):
    """Listens for notifications and feeds the sample (and event) pipelines.

    ``run`` starts one batch listener per messaging URL; ``terminate`` stops
    consuming and waits for the batches in flight, whose messages are only
    acknowledged once processed.
    """

    name = 'telemeter-agent-notification'
    NOTIFICATION_NAMESPACE = 'telemeter.notification'

    def __init__(self, worker_id: int, conf: cfg.ConfigOpts,
                 coordination_id: str | None = None) -> None:
        super().__init__(worker_id)
        self.conf = conf
        self.startup_delay = worker_id
        self.coordination_id = coordination_id
        self.listeners: list[Any] = []
        self.sample_pipelines: ReloadablePipelines | None = None
        self.event_pipelines: ReloadablePipelines | None = None
        self._lock = threading.Lock()
        self._stopping = False

    def run(self) -> None:
        # Staggered start so that several workers do not race for queues.
        time.sleep(self.startup_delay)
        self.sample_pipelines = ReloadablePipelines(
            self.conf, pipeline.setup_pipeline)
        self.event_pipelines = ReloadablePipelines(
            self.conf, pipeline.setup_event_pipeline)
        endpoints = self._load_handlers(self.sample_pipelines)
        targets = self._targets(endpoints)
        urls = self.conf.notification.messaging_urls or [None]
        with self._lock:
            if self._stopping:
                return
            for url in urls:
                transport = messaging.get_transport(self.conf, url)
                listener = messaging.get_batch_notification_listener(
                    transport, targets, endpoints, allow_requeue=True)
                listener.start(
                    override_pool_size=self.conf.max_parallel_requests)
                self.listeners.append(listener)
        LOG.info('Notification agent listening on %d target(s) with %d '
                 'endpoint(s)', len(targets), len(endpoints))

    def _load_handlers(self, manager: Any) -> list[Any]:
        handlers = extension.ExtensionManager(
            namespace=self.NOTIFICATION_NAMESPACE,
            invoke_on_load=True,
            invoke_args=(manager,),
            propagate_map_exceptions=False)
        if not list(handlers):
            LOG.warning('Failed to load any notification handlers for %s',
                        self.NOTIFICATION_NAMESPACE)
        return [ext.obj for ext in handlers]

    def _targets(self, endpoints: list[Any]) -> list[Any]:
        targets: list[Any] = []
        for endpoint in endpoints:
            for target in endpoint.get_targets(self.conf):
                if target not in targets:
                    targets.append(target)
        return targets

    def terminate(self) -> None:
        with self._lock:
            self._stopping = True
            listeners, self.listeners = self.listeners, []
        messaging.stop_listeners(listeners)
        messaging.cleanup()
        LOG.info('Notification agent stopped')

    def reload(self) -> None:
        """SIGHUP: reload the pipeline files, keeping the old on error."""
        for pipelines in (self.sample_pipelines, self.event_pipelines):
            if pipelines is not None:
                pipelines.reload()
