"""Group membership through tooz, shared by the agents that partition work.

Several polling agents split resources, and several notification agents split
IPC queues, by joining a tooz group and asking a consistent hash ring whether
an object belongs to them. Without ``[coordination] backend_url`` every agent
owns everything.
"""

from __future__ import annotations

import functools
import threading
import uuid
from typing import Any

import tenacity
from oslo_config import cfg
from oslo_log import log

LOG = log.getLogger(__name__)


def tooz() -> Any:
    """tooz's ``coordination`` module, imported on first use: it pulls in
    futurist and eventlet, about a quarter of a second of every daemon's
    start-up, needed only with a ``[coordination] backend_url``."""
    from tooz import coordination

    return coordination


@functools.cache
def _tolerant_ring_class() -> type:
    """tooz's HashRing, except that removing a member that is not there
    does nothing (defined on first use: tooz is imported lazily)."""
    from tooz import hashring

    class TolerantHashRing(hashring.HashRing):
        def remove_node(self, node: Any) -> None:
            if node in self.nodes:
                super().remove_node(node)

    return TolerantHashRing


def _tolerant_ring(partitioner: Any) -> Any:
    """A copy of ``partitioner``'s hash ring on which removing a member
    that is not there does nothing.

    :meth:`PartitionCoordinator.reconcile_rings` may remove a member that
    left before tooz's watchers report it; tooz then removes it again,
    and its own ring would raise ``UnknownNode`` from every later
    ``run_watchers`` (tooz keeps the event until its hooks succeed).
    """
    ring = _tolerant_ring_class()([], partitions=partitioner.partitions)
    for node, weight in partitioner.ring.nodes.items():
        ring.add_node(node, weight)
    return ring

OPTS = [
    cfg.StrOpt('backend_url',
               help='The backend URL to use for distributed coordination. '
                    'If left empty, per-deployment central agent and per-host '
                    'compute agent won\'t do workload partitioning and will '
                    'only function correctly if a single instance of that '
                    'service is running.'),
    cfg.FloatOpt('check_watchers',
                 default=10.0,
                 help='Number of seconds between checks to see if group '
                      'membership has changed.'),
]


