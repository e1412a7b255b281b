"""Partition coordination through tooz over a real Redis."""

import pytest
from oslo_config import cfg

from telemeter import coordination, service
from tests.functional.fixtures import coordination as members_fixture
from tests.functional.fixtures.coordination import OBJECTS, owned


@pytest.fixture
def make_member(redis_url):
    with members_fixture.members(redis_url) as make:
        yield make


def test_members_split_objects_and_take_over_when_one_leaves(make_member):
    group = 'test-group-split'
    first, second = make_member('first'), make_member('second')
    first.join_partitioned_group(group)
    second.join_partitioned_group(group)
    first.run_watchers()
    second.run_watchers()
    mine, theirs = owned(first, group), owned(second, group)
    assert mine.isdisjoint(theirs)
    assert mine | theirs == set(OBJECTS)
    assert mine and theirs

    second.stop()
    first.run_watchers()
    assert owned(first, group) == set(OBJECTS)


def test_without_backend_everything_belongs_to_self():
    conf = service.prepare_service(argv=['x'], config_files=[],
                                   conf=cfg.ConfigOpts())
    member = coordination.PartitionCoordinator(conf)
    member.start()
    assert not member.is_active
    assert member.join_partitioned_group('g') is None
    assert all(member.belongs_to_self('g', o) for o in OBJECTS)
    member.stop()
