"""One polling task: the pollsters of every source sharing an interval.

``PollingTask.poll_and_notify`` runs one cycle (polling.md §3): per source
and pollster it gathers candidates (static resources the agent owns, then
discovered ones), de-duplicates them across the cycle, skips black-listed
ones, calls the pollster and sends its samples in batches (§4).
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from oslo_log import log
from oslo_utils import timeutils
from stevedore import extension

from telemeter.polling import definitions as polling_pipeline
from telemeter.polling import (
    discovering,
    heartbeat,
    partition,
    plugin_base,
    sending,
)

LOG = log.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TaskParts:
    """What every polling task of an agent works with, built once.

    :ivar context: what pollsters and discoverers receive as ``manager``
        (the agent itself)
    :ivar discovery: finds the resources of discovery URLs
    :ivar partitioning: tells which resources this agent owns
    :ivar sender: signs, batches and sends the samples
    :ivar heartbeat: reports each pollster call
    :ivar blacklists: ``(source name, pollster name)`` -> resources never
        to poll again; outlives a reload of the tasks
    """

    context: plugin_base.PollingContext
    discovery: discovering.Discovery
    partitioning: partition.Partitioning
    sender: sending.SampleSender
    heartbeat: heartbeat.HeartbeatReporter
    blacklists: dict[tuple[str, str], list[Any]] = dataclasses.field(
        default_factory=dict)

    def discover(self, urls: list[str],
                 discovery_cache: dict | None) -> list[Any]:
        """Resources of ``urls``, the discoverers seeing ``context``."""
        return self.discovery.discover(self.context, urls, discovery_cache)


class Resources:
    """The static resources and discovery URLs of one (source, pollster).

    ``blacklist`` holds the resources black-listed for the pair after a
    :class:`~telemeter.polling.plugin_base.PollsterPermanentError`; it is
    kept in :attr:`TaskParts.blacklists`, so it outlives a reload of the
    tasks.
    """

    def __init__(self, parts: TaskParts,
                 source: polling_pipeline.PollingSource,
                 pollster_name: str) -> None:
        self.parts = parts
        self._resources = list(source.resources)
        self._discovery = list(source.discovery)
        self._group = parts.partitioning.construct_group_id(
            partition.hash_of_resources(self._resources))
        self.blacklist: list[Any] = parts.blacklists.setdefault(
            (source.name, pollster_name), [])

    def _static(self) -> list[Any]:
        if not self._resources:
            return []
        partitioning = self.parts.partitioning
        try:
            return [r for r in self._resources
                    if partitioning.belongs_to_self(self._group, r)]
        except Exception as err:
            # Polling everything could double the work of every agent;
            # polling nothing loses one cycle of these resources.
            LOG.error('Cannot tell which static resources of group '
                      '%(group)s this agent owns, skipping them this '
                      'cycle: %(err)s', {'group': self._group, 'err': err})
            return []

    def get(self, discovery_cache: dict | None = None) -> list[Any]:
        """Static resources (partition-filtered) then discovered ones."""
        discovered = (self.parts.discover(self._discovery, discovery_cache)
                      if self._discovery else [])
        return self._static() + discovered


class PollingTask:
    """The pollsters of every source sharing one interval."""

    def __init__(self, parts: TaskParts) -> None:
        self.parts = parts
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
            self.resources[key] = Resources(self.parts, source,
                                            pollster.name)

    def poll_and_notify(self) -> None:
        """Run one polling cycle and send the samples (polling.md §3)."""
        cache: dict = {}
        discovery_cache: dict = {}
        poll_history: dict[str, list[Any]] = {}
        for source, pollsters in self.pollster_matches.items():
            for pollster in pollsters:
                # Loaded with invoke_on_load (or built): obj is set.
                obj = cast(plugin_base.PollsterBase, pollster.obj)
                self._poll(source, pollster.name, obj, cache,
                           discovery_cache, poll_history)

    def _candidates(self, resources: Resources,
                    pollster: plugin_base.PollsterBase,
                    discovery_cache: dict) -> list[Any]:
        candidates = resources.get(discovery_cache)
        if not candidates and pollster.default_discovery:
            candidates = self.parts.discover([pollster.default_discovery],
                                             discovery_cache)
        return candidates

    def _poll(self, source: polling_pipeline.PollingSource, name: str,
              pollster: plugin_base.PollsterBase, cache: dict,
              discovery_cache: dict,
              poll_history: dict[str, list[Any]]) -> None:
        resources = self.resources[(source, name)]
        try:
            candidates = self._candidates(resources, pollster,
                                          discovery_cache)
        except Exception as err:
            LOG.error('Continue after error from %(name)s: %(error)s',
                      {'name': name, 'error': err}, exc_info=True)
            return

        history = poll_history.setdefault(name, [])
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
                     {'name': name, 'new': 'new ' if history else ''})
            return

        LOG.info('Polling pollster %(poll)s in the context of %(src)s',
                 {'poll': name, 'src': source.name})
        try:
            timestamp = timeutils.utcnow().isoformat()
            samples = pollster.get_samples(
                manager=self.parts.context, cache=cache,
                resources=polling_resources)
            self.parts.heartbeat.update(name, timestamp)
            self.parts.sender.send(name, samples, timestamp)
        except plugin_base.PollsterPermanentError as err:
            LOG.error('Prevent pollster %(name)s from polling %(res_list)s '
                      'on source %(source)s anymore!',
                      {'name': name, 'res_list': err.fail_res_list,
                       'source': source.name})
            resources.blacklist.extend(err.fail_res_list)
        except Exception as err:
            LOG.error('Continue after error from %(name)s: %(error)s',
                      {'name': name, 'error': err}, exc_info=True)
