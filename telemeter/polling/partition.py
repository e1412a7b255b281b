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
    """Mixin of the AgentManager: tooz membership and resource ownership.

    Expects ``self.conf``, ``self.namespaces``, ``self.discoveries`` and
    ``self.polling_manager``.
    """

    conf: cfg.ConfigOpts
    namespaces: list[str]
    discoveries: list[extension.Extension]
    polling_manager: polling_pipeline.PollingManager
    partition_coordinator: coordination.PartitionCoordinator | None = None

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

    def partitioning_groups(self) -> list[str]:
        """Every group this agent must be a member of."""
        groups = [self.construct_group_id(d.obj.group_id)
                  for d in self.discoveries]
        groups += [self.construct_group_id(hash_of_resources(s.resources))
                   for s in self.polling_manager.sources if s.resources]
        return list(dict.fromkeys(groups))

    def start_partitioning(self) -> None:
        """Connect to the tooz backend and join the groups (if enabled)."""
        if not loading.coordination_backend_url(self.conf):
            return
        partition = coordination.PartitionCoordinator(self.conf)
        partition.start()
        self.partition_coordinator = partition
        self.join_partitioning_groups()

    def join_partitioning_groups(self) -> None:
        """Join the groups of the current discoverers and sources."""
        if self.partition_coordinator is None:
            return
        for group in self.partitioning_groups():
            self.partition_coordinator.join_partitioned_group(group)
        self.partition_coordinator.run_watchers()

    def stop_partitioning(self) -> None:
        """Leave every group at once, so that the others take over."""
        if self.partition_coordinator is not None:
            self.partition_coordinator.stop()
            self.partition_coordinator = None

    def belongs_to_self(self, group_id: str, resource: Any) -> bool:
        """Whether this agent polls ``resource`` (always without tooz)."""
        if self.partition_coordinator is None:
            return True
        return self.partition_coordinator.belongs_to_self(group_id,
                                                          str(resource))
