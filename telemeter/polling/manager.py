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

import fnmatch
import hashlib
import logging
import queue as queue_mod
import random
import threading
import time
from collections.abc import Iterable
from typing import Any

import cotyledon
from keystoneauth1 import exceptions as ka_exceptions
from oslo_config import cfg
from oslo_log import log
from oslo_utils import timeutils
from stevedore import extension

from telemeter import messaging
from telemeter.pipeline import polling as polling_pipeline
from telemeter.polling import plugin_base
from telemeter.publisher import utils as publisher_utils

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


class PollsterListForbidden(Exception):
    """``--pollster-list`` used together with workload partitioning."""

    def __init__(self) -> None:
        super().__init__(
            'It is forbidden to use pollster-list option of polling agent '
            'in case of using coordination between multiple agents. Please '
            'use either multiple agents being coordinated or polling list '
            'option for one polling agent.')


class EmptyPollstersList(Exception):
    """No pollster could be loaded for the namespaces and pollster list."""

    def __init__(self) -> None:
        super().__init__(
            'No valid pollsters can be loaded with the startup parameters '
            'polling-namespaces and pollster-list.')


def coordination_backend_url(conf: cfg.ConfigOpts) -> str | None:
    """``[coordination] backend_url``, or None when not registered."""
    try:
        return conf.coordination.backend_url
    except cfg.NoSuchOptError:
        return None


def check_pollster_list(conf: cfg.ConfigOpts,
                        pollster_list: list[str] | None) -> None:
    """Raise :class:`PollsterListForbidden` for pollster-list + coordination.
    """
    if pollster_list and coordination_backend_url(conf):
        raise PollsterListForbidden()


def hash_of_resources(resources: Iterable[Any]) -> str:
    """Stable group id of a set of static resources (md5, see §6)."""
    text = '\n'.join(sorted(str(r) for r in resources))
    return hashlib.md5(text.encode('utf-8'),
                       usedforsecurity=False).hexdigest()


class Resources:
    """The static resources and discovery URLs of one (source, pollster).

    ``blacklist`` holds the resources black-listed for the pair after a
    :class:`~telemeter.polling.plugin_base.PollsterPermanentError`; it is
    kept by the manager, so it outlives a reload of the tasks.
    """

    def __init__(self, agent_manager: AgentManager,
                 source: polling_pipeline.PollingSource,
                 pollster_name: str) -> None:
        self.agent_manager = agent_manager
        self._resources = list(source.resources)
        self._discovery = list(source.discovery)
        self.blacklist: list[Any] = agent_manager.blacklists.setdefault(
            (source.name, pollster_name), [])

    def get(self, discovery_cache: dict | None = None) -> list[Any]:
        """Static resources (partition-filtered) then discovered ones."""
        static: list[Any] = []
        if self._resources:
            group = self.agent_manager.construct_group_id(
                hash_of_resources(self._resources))
            static = [r for r in self._resources
                      if self.agent_manager.belongs_to_self(group, r)]
        discovered = (self.agent_manager.discover(self._discovery,
                                                  discovery_cache)
                      if self._discovery else [])
        return static + discovered


class PollingTask:
    """The pollsters of every source sharing one interval."""

    def __init__(self, agent_manager: AgentManager) -> None:
        self.manager = agent_manager
        # Insertion-ordered: sources in file order, pollsters in load order.
        self.pollster_matches: dict[polling_pipeline.PollingSource,
                                    list[extension.Extension]] = {}
        self.resources: dict[tuple[polling_pipeline.PollingSource, str],
                             Resources] = {}

    def add(self, pollster: extension.Extension,
            source: polling_pipeline.PollingSource) -> None:
        """Poll ``pollster`` in the context of ``source``."""
        pollsters = self.pollster_matches.setdefault(source, [])
        if pollster not in pollsters:
            pollsters.append(pollster)
        key = (source, pollster.name)
        if key not in self.resources:
            self.resources[key] = Resources(self.manager, source,
                                            pollster.name)

    def poll_and_notify(self) -> None:
        """Run one polling cycle and send the samples (polling.md §3)."""
        cache: dict = {}
        discovery_cache: dict = {}
        poll_history: dict[str, list[Any]] = {}
        for source, pollsters in self.pollster_matches.items():
            for pollster in pollsters:
                self._poll(source, pollster, cache, discovery_cache,
                           poll_history)

    def _poll(self, source: polling_pipeline.PollingSource,
              pollster: extension.Extension, cache: dict,
              discovery_cache: dict,
              poll_history: dict[str, list[Any]]) -> None:
        resources = self.resources[(source, pollster.name)]
        candidates = resources.get(discovery_cache)
        if not candidates and pollster.obj.default_discovery:
            candidates = self.manager.discover(
                [pollster.obj.default_discovery], discovery_cache)

        history = poll_history.setdefault(pollster.name, [])
        polling_resources = []
        for resource in candidates:
            if resource in history:
                continue
            history.append(resource)
            if resource not in resources.blacklist:
                polling_resources.append(resource)

        if not polling_resources:
            LOG.info('Skip pollster %(name)s, no %(new)sresources found '
                     'this cycle',
                     {'name': pollster.name, 'new': 'new ' if history else ''})
            return

        LOG.info('Polling pollster %(poll)s in the context of %(src)s',
                 {'poll': pollster.name, 'src': source.name})
        try:
            timestamp = timeutils.utcnow().isoformat()
            samples = pollster.obj.get_samples(
                manager=self.manager, cache=cache,
                resources=polling_resources)
            self.manager.update_heartbeat(pollster.name, timestamp)
            self._send(samples, timestamp)
        except plugin_base.PollsterPermanentError as err:
            LOG.error('Prevent pollster %(name)s from polling %(res_list)s '
                      'on source %(source)s anymore!',
                      {'name': pollster.name, 'res_list': err.fail_res_list,
                       'source': source.name})
            resources.blacklist.extend(err.fail_res_list)
        except Exception as err:
            LOG.error('Continue after error from %(name)s: %(error)s',
                      {'name': pollster.name, 'error': err}, exc_info=True)

    def _send(self, samples: Iterable[Any], timestamp: str) -> None:
        batch_size = self.manager.batch_size
        secret = self.manager.conf.publisher.telemetry_secret
        batch: list[dict] = []
        for sample in samples or []:
            sample.set_timestamp(timestamp)
            batch.append(
                publisher_utils.meter_message_from_counter(sample, secret))
            if len(batch) >= max(batch_size, 1):
                self.manager.send_samples(batch)
                batch = []
        if batch:
            self.manager.send_samples(batch)


