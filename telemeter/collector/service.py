"""The collector service run by ``telemeter-collector``."""

from __future__ import annotations

import threading
from typing import Any

import cotyledon
import oslo_messaging
from oslo_config import cfg
from oslo_log import log

from telemeter import dispatcher, messaging, systemd
from telemeter.collector import endpoints, udp
from telemeter.health import collector as health_collector
from telemeter.health import server as health_server

LOG = log.getLogger(__name__)


class CollectorService(cotyledon.Service):
    """Consumes ``metering.sample`` / ``event.sample`` and UDP datagrams.

    Several workers (or hosts) share the queues as competing consumers and
    the UDP port through SO_REUSEPORT; a batch is acknowledged only after
    every dispatcher stored it.
    """

    name = 'telemeter-collector'

    def __init__(self, worker_id: int, conf: cfg.ConfigOpts) -> None:
        super().__init__(worker_id)
        self.conf = conf
        self.meter_manager, self.event_manager = (
            dispatcher.load_dispatcher_manager(conf))
        self.listeners: list[Any] = []
        self.endpoints: list[endpoints.CollectorEndpoint] = []
        self.udp_receiver: udp.UDPReceiver | None = None
        self.udp_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()
        self.ledger, self.checks = health_collector.watch(self, conf)
        self.health: health_server.HealthServer | None = None

    def run(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self.health = health_server.serve(self.conf, self.ledger,
                                              self.checks)
            if self.conf.collector.udp_address:
                self.udp_receiver = udp.UDPReceiver(self.conf,
                                                    self.meter_manager)
                self.udp_thread = threading.Thread(
                    target=self.udp_receiver.run, name='udp-receiver',
                    daemon=True)
                self.udp_thread.start()
            transport = messaging.get_transport(self.conf, optional=True)
            if transport is None:
                LOG.warning('No message bus configured: only UDP samples '
                            'will be collected')
                systemd.ready('Collecting UDP samples only')
                return
            secret = self.conf.publisher.telemetry_secret
            # The RabbitMQ batch listener backs off before requeuing.
            delay = (0.0 if messaging.rabbit.supports(transport)
                     else self.conf.collector.requeue_delay)
            topics = self.conf.publisher_notifier
            if list(self.meter_manager):
                self._listen(transport, topics.metering_topic,
                             endpoints.SampleEndpoint(
                                 secret, self.meter_manager, delay))
            if list(self.event_manager):
                self._listen(transport, topics.event_topic,
                             endpoints.EventEndpoint(
                                 secret, self.event_manager, delay))
            systemd.ready_when(
                [messaging.consuming(listener) for listener in self.listeners],
                f'Worker {self.worker_id} consuming {len(self.listeners)} '
                'topic(s)', stop=self._stopped)

    def _listen(self, transport: Any, topic: str, endpoint: Any) -> None:
        listener = messaging.get_batch_notification_listener(
            transport, [oslo_messaging.Target(topic=topic)], [endpoint],
            allow_requeue=True,
            batch_size=self.conf.collector.batch_size,
            batch_timeout=self.conf.collector.batch_timeout,
            batch_bytes=self.conf.collector.batch_max_bytes)
        listener.start()
        self.listeners.append(listener)
        self.endpoints.append(endpoint)
        LOG.info('Collector listening on topic %s', topic)

    def terminate(self) -> None:
        with self._lock:
            self._stopping = True
            self._stopped.set()
            listeners, self.listeners = self.listeners, []
        messaging.stop_listeners(listeners)
        if self.udp_receiver is not None:
            self.udp_receiver.stop()
            self.udp_thread.join()
        for endpoint in self.endpoints:
            LOG.info('Bus %(kind)s endpoint: %(received)d received, '
                     '%(rejected)d rejected, %(dispatched)d dispatched, '
                     '%(requeued)d batches requeued',
                     dict(endpoint.stats(), kind=endpoint.kind))
        messaging.cleanup()
        if self.health is not None:
            self.health.stop()
        LOG.info('Collector stopped')
