"""Partition coordination through tooz over Redis Sentinel: the primary
is SIGKILLed under two members of a group and the sentinels promote the
replica (issue 15, doc/source/admin/cluster.rst "When the coordinator is
gone").

The members use ``[coordination] backend_url`` set to the sentinel URL with
the timeouts of cluster.rst's configuration (``membership_timeout=30``,
``lock_timeout=10``: a member heartbeats every 5 s, its lock then lasts
10 s), and are never restarted.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.functional.fixtures import coordination as members_fixture
from tests.functional.fixtures import redis as resp
from tests.functional.fixtures.coordination import OBJECTS, owned

#: tooz options of doc/source/admin/cluster.rst's [coordination] backend_url
OPTIONS = 'membership_timeout=30&lock_timeout=10'
#: tooz's Redis driver keys (default namespace ``_tooz``).
GROUP_KEY = '_tooz_group:{}'
BEAT_KEY = '_tooz_beats:{}'
LOCK_KEY = '_tooz_{}_lock'


@pytest.fixture
def sentinel_setup(redis_sentinel):
    """The session's setup; a server the test killed is started again
    afterwards (as a replica of the then primary)."""
    yield redis_sentinel
    redis_sentinel.start_all()


@pytest.fixture
def make_member(sentinel_setup):
    with members_fixture.members(f'{sentinel_setup.url}&{OPTIONS}') as make:
        yield make


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f'{what}: not within {timeout}s')
        time.sleep(0.05)
    return time.monotonic()


class _Refreshes(threading.Thread):
    """Watches the TTL of ``keys`` on one server until each is set again:
    goes above what time alone leaves of it. ``lowest[key]`` is then the
    lowest TTL seen before (ms: how close the key came to expiring); it
    stays None if the key expired or was not set again in ``timeout`` s.
    The TTLs are read at creation, the watching starts with ``start()``.
    """

    def __init__(self, server_url, keys, timeout):
        super().__init__(name='ttl-watch', daemon=True)
        self.server_url, self.timeout = server_url, timeout
        self.ttls = {key: resp.command(server_url, 'PTTL', key)
                     for key in keys}
        self.read = time.monotonic()
        self.lowest: dict[str, int | None] = dict.fromkeys(keys)
        self.error: Exception | None = None

    def run(self):
        try:
            self._watch()
        except Exception as exc:  # reported by the test
            self.error = exc

    def _watch(self):
        waiting = dict(self.ttls)
        deadline = self.read + self.timeout
        while waiting and time.monotonic() < deadline:
            time.sleep(0.05)
            for key, seen in list(waiting.items()):
                left = self.ttls[key] - (time.monotonic() - self.read) * 1000
                now = resp.command(self.server_url, 'PTTL', key)
                if now < 0:  # -2: expired, gone (-1: no TTL any more)
                    del waiting[key]
                elif now > left + 500:
                    self.lowest[key] = seen
                    del waiting[key]
                else:
                    waiting[key] = now


def _lists_both(member, group, names):
    try:
        members = member.coordinator.get_members(group.encode()).get()
    except Exception:  # the Redis driver lets redis' ConnectionError out
        return False
    return set(members) == {n.encode() for n in names}


def _hkeys(server_url, key):
    return set(resp.command(server_url, 'HKEYS', key) or [])


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_members_keep_their_split_through_a_sentinel_failover(
        sentinel_setup, make_member, record_property):
    run = uuid.uuid4().hex[:8]
    group = f'test-sentinel-{run}'
    names = (f'first-{run}', f'second-{run}')
    first, second = make_member(names[0]), make_member(names[1])
    first_tooz, second_tooz = first.coordinator, second.coordinator
    for member in (first, second):
        member.join_partitioned_group(group)
    for member in (first, second):
        member.run_watchers()
    mine, theirs = owned(first, group), owned(second, group)
    assert mine.isdisjoint(theirs)
    assert mine | theirs == set(OBJECTS)
    assert mine and theirs
    # A queue lock as the notification agents hold (refreshed by the
    # heartbeat): held by the first, refused to the second.
    lock_name = f'test-sentinel-lock-{run}'
    lock = first.get_lock(lock_name)
    assert lock.acquire(blocking=False)
    assert not second.get_lock(lock_name).acquire(blocking=False)

    # Replication is asynchronous: wait until the replica has what the
    # test relies on (writes of the last moment before a primary dies can
    # be lost, which the sentinels do not prevent).
    old_primary = sentinel_setup.primary()
    old_number = sentinel_setup.server_of(old_primary)
    replica_url = sentinel_setup.server_url(3 - old_number)
    _wait(lambda: {*names, '__created__'} <= _hkeys(
        replica_url, GROUP_KEY.format(group))
        and resp.command(replica_url, 'EXISTS', LOCK_KEY.format(lock_name)),
        10, 'the group and the lock on the replica')

    # Kill the primary 0.3-0.8 s before the first member's next heartbeat
    # (tooz refreshes at half the lock's 10 s, when 5 s are left), so that
    # the beat falls in the fail-over and goes through tooz's retries.
    # From then on the replica is watched: nothing replicates to it any
    # more, so a TTL there goes up only by a write to it as the primary.
    lock_key = LOCK_KEY.format(lock_name)
    _wait(lambda: 5300 < resp.command(f'redis://{old_primary}', 'PTTL',
                                      lock_key) <= 5800,
          12, 'the lock 0.3-0.8 s before its refresh')
    refreshes = _Refreshes(
        replica_url, [*(BEAT_KEY.format(n) for n in names), lock_key], 30)
    assert all(ttl > 0 for ttl in refreshes.ttls.values()), refreshes.ttls
    start = time.monotonic()
    killed, address = sentinel_setup.kill_primary()
    refreshes.start()
    assert (killed, address) == (old_number, old_primary)
    new_primary = sentinel_setup.wait_primary_other_than(old_primary)
    failover_s = time.monotonic() - start
    new_url = f'redis://{new_primary}'
    # The fail-over really happened: the old primary is dead, the
    # sentinels name the other server, and it is a primary now.
    assert new_primary != old_primary
    assert sentinel_setup.server_of(new_primary) == 3 - old_number
    with pytest.raises(OSError):
        resp.ping(f'redis://{old_primary}')
    assert resp.command(new_url, 'ROLE')[0] == 'master'
    # Both members reach the backend again, through the sentinels.
    for member in (first, second):
        _wait(lambda m=member: _lists_both(m, group, names), 30,
              'both members listed by the new primary')
    outage_s = time.monotonic() - start
    record_property('failover_s', round(failover_s, 2))
    record_property('coordination_outage_s', round(outage_s, 2))
    print(f'fail-over {failover_s:.2f} s (kill to the sentinels naming '
          f'{new_primary}); members served again after {outage_s:.2f} s')

    # Heartbeats reach the new primary: the TTL of each beat key and of
    # the lock there went up again before they expired.
    refreshes.join(35)
    assert refreshes.error is None, refreshes.error
    silent = [key for key, ttl in refreshes.lowest.items() if ttl is None]
    assert not silent, (f'expired, or no heartbeat on the new primary: '
                        f'{silent} (TTLs before the kill: {refreshes.ttls})')
    margin_s = refreshes.lowest[lock_key] / 1000
    record_property('lock_ttl_left_s', margin_s)
    print(f'heartbeats on the new primary; the lock had {margin_s:.1f} s '
          f'of its 10 s left when it was refreshed ({refreshes.lowest})')
    # Neither member was restarted, and both rings and the split are
    # exactly what they were.
    assert first.coordinator is first_tooz
    assert second.coordinator is second_tooz
    for member in (first, second):
        member.run_watchers()
        assert member.members(group) == {n.encode() for n in names}
    assert owned(first, group) == mine
    assert owned(second, group) == theirs
    # The lock survived with its owner (on the new primary).
    assert lock.is_still_owner()
    assert not second.get_lock(lock_name).acquire(blocking=False)
    assert lock.release()

    # The group works on the new primary: the second leaves, the first
    # takes everything, and the new primary holds that membership.
    second.stop()
    first.run_watchers()
    assert first.members(group) == {names[0].encode()}
    assert owned(first, group) == set(OBJECTS)
    assert _hkeys(new_url, GROUP_KEY.format(group)) == {
        names[0], '__created__'}