class AgentManager(cotyledon.Service):
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

        # Workload partitioning seam: a tooz coordinator joined to the
        # groups of construct_group_id() fills these (later issue).
        self.partition_coordinator: Any = None
        self.hashrings: dict[str, Any] = {}
        self.group_prefix = self._group_prefix()
        if coordination_backend_url(conf):
            LOG.warning('[coordination] backend_url is set but workload '
                        'partitioning of the polling agent is not '
                        'implemented yet: every resource is polled.')

        self.heartbeat_queue = queue
        # (source name, pollster name) -> resources never to poll again.
        self.blacklists: dict[tuple[str, str], list[Any]] = {}
        self._keystone: Any = None
        self._keystone_last_exception: Exception | None = None

        self.transport = messaging.get_transport(conf)
        self.notifier = messaging.get_notifier(
            self.transport, PUBLISHER_ID,
            driver=conf.publisher_notifier.telemetry_driver)

        self.polling_tasks: dict[int, PollingTask] = {}
        self._workers: list[threading.Thread] = []
        self._stop_event = threading.Event()
        self._workers_lock = threading.Lock()

    # -- loading ----------------------------------------------------------

    @staticmethod
    def _on_load_failure(manager: Any, entrypoint: Any,
                         exc: Exception) -> None:
        if isinstance(exc, plugin_base.ExtensionLoadError):
            LOG.exception('Skip loading extension for %s', entrypoint.name)
            return
        LOG.error('Failed to import extension for %(name)s: %(error)s',
                  {'name': entrypoint.name, 'error': exc},
                  exc_info=(LOG.isEnabledFor(logging.DEBUG)
                            and isinstance(exc, ImportError)))
        if isinstance(exc, ImportError):
            return
        raise exc

    def _extensions(self, category: str, agent_ns: str,
                    invoke: bool = True) -> list[extension.Extension]:
        """Extensions of ``telemeter.<category>.<agent_ns>``."""
        namespace = f'telemeter.{category}.{agent_ns}'
        mgr = extension.ExtensionManager(
            namespace=namespace, invoke_on_load=invoke,
            invoke_args=(self.conf,) if invoke else (),
            on_load_failure_callback=self._on_load_failure)
        return list(mgr)

    def _builder_extensions(self, agent_ns: str
                            ) -> list[extension.Extension]:
        """Pollsters built by the ``telemeter.builder.poll.<ns>`` plugins."""
        pollsters: list[extension.Extension] = []
        for builder in self._extensions('builder.poll', agent_ns,
                                        invoke=False):
            try:
                pollsters.extend(
                    builder.plugin.get_pollsters_extensions(self.conf))
            except plugin_base.ExtensionLoadError:
                LOG.exception('Skip loading extension for %s', builder.name)
        return pollsters

    def load_dynamic_pollsters(self, namespaces: list[str]
                               ) -> list[extension.Extension]:
        """Dynamic pollsters of ``[polling] pollsters_definitions_dirs``.

        Hook for polling.md §7 (not implemented yet): must return
        Extensions whose definitions' ``namespaces`` intersect
        ``namespaces``.
        """
        return []

    def load_pollsters(self, namespaces: list[str],
                       pollster_list: list[str]
                       ) -> list[extension.Extension]:
        """Pollster extensions of every namespace, filtered by the list."""
        pollsters: list[extension.Extension] = []
        for agent_ns in namespaces:
            pollsters.extend(self._extensions('poll', agent_ns))
            pollsters.extend(self._builder_extensions(agent_ns))
        pollsters.extend(self.load_dynamic_pollsters(namespaces))
        if pollster_list:
            pollsters = [
                p for p in pollsters
                if any(fnmatch.fnmatch(p.name, pattern)
                       for pattern in pollster_list)]
        return pollsters

    def load_discoveries(self, namespaces: list[str]
                         ) -> list[extension.Extension]:
        """Discoverer extensions of ``telemeter.discover.<ns>``."""
        discoveries: list[extension.Extension] = []
        for agent_ns in namespaces:
            discoveries.extend(self._extensions('discover', agent_ns))
        return discoveries

    # -- partitioning seam ------------------------------------------------

    def _group_prefix(self) -> str:
        prefix = '-'.join(sorted(self.namespaces))
        if self.conf.polling.partitioning_group_prefix:
            prefix += '-' + self.conf.polling.partitioning_group_prefix
        return prefix

    def construct_group_id(self, discovery_group_id: str) -> str:
        """Partitioning group name: ``<prefix>-<group id>``."""
        return f'{self.group_prefix}-{discovery_group_id}'

    def belongs_to_self(self, group_id: str, resource: Any) -> bool:
        """Whether this agent polls ``resource`` (always without tooz)."""
        if self.partition_coordinator is None:
            return True
        return self.hashrings[group_id].belongs_to_self(str(resource))

    # -- keystone and discovery ---------------------------------------------

    def _create_keystone_client(self) -> Any:
        from telemeter import keystone_client

        factory = getattr(keystone_client, 'get_client', None)
        if factory is None:
            raise RuntimeError('no keystone client available')
        return factory(self.conf)

    @property
    def keystone(self) -> Any:
        """Keystone client, created on first use in a cycle and shared.

        If creating it failed, the error is raised again on each use until
        the next cycle.
        """
        if self._keystone is None and self._keystone_last_exception is None:
            try:
                self._keystone = self._create_keystone_client()
            except Exception as err:
                self._keystone_last_exception = err
        if self._keystone is not None:
            return self._keystone
        assert self._keystone_last_exception is not None
        raise self._keystone_last_exception

    def _service_registered(self, service_type: str) -> bool:
        from telemeter import keystone_client

        client = self.keystone
        getter = getattr(keystone_client, 'get_service_catalog', None)
        if getter is not None:
            catalog = getter(client)
        else:
            catalog = client.session.auth.get_access(
                client.session).service_catalog
        return bool(catalog.get_endpoints(service_type=service_type))

    @staticmethod
    def _parse_discoverer(url: str) -> tuple[str, str | None]:
        name, sep, param = url.partition(':')
        return name, (param if sep else None)

    def _discoverer(self, name: str) -> Any:
        for discovery in self.discoveries:
            if discovery.name == name:
                return discovery.obj
        return None

    def discover(self, discovery: list[str] | None = None,
                 discovery_cache: dict | None = None) -> list[Any]:
        """Resources of the discovery URLs (polling.md §5)."""
        resources: list[Any] = []
        for url in discovery or []:
            if discovery_cache is not None and url in discovery_cache:
                resources.extend(discovery_cache[url])
                continue
            name, param = self._parse_discoverer(url)
            discoverer = self._discoverer(name)
            if discoverer is None:
                LOG.warning('Unknown discovery extension: %s', name)
                continue
            try:
                required = discoverer.KEYSTONE_REQUIRED_FOR_SERVICE
                if required:
                    service_type = getattr(self.conf.service_types, required)
                    if not self._service_registered(service_type):
                        LOG.warning('Skipping %(name)s, %(service_type)s '
                                    'service is not registered in keystone',
                                    {'name': name,
                                     'service_type': service_type})
                        continue
                discovered = discoverer.discover(self, param)
                group = self.construct_group_id(discoverer.group_id)
                discovered = [r for r in discovered
                              if self.belongs_to_self(group, r)]
                resources.extend(discovered)
                if discovery_cache is not None:
                    discovery_cache[url] = discovered
            except ka_exceptions.ClientException as err:
                LOG.error('Skipping %(name)s, keystone issue: %(exc)s',
                          {'name': name, 'exc': err})
            except Exception as err:
                LOG.exception('Unable to discover resources: %s', err)
        return resources

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
        self._keystone = None
        self._keystone_last_exception = None
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
        with self._workers_lock:
            self._start_workers(self.setup_polling_tasks())

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
            tasks = self.setup_polling_tasks()
            self._stop_workers()
            self._start_workers(tasks)
        LOG.info('Polling tasks reloaded from %s', polling_manager.cfg_path)

    def terminate(self) -> None:
        """Stop the polling threads (an ongoing poll ends first)."""
        with self._workers_lock:
            self._stop_workers()
        if self.transport is not None:
            # The transport is the process-wide cached one: close it there.
            messaging.cleanup()
            self.transport = None
        super().terminate()