class PartitionCoordinator:
    """One tooz member of this process, and the groups it joined.

    ``start`` connects (and heartbeats); a background thread runs the tooz
    watchers every ``check_watchers`` seconds so that hash rings follow
    members joining and leaving.
    """

    def __init__(self, conf: cfg.ConfigOpts,
                 member_id: bytes | None = None) -> None:
        self.conf = conf
        self.member_id = member_id or str(uuid.uuid4()).encode('ascii')
        self.backend_url = conf.coordination.backend_url
        self.coordinator: Any = None
        self.partitioners: dict[bytes, Any] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        # Serialises the watchers with readers of the hash rings.
        self._ring_lock = threading.RLock()

    @property
    def is_active(self) -> bool:
        return self.coordinator is not None

    def start(self) -> None:
        """Connect to the backend; a no-op without ``backend_url``."""
        if not self.backend_url:
            return
        coordinator = tooz().get_coordinator(self.backend_url,
                                                   self.member_id)
        coordinator.start(start_heart=True)
        self.coordinator = coordinator
        LOG.info('Coordination backend started as member %s',
                 self.member_id.decode())
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch,
                                         name='tooz-watchers', daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Leave every group and disconnect."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        if self.coordinator is None:
            return
        for partitioner in list(self.partitioners.values()):
            try:
                self.coordinator.leave_partitioned_group(partitioner)
            except tooz().ToozError:
                LOG.warning('Could not leave group %s', partitioner.group_id,
                            exc_info=True)
        self.partitioners.clear()
        try:
            self.coordinator.stop()
        except tooz().ToozError:
            LOG.warning('Error stopping the coordination backend',
                        exc_info=True)
        self.coordinator = None
        LOG.info('Coordination backend stopped')

    @tenacity.retry(
        # Exception: tooz's Redis driver lets redis.exceptions.
        # ConnectionError through, and the backend may be restarting.
        retry=tenacity.retry_if_exception_type(Exception),
        wait=tenacity.wait_exponential(multiplier=0.5, max=10),
        stop=tenacity.stop_after_attempt(10), reraise=True)
    def join_partitioned_group(self, group_id: str) -> Any:
        """Join ``group_id`` and return its tooz Partitioner (or None when
        coordination is off)."""
        if self.coordinator is None:
            return None
        key = group_id.encode('utf-8')
        if key not in self.partitioners:
            partitioner = self.coordinator.join_partitioned_group(key)
            partitioner.ring = _tolerant_ring(partitioner)
            self.partitioners[key] = partitioner
            LOG.info('Joined partitioned group %s', group_id)
        return self.partitioners[key]

    def belongs_to_self(self, group_id: str, obj: Any) -> bool:
        """Whether ``obj`` is this member's in ``group_id``'s hash ring."""
        partitioner = self.join_partitioned_group(group_id)
        if partitioner is None:
            return True
        with self._ring_lock:
            return partitioner.belongs_to_self(obj)

    def run_watchers(self) -> None:
        """Apply pending join/leave events to the hash rings now (after
        :meth:`rejoin_lost_groups`)."""
        if self.coordinator is not None:
            with self._ring_lock:
                self.rejoin_lost_groups()
                self.coordinator.run_watchers()
                self.reconcile_rings()

    def reconcile_rings(self) -> dict[bytes, tuple[set, set]]:
        """Make each hash ring hold exactly the group's members; return
        what was added and removed, by group.

        tooz's Partitioner lists the members, then starts watching: a
        member that joins in between is in the watch's starting state, so
        its join is never reported and this ring would never include it
        (seen with two agents started together: one consumed every queue,
        the other none, for good).
        """
        changed = {}
        for key, partitioner in list(self.partitioners.items()):
            try:
                members = set(self.coordinator.get_members(key).get())
            except Exception as err:
                LOG.debug('Cannot list group %s: %s', key.decode(), err)
                continue
            nodes = set(partitioner.ring.nodes)
            missing, extra = members - nodes, nodes - members
            for member in missing:
                partitioner._on_member_join(tooz().MemberJoinedGroup(
                    key, member))
            for member in extra:
                partitioner.ring.remove_node(member)
            if missing or extra:
                LOG.info('Hash ring of group %s missed %d member(s) and had '
                         '%d gone one(s): corrected', key.decode(),
                         len(missing), len(extra))
                changed[key] = (missing, extra)
        return changed

    def rejoin_lost_groups(self) -> list[bytes]:
        """Join again every group the backend no longer lists this
        member in; return those groups.

        A backend that restarts without its data (Redis without
        persistence, a fail-over to a replica that had not caught up)
        forgets groups and members, and tooz does not join again by
        itself: the rings would stay empty and the agents idle. While the
        backend is unreachable nothing changes (the last ring is kept).
        """
        rejoined = []
        for key, partitioner in list(self.partitioners.items()):
            try:
                members = self.coordinator.get_members(key).get()
            except tooz().GroupNotCreated:
                members = set()
            except Exception as err:
                # tooz's Redis driver lets redis.exceptions.ConnectionError
                # through here. The backend is away: keep the last ring.
                LOG.debug('Cannot list group %s: %s', key.decode(), err)
                continue
            if self.member_id in members:
                continue
            LOG.warning('Member %s is no longer in group %s (the '
                        'coordination backend lost it); joining again',
                        self.member_id.decode(), key.decode())
            try:
                self.coordinator.leave_partitioned_group(partitioner)
            except tooz().ToozError:
                pass  # the group or membership is gone already
            try:
                self.partitioners[key] = (
                    self.coordinator.join_partitioned_group(key))
            except Exception:  # tooz's Redis driver: as above
                LOG.warning('Could not join group %s again; retrying',
                            key.decode(), exc_info=True)
                # keep the old partitioner: its ring is the last known
                self.partitioners[key] = partitioner
                continue
            rejoined.append(key)
        return rejoined

    def members(self, group_id: str) -> set[bytes]:
        """Members of ``group_id``'s hash ring as this member sees it
        (empty when coordination is off)."""
        partitioner = self.join_partitioned_group(group_id)
        if partitioner is None:
            return set()
        with self._ring_lock:
            return set(partitioner.ring.nodes)

    def get_lock(self, name: str) -> Any:
        """A tooz lock of the backend (None when coordination is off).

        Acquired locks are refreshed by the coordinator's heartbeat and
        expire when this member dies.
        """
        if self.coordinator is None:
            return None
        return self.coordinator.get_lock(name.encode('utf-8'))

    def _watch(self) -> None:
        interval = self.conf.coordination.check_watchers
        while not self._stop.wait(interval):
            try:
                self.run_watchers()
            except Exception:  # never let the thread die
                LOG.warning('Error running the coordination watchers',
                            exc_info=True)
