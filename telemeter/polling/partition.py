"""Workload partitioning between polling agents with tooz (polling.md §6).

With ``[coordination] backend_url`` set, every agent joins one tooz group
per loaded discoverer (``<prefix>-<discoverer group_id>``) and one per
source with static resources (``<prefix>-<md5 of the resources>``); a
resource is polled only by the agent that owns it on the group's consistent
hash ring. When an agent leaves (or its membership expires) the others'
rings follow within ``[coordination] check_watchers`` seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from oslo_config import cfg
from oslo_log import log

from telemeter import coordination
from telemeter.polling import loading

if TYPE_CHECKING:
    from stevedore import extension

    from telemeter.polling import definitions as polling_pipeline

LOG = log.getLogger(__name__)


def hash_of_resources(resources: Iterable[Any]) -> str:
    """Stable group id of a set of static resources (md5, see §6)."""
    text = '\n'.join(sorted(str(r) for r in resources))
    return hashlib.md5(text.encode('utf-8'),
                       usedforsecurity=False).hexdigest()


class Partitioning:
    """The agent's tooz membership and which resources it owns.

    Without ``[coordination] backend_url`` (or before :meth:`start`) the
    agent owns every resource.
    """

    def __init__(self, conf: cfg.ConfigOpts, namespaces: list[str]) -> None:
        self.conf = conf
        self.namespaces = namespaces
        self.coordinator: coordination.PartitionCoordinator | None = None

    @property
    def group_prefix(self) -> str:
        """Sorted namespaces joined by ``-``, plus the configured prefix."""
        prefix = '-'.join(sorted(self.namespaces))
        if self.conf.polling.partitioning_group_prefix:
            prefix += '-' + self.conf.polling.partitioning_group_prefix
        return prefix

    def construct_group_id(self, discovery_group_id: str) -> str:
        """Partitioning group name: ``<prefix>-<group id>``."""
        return f'{self.group_prefix}-{discovery_group_id}'

    def groups(self, discoveries: list[extension.Extension],
               sources: Iterable[polling_pipeline.PollingSource]
               ) -> list[str]:
        """Every group an agent with these discoverers and sources joins."""
        groups = [self.construct_group_id(d.obj.group_id)
                  for d in discoveries if d.obj is not None]
        groups += [self.construct_group_id(hash_of_resources(s.resources))
                   for s in sources if s.resources]
        return list(dict.fromkeys(groups))

    def start(self, groups: list[str]) -> None:
        """Connect to the tooz backend and join ``groups`` (if enabled)."""
        if not loading.coordination_backend_url(self.conf):
            return
        coordinator = coordination.PartitionCoordinator(self.conf)
        coordinator.start()
        self.coordinator = coordinator
        self.join(groups)

    def join(self, groups: list[str]) -> None:
        """Join ``groups`` (after a reload: the new definitions' groups)."""
        if self.coordinator is None:
            return
        for group in groups:
            self.coordinator.join_partitioned_group(group)
        self.coordinator.run_watchers()

    def stop(self) -> None:
        """Leave every group at once, so that the others take over."""
        if self.coordinator is not None:
            self.coordinator.stop()
            self.coordinator = None

    def belongs_to_self(self, group_id: str, resource: Any) -> bool:
        """Whether this agent polls ``resource`` (always without tooz)."""
        if self.coordinator is None:
            return True
        return self.coordinator.belongs_to_self(group_id, str(resource))
