"""One polling task: the pollsters of every source sharing an interval.

``PollingTask.poll_and_notify`` runs one cycle (polling.md §3): per source
and pollster it gathers candidates (static resources the agent owns, then
discovered ones), de-duplicates them across the cycle, skips black-listed
ones, calls the pollster and sends its samples in batches (§4).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from oslo_log import log
from oslo_utils import timeutils
from stevedore import extension

from telemeter.polling import definitions as polling_pipeline
from telemeter.polling import partition, plugin_base
from telemeter.publisher import utils as publisher_utils

if TYPE_CHECKING:
    from telemeter.polling.manager import AgentManager

LOG = log.getLogger(__name__)


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
        self._group = agent_manager.construct_group_id(
            partition.hash_of_resources(self._resources))
        self.blacklist: list[Any] = agent_manager.blacklists.setdefault(
            (source.name, pollster_name), [])

    def _static(self) -> list[Any]:
        if not self._resources:
            return []
        try:
            return [r for r in self._resources
                    if self.agent_manager.belongs_to_self(self._group, r)]
        except Exception as err:
            # Polling everything could double the work of every agent;
            # polling nothing loses one cycle of these resources.
            LOG.error('Cannot tell which static resources of group '
                      '%(group)s this agent owns, skipping them this '
                      'cycle: %(err)s', {'group': self._group, 'err': err})
            return []

    def get(self, discovery_cache: dict | None = None) -> list[Any]:
        """Static resources (partition-filtered) then discovered ones."""
        discovered = (self.agent_manager.discover(self._discovery,
                                                  discovery_cache)
                      if self._discovery else [])
        return self._static() + discovered


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

    def _candidates(self, resources: Resources,
                    pollster: extension.Extension,
                    discovery_cache: dict) -> list[Any]:
        candidates = resources.get(discovery_cache)
        if not candidates and pollster.obj.default_discovery:
            candidates = self.manager.discover(
                [pollster.obj.default_discovery], discovery_cache)
        return candidates

    def _poll(self, source: polling_pipeline.PollingSource,
              pollster: extension.Extension, cache: dict,
              discovery_cache: dict,
              poll_history: dict[str, list[Any]]) -> None:
        resources = self.resources[(source, pollster.name)]
        try:
            candidates = self._candidates(resources, pollster,
                                          discovery_cache)
        except Exception as err:
            LOG.error('Continue after error from %(name)s: %(error)s',
                      {'name': pollster.name, 'error': err}, exc_info=True)
            return

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
            sent = self._send(samples, timestamp)
            produced = self.manager.produced
            produced[pollster.name] = produced.get(pollster.name, 0) + sent
        except plugin_base.PollsterPermanentError as err:
            LOG.error('Prevent pollster %(name)s from polling %(res_list)s '
                      'on source %(source)s anymore!',
                      {'name': pollster.name, 'res_list': err.fail_res_list,
                       'source': source.name})
            resources.blacklist.extend(err.fail_res_list)
        except Exception as err:
            LOG.error('Continue after error from %(name)s: %(error)s',
                      {'name': pollster.name, 'error': err}, exc_info=True)

    def _send(self, samples: Iterable[Any], timestamp: str) -> int:
        """Send ``samples`` in batches; return how many were sent."""
        batch_size = self.manager.batch_size
        secret = self.manager.conf.publisher.telemetry_secret
        batch: list[dict] = []
        sent = 0
        for sample in samples or []:
            sample.set_timestamp(timestamp)
            batch.append(
                publisher_utils.meter_message_from_counter(sample, secret))
            if len(batch) >= max(batch_size, 1):
                self.manager.send_samples(batch)
                sent += len(batch)
                batch = []
        if batch:
            self.manager.send_samples(batch)
            sent += len(batch)
        return sent
