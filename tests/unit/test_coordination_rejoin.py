"""A coordination backend that comes back without its data (Redis without
persistence restarted): the member joins its groups again."""

from __future__ import annotations

import shutil

import pytest

from telemeter import coordination


@pytest.fixture
def member(conf, tmp_path):
    conf.set_override('backend_url', f'file://{tmp_path / "tooz"}',
                      group='coordination')
    conf.set_override('check_watchers', 3600, group='coordination')
    coordinator = coordination.PartitionCoordinator(conf, b'member-a')
    coordinator.start()
    yield coordinator, tmp_path / 'tooz'
    coordinator.stop()


def test_nothing_to_do_while_the_member_is_listed(member):
    coordinator, _ = member
    coordinator.join_partitioned_group('g')
    assert coordinator.rejoin_lost_groups() == []
    assert coordinator.members('g') == {b'member-a'}


def test_a_backend_that_lost_its_data_is_joined_again(member, caplog):
    coordinator, path = member
    coordinator.join_partitioned_group('g')
    shutil.rmtree(path / 'groups')  # the backend forgot every group
    coordinator.run_watchers()
    assert coordinator.coordinator.get_members(b'g').get() == {b'member-a'}
    assert coordinator.belongs_to_self('g', 'anything')
    assert 'no longer in group g' in caplog.text
    assert coordinator.rejoin_lost_groups() == []


def test_a_backend_that_is_away_changes_nothing(member, monkeypatch):
    coordinator, _ = member
    partitioner = coordinator.join_partitioned_group('g')

    class Refused(Exception):
        """What tooz's Redis driver lets through (redis ConnectionError)."""

    def refused(group):
        raise Refused('connection refused')
    monkeypatch.setattr(coordinator.coordinator, 'get_members', refused)
    assert coordinator.rejoin_lost_groups() == []
    assert coordinator.partitioners[b'g'] is partitioner
    assert coordinator.belongs_to_self('g', 'anything')


def test_a_join_the_watchers_missed_is_added_to_the_ring(member, conf):
    coordinator, _ = member
    partitioner = coordinator.join_partitioned_group('g')
    other = coordination.PartitionCoordinator(conf, b'member-b')
    other.start()
    try:
        other.join_partitioned_group('g')
        coordinator.run_watchers()
        assert set(partitioner.ring.nodes) == {b'member-a', b'member-b'}
        # tooz's race: the join happened before the watch started
        partitioner.ring.remove_node(b'member-b')
        coordinator.run_watchers()
        assert set(partitioner.ring.nodes) == {b'member-a', b'member-b'}
        assert coordinator.reconcile_rings() == {}
    finally:
        other.stop()
    coordinator.run_watchers()
    assert set(partitioner.ring.nodes) == {b'member-a'}


def test_a_leave_already_reconciled_is_not_an_error(member, conf):
    """Seen in CI: the watcher thread's reconcile removed a member that had
    just left, then tooz reported the leave and its ring raised
    UnknownNode from run_watchers (and would have for ever)."""
    coordinator, _ = member
    partitioner = coordinator.join_partitioned_group('g')
    other = coordination.PartitionCoordinator(conf, b'member-b')
    other.start()
    other.join_partitioned_group('g')
    coordinator.run_watchers()
    assert set(partitioner.ring.nodes) == {b'member-a', b'member-b'}
    other.stop()
    # the reconcile runs before tooz's watchers see the leave
    assert coordinator.reconcile_rings() == {b'g': (set(), {b'member-b'})}
    coordinator.run_watchers()
    assert set(partitioner.ring.nodes) == {b'member-a'}
    assert coordinator.belongs_to_self('g', 'anything')
    coordinator.run_watchers()
