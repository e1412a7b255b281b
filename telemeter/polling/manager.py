"""The polling agent: polls pollsters periodically and sends their samples.

:class:`AgentManager` is the cotyledon service run by ``telemeter-polling``.
It loads pollsters and discoverers of its namespaces, groups the pollsters
that the sources of polling.yaml accept into one :class:`PollingTask` per
interval and runs each task in its own thread: once at start (after an
optional random delay) and then every ``interval`` seconds. Samples are
signed and sent on the notification bus as ``telemetry.polling``
notifications, consumed by the notification agent's ``_sample`` handler.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import cotyledon
from cotyledon import types as cotyledon_types
from oslo_config import cfg
from oslo_log import log

from telemeter import coordination, messaging, systemd
from telemeter.health import polling as health_polling
from telemeter.health import server as health_server
from telemeter.keystone_client import KeystoneClient
from telemeter.polling import definitions as polling_pipeline
from telemeter.polling import (
    discovering,
    heartbeat,
    loading,
    partition,
    sending,
)
from telemeter.polling.task import PollingTask, Resources, TaskParts

__all__ = ['AgentManager', 'EmptyPollstersList', 'PollingTask',
           'PollsterListForbidden', 'Resources', 'TaskParts',
           'check_pollster_list', 'coordination_backend_url',
           'hash_of_resources']

# Re-exported: the public names of the polling manager before its split.
PollsterListForbidden = loading.PollsterListForbidden
EmptyPollstersList = loading.EmptyPollstersList
check_pollster_list = loading.check_pollster_list
coordination_backend_url = loading.coordination_backend_url
hash_of_resources = partition.hash_of_resources

LOG = log.getLogger(__name__)

PUBLISHER_ID = sending.PUBLISHER_ID
EVENT_TYPE = sending.EVENT_TYPE
DEFAULT_NAMESPACES = ('compute', 'central')

OPTS = [
    cfg.BoolOpt('batch_polled_samples',
                default=True,
                deprecated_for_removal=True,
                deprecated_reason='Use [polling] batch_size instead.',
                help='To reduce polling agent load, samples are sent to the '
                     'notification agent in a batch. To gain higher '
                     'throughput at the cost of load set this to False.'),
    cfg.IntOpt('shuffle_time_before_polling_task',
               default=0,
               min=0,
               help='To reduce large requests at same time to Nova or other '
                    'components from different compute agents, shuffle '
                    'start time of polling task.'),
]

POLLING_OPTS = [
    cfg.StrOpt('cfg_file',
               default='polling.yaml',
               help='Configuration file for polling definition.'),
    cfg.StrOpt('partitioning_group_prefix',
               deprecated_group='central',
               help='Work-load partitioning group prefix. Use only if you '
                    'want to run multiple polling agents with different '
                    'config files. For each sub-group of the agent pool '
                    'with the same partitioning_group_prefix a disjoint '
                    'subset of pollsters should be loaded.'),
    cfg.IntOpt('batch_size',
               default=50,
               min=0,
               help='Batch size of samples to send to notification agent. '
                    'Set to 0 to disable.'),
    cfg.StrOpt('heartbeat_socket_dir',
               help='Path to directory where the socket file for polling '
                    'heartbeat will be created.'),
    cfg.MultiStrOpt('pollsters_definitions_dirs',
                    default=['/etc/telemeter/pollsters.d'],
                    help='List of directories with YAML files used to '
                         'create dynamic pollsters.'),
]


class AgentManager(cotyledon.Service):
    """The polling agent service (one cotyledon worker).

    Built of parts constructed once and handed to every
    :class:`PollingTask` as one :class:`TaskParts`: the
    :class:`~telemeter.polling.discovering.KeystoneSession` of the cycle,
    :class:`~telemeter.polling.partition.Partitioning` (tooz membership),
    :class:`~telemeter.polling.discovering.Discovery`,
    :class:`~telemeter.polling.sending.SampleSender` and
    :class:`~telemeter.polling.heartbeat.HeartbeatReporter`. The agent
    itself schedules the tasks' threads and is what pollsters receive as
    ``manager`` (a :class:`~telemeter.polling.plugin_base.PollingContext`).

    :param namespaces: agent namespaces (default ``compute central``)
    :param pollster_list: fnmatch patterns restricting the pollsters
    :param queue: optional ``multiprocessing.Queue`` fed with
        ``{'pollster': name, 'timestamp': ts}`` for the heartbeat service
    """

    name = 'polling'

    def __init__(self, worker_id: int, conf: cfg.ConfigOpts,
                 namespaces: list[str] | None = None,
                 pollster_list: list[str] | None = None,
                 queue: heartbeat.HeartbeatQueue | None = None) -> None:
        super().__init__(cotyledon_types.WorkerId(worker_id))
        self.conf = conf
        if isinstance(namespaces, str):
            namespaces = [namespaces]
        self.namespaces = list(namespaces or DEFAULT_NAMESPACES)
        self.pollster_list = list(pollster_list or [])
        check_pollster_list(conf, self.pollster_list)

        loader = loading.PluginLoader(conf)
        self.extensions = loader.load_pollsters(self.namespaces,
                                                self.pollster_list)
        if not self.extensions:
            raise EmptyPollstersList()
        self.discoveries = loader.load_discoveries(self.namespaces)
        self.polling_manager = polling_pipeline.setup_polling(conf)

        self.keystone_session = discovering.KeystoneSession(conf)
        self.partitioning = partition.Partitioning(conf, self.namespaces)
        self.discovery = discovering.Discovery(
            conf, self.discoveries, self.keystone_session, self.partitioning)
        self.transport = messaging.get_transport(conf)
        self.sender = sending.SampleSender(conf, messaging.get_notifier(
            self.transport, PUBLISHER_ID,
            driver=conf.publisher_notifier.telemetry_driver))
        self.parts = TaskParts(
            context=self, discovery=self.discovery,
            partitioning=self.partitioning, sender=self.sender,
            heartbeat=heartbeat.HeartbeatReporter(queue))

        self.polling_tasks: dict[int, PollingTask] = {}
        self._workers: list[threading.Thread] = []
        self._stop_event = threading.Event()
        self._workers_lock = threading.Lock()

        self.ledger, self.checks = health_polling.watch(self)
        self.health: health_server.HealthServer | None = None

    # -- what pollsters and discoverers receive (PollingContext: conf too) -

    @property
    def keystone(self) -> KeystoneClient:
        """Keystone client of the current cycle (polling.md §2)."""
        return self.keystone_session.client

    # -- the parts, seen from the agent (polling.md §5, §6; health) ---------

    def discover(self, discovery: list[str] | None = None,
                 discovery_cache: dict | None = None) -> list[Any]:
        """Resources of the discovery URLs (polling.md §5)."""
        return self.discovery.discover(self, discovery, discovery_cache)

    def construct_group_id(self, discovery_group_id: str) -> str:
        """Partitioning group name: ``<prefix>-<group id>``."""
        return self.partitioning.construct_group_id(discovery_group_id)

    def belongs_to_self(self, group_id: str, resource: Any) -> bool:
        """Whether this agent polls ``resource`` (always without tooz)."""
        return self.partitioning.belongs_to_self(group_id, resource)

    @property
    def partition_coordinator(self
                              ) -> coordination.PartitionCoordinator | None:
        """The tooz coordinator while partitioning, else None."""
        return self.partitioning.coordinator

    @property
    def notifier(self) -> sending.SampleNotifier:
        """The ``telemeter.polling`` notifier of the sender."""
        return self.sender.notifier

    @property
    def produced(self) -> dict[str, int]:
        """Samples polled and sent, per pollster."""
        return self.sender.produced

    @property
    def notifications_sent(self) -> int:
        """Notifications sent."""
        return self.sender.notifications_sent

    def partitioning_groups(self) -> list[str]:
        """Every tooz group this agent must be a member of (§6)."""
        return self.partitioning.groups(self.discoveries,
                                        self.polling_manager.sources)

    # -- tasks and threads --------------------------------------------------

    def setup_polling_tasks(self) -> dict[int, PollingTask]:
        """``{interval: PollingTask}`` for the pollsters sources accept."""
        polling_tasks: dict[int, PollingTask] = {}
        for source in self.polling_manager.sources:
            for pollster in self.extensions:
                if source.support_meter(pollster.name):
                    interval = source.get_interval()
                    task = polling_tasks.get(interval)
                    if task is None:
                        task = polling_tasks[interval] = PollingTask(
                            self.parts)
                    task.add(pollster, source)
        return polling_tasks

    def interval_task(self, task: PollingTask) -> None:
        """One cycle of ``task`` with a fresh keystone client."""
        self.keystone_session.reset()
        task.poll_and_notify()

    def _task_loop(self, interval: int, task: PollingTask, delay: float,
                   stop: threading.Event) -> None:
        if stop.wait(delay):
            return
        next_run = time.monotonic()
        while not stop.is_set():
            try:
                self.interval_task(task)
            except Exception:
                LOG.exception('Polling task of interval %ss failed', interval)
            next_run += interval
            now = time.monotonic()
            if next_run < now:
                LOG.warning('Polling of interval %(i)ss took %(t).1fs, '
                            'longer than its interval',
                            {'i': interval, 't': now - next_run + interval})
                next_run = now
            if stop.wait(next_run - now):
                return

    def _start_workers(self, tasks: dict[int, PollingTask]) -> None:
        self.polling_tasks = tasks
        self._stop_event = threading.Event()
        if not tasks:
            LOG.warning('No pollster of the polling definitions was '
                        'loaded: nothing to poll')
            return
        shuffle = self.conf.shuffle_time_before_polling_task
        # Spreads the agents' first polls; no security purpose.
        delay = random.uniform(0, shuffle) if shuffle > 0 else 0.0  # noqa: S311
        self._workers = []
        for interval, task in sorted(tasks.items()):
            worker = threading.Thread(
                target=self._task_loop,
                args=(interval, task, delay, self._stop_event),
                name=f'polling-every-{interval}s', daemon=True)
            self._workers.append(worker)
            worker.start()

    def _stop_workers(self) -> None:
        self._stop_event.set()
        for worker in self._workers:
            worker.join()
        self._workers = []

    def run(self) -> None:
        """Start one polling thread per interval (first poll at once)."""
        super().run()
        self.health = health_server.serve(self.conf, self.ledger,
                                          self.checks)
        # Join the tooz groups before the first poll, so that the first
        # cycle already polls only this agent's share.
        self.partitioning.start(self.partitioning_groups())
        with self._workers_lock:
            self._start_workers(self.setup_polling_tasks())
            scheduled = len(self.polling_tasks)
        systemd.ready(f'{scheduled} polling task(s) scheduled')

    def reload(self) -> None:
        """Re-read the configuration and polling.yaml, rebuild the tasks.

        If the new polling definitions are invalid, the current tasks keep
        running.
        """
        try:
            self.conf.reload_config_files()
        except Exception:
            LOG.exception('Unable to reload the configuration files')
        try:
            polling_manager = polling_pipeline.setup_polling(self.conf)
        except Exception:
            LOG.exception('Invalid polling definitions, keeping the current '
                          'polling tasks')
            return
        with self._workers_lock:
            self.polling_manager = polling_manager
            try:
                self.partitioning.join(self.partitioning_groups())
            except Exception:
                LOG.exception('Unable to join the partitioning groups of '
                              'the new polling definitions')
            tasks = self.setup_polling_tasks()
            self._stop_workers()
            self._start_workers(tasks)
        LOG.info('Polling tasks reloaded from %s', polling_manager.cfg_path)

    def terminate(self) -> None:
        """Stop the polling threads (an ongoing poll ends first)."""
        with self._workers_lock:
            self._stop_workers()
        try:
            self.partitioning.stop()
        except Exception:
            LOG.exception('Unable to leave the partitioning groups')
        if self.transport is not None:
            # The transport is the process-wide cached one: close it there.
            messaging.cleanup()
            self.transport = None
        if self.health is not None:
            self.health.stop()
            self.health = None
        super().terminate()
