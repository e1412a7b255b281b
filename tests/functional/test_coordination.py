"""Partition coordination through tooz over a real Redis."""

import pytest
from oslo_config import cfg

from telemeter import coordination, service

OBJECTS = [f'resource-{i}' for i in range(100)]


@pytest.fixture
def make_member(redis_url):
    members = []

    def _make(name):
        conf = service.prepare_service(argv=['x'], config_files=[],
                                       conf=cfg.ConfigOpts())
        conf.set_override('backend_url', redis_url, group='coordination')
        conf.set_override('check_watchers', 0.2, group='coordination')
        member = coordination.PartitionCoordinator(conf, name.encode())
        member.start()
        members.append(member)
        return member
    yield _make
    for member in members:
        member.stop()


def _owned(member, group):
    return {o for o in OBJECTS if member.belongs_to_self(group, o)}


def test_members_split_objects_and_take_over_when_one_leaves(make_member):
    group = 'test-group-split'
    first, second = make_member('first'), make_member('second')
    first.join_partitioned_group(group)
    second.join_partitioned_group(group)
    first.run_watchers()
    second.run_watchers()
    mine, theirs = _owned(first, group), _owned(second, group)
    assert mine.isdisjoint(theirs)
    assert mine | theirs == set(OBJECTS)
    assert mine and theirs

    second.stop()
    first.run_watchers()
    assert _owned(first, group) == set(OBJECTS)


def test_without_backend_everything_belongs_to_self():
    conf = service.prepare_service(argv=['x'], config_files=[],
                                   conf=cfg.ConfigOpts())
    member = coordination.PartitionCoordinator(conf)
    member.start()
    assert not member.is_active
    assert member.join_partitioned_group('g') is None
    assert all(member.belongs_to_self('g', o) for o in OBJECTS)
    member.stop()
