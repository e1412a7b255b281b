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

import queue as queue_mod
import random
import threading
import time
from typing import Any

import cotyledon
from oslo_config import cfg
from oslo_log import log

from telemeter import messaging, systemd
from telemeter.health import polling as health_polling
from telemeter.health import server as health_server
from telemeter.polling import definitions as polling_pipeline
from telemeter.polling import discovering, loading, partition
from telemeter.polling.task import PollingTask, Resources  # noqa: F401

# Re-exported: the public names of the polling manager before its split.
PollsterListForbidden = loading.PollsterListForbidden
EmptyPollstersList = loading.EmptyPollstersList
check_pollster_list = loading.check_pollster_list
coordination_backend_url = loading.coordination_backend_url
hash_of_resources = partition.hash_of_resources

LOG = log.getLogger(__name__)

PUBLISHER_ID = 'telemeter.polling'
EVENT_TYPE = 'telemetry.polling'
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


class AgentManager(loading.PluginLoader, discovering.Discovering,
                   partition.Partitioning, cotyledon.Service):
    """The polling agent service (one cotyledon worker).

    :param namespaces: agent namespaces (default ``compute central``)
    :param pollster_list: fnmatch patterns restricting the pollsters
    :param queue: optional ``multiprocessing.Queue`` fed with
        ``{'pollster': name, 'timestamp': ts}`` for the heartbeat service
    """

    name = 'polling'

    def __init__(self, worker_id: int, conf: cfg.ConfigOpts,
                 namespaces: list[str] | None = None,
                 pollster_list: list[str] | None = None,
                 queue: Any = None) -> None:
        super().__init__(worker_id)
        self.conf = conf
        if isinstance(namespaces, str):
            namespaces = [namespaces]
        self.namespaces = list(namespaces or DEFAULT_NAMESPACES)
        self.pollster_list = list(pollster_list or [])
        check_pollster_list(conf, self.pollster_list)

        self.extensions = self.load_pollsters(self.namespaces,
                                              self.pollster_list)
        if not self.extensions:
            raise EmptyPollstersList()
        self.discoveries = self.load_discoveries(self.namespaces)
        self.polling_manager = polling_pipeline.setup_polling(conf)

        # Set by run() when [coordination] backend_url is set.
        self.partition_coordinator = None

        self.heartbeat_queue = queue
        # (source name, pollster name) -> resources never to poll again.
        self.blacklists: dict[tuple[str, str], list[Any]] = {}
        self.reset_keystone()

        self.transport = messaging.get_transport(conf)
        self.notifier = messaging.get_notifier(
            self.transport, PUBLISHER_ID,
            driver=conf.publisher_notifier.telemetry_driver)

        self.polling_tasks: dict[int, PollingTask] = {}
        self._workers: list[threading.Thread] = []
        self._stop_event = threading.Event()
        self._workers_lock = threading.Lock()

        #: Samples polled and sent, per pollster; notifications sent.
        self.produced: dict[str, int] = {}
        self.notifications_sent = 0
        self.ledger, self.checks = health_polling.watch(self)
        self.health: health_server.HealthServer | None = None

    # -- sending ------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        """Samples per notification; 0 means one notification per sample.
        """
        if not self.conf.batch_polled_samples:
            return 0
        return self.conf.polling.batch_size

    def send_samples(self, samples: list[dict]) -> None:
        """Send signed metering dicts as one ``telemetry.polling`` sample.
        """
        self.notifier.sample({}, EVENT_TYPE, {'samples': samples})
        self.notifications_sent += 1

    def update_heartbeat(self, pollster_name: str, timestamp: str) -> None:
        """Tell the heartbeat service that ``pollster_name`` just polled."""
        if self.heartbeat_queue is None:
            return
        item = {'pollster': pollster_name, 'timestamp': timestamp}
        try:
            self.heartbeat_queue.put_nowait(item)
        except queue_mod.Full:
            LOG.warning('Heartbeat queue full. Update failed: %s', item)

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
                        task = polling_tasks[interval] = PollingTask(self)
                    task.add(pollster, source)
        return polling_tasks

    def interval_task(self, task: PollingTask) -> None:
        """One cycle of ``task`` with a fresh keystone client."""
        self.reset_keystone()
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
        self.start_partitioning()
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
                self.join_partitioning_groups()
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
            self.stop_partitioning()
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
