"""Partitioning in the polling manager (with a recording coordinator) and
keystone errors during discovery."""

from __future__ import annotations

import logging

import pytest
from keystoneauth1 import exceptions as ka_exceptions

from telemeter import coordination
from telemeter.polling import partition
from tests.unit.polling import test_polling_manager as manager_tests

FakeDiscovery = manager_tests.FakeDiscovery
FakePollster = manager_tests.FakePollster
one_cycle = manager_tests.one_cycle
build = manager_tests.build  # the fixture, shared


class FakeCoordinator:
    """Owns the resources whose str() is in ``mine`` (per group)."""

    instances: list[FakeCoordinator] = []

    def __init__(self, conf, member_id=None):
        self.conf = conf
        self.started = self.stopped = False
        self.joined: list[str] = []
        self.watchers = 0
        self.mine: dict[str, set[str]] = {}
        self.error: Exception | None = None
        FakeCoordinator.instances.append(self)

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True

    def join_partitioned_group(self, group):
        self.joined.append(group)

    def run_watchers(self):
        self.watchers += 1

    def belongs_to_self(self, group, obj):
        if self.error:
            raise self.error
        return obj in self.mine.get(group, set())


@pytest.fixture
def coordinated(conf, monkeypatch):
    FakeCoordinator.instances = []
    conf.set_override('backend_url', 'redis://unused', group='coordination')
    conf.set_override('partitioning_group_prefix', 'pfx', group='polling')
    monkeypatch.setattr(coordination, 'PartitionCoordinator',
                        FakeCoordinator)
    return conf


POLLING = """
sources:
  - {name: static, interval: 3600, meters: [cpu], resources: [r1, r2, r3]}
  - {name: found, interval: 3600, meters: [mem], discovery: [disc]}
"""


def test_run_joins_groups_before_polling_and_terminate_leaves(
        build, coordinated):
    cpu, mem = FakePollster(coordinated, 'cpu'), FakePollster(
        coordinated, 'mem')
    agent = build(POLLING, [cpu, mem],
                  {'disc': FakeDiscovery(coordinated, ['d1'])},
                  namespaces=['compute', 'central'])
    static_group = ('central-compute-pfx-'
                    + partition.hash_of_resources(['r1', 'r2', 'r3']))
    assert agent.partitioning_groups() == [
        'central-compute-pfx-global', static_group]
    agent.partitioning.start(agent.partitioning_groups())
    [coord] = FakeCoordinator.instances
    assert coord.started and coord.watchers == 1
    assert coord.joined == agent.partitioning_groups()
    agent.terminate()
    assert coord.stopped and agent.partition_coordinator is None


def test_only_owned_static_and_discovered_resources_are_polled(
        build, coordinated):
    cpu, mem = FakePollster(coordinated, 'cpu'), FakePollster(
        coordinated, 'mem')
    agent = build(POLLING, [cpu, mem],
                  {'disc': FakeDiscovery(coordinated, ['d1', 'd2'])})
    agent.partitioning.start(agent.partitioning_groups())
    [coord] = FakeCoordinator.instances
    static_group = 'central-pfx-' + partition.hash_of_resources(
        ['r1', 'r2', 'r3'])
    coord.mine = {static_group: {'r1', 'r3'}, 'central-pfx-global': {'d2'}}
    one_cycle(agent)
    assert cpu.calls == [['r1', 'r3']]
    assert mem.calls == [['d2']]
    # r2 was given to another agent; now this one owns everything
    coord.mine[static_group] = {'r1', 'r2', 'r3'}
    one_cycle(agent)
    assert cpu.calls[-1] == ['r1', 'r2', 'r3']


def test_coordination_errors_skip_the_static_resources(build, coordinated,
                                                       caplog):
    cpu = FakePollster(coordinated, 'cpu')
    agent = build(POLLING, [cpu, FakePollster(coordinated, 'mem')],
                  {'disc': FakeDiscovery(coordinated, ['d1'])})
    agent.partitioning.start(agent.partitioning_groups())
    FakeCoordinator.instances[0].error = RuntimeError('redis down')
    with caplog.at_level(logging.ERROR):
        one_cycle(agent)
    assert cpu.calls == []
    assert 'Cannot tell which static resources of group' in caplog.text
    assert 'Unable to discover resources: redis down' in caplog.text


def test_without_backend_no_coordinator(build, conf):
    agent = build(POLLING, [FakePollster(conf, 'cpu')])
    agent.partitioning.start(agent.partitioning_groups())
    assert agent.partition_coordinator is None
    assert agent.belongs_to_self('any', 'thing')


def test_keystone_failure_skips_keystone_discoveries(build, conf, caplog,
                                                     monkeypatch):
    class NeedsImage(FakeDiscovery):
        KEYSTONE_REQUIRED_FOR_SERVICE = 'glance'

    class Failing(FakeDiscovery):
        def discover(self, manager, param=None):
            raise ka_exceptions.EndpointNotFound('no identity')

    cpu = FakePollster(conf, 'cpu')
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu], discovery: [img, fail]}
        """, [cpu], {'img': NeedsImage(conf, ['i']),
                     'fail': Failing(conf, [])})

    def refused():
        raise ka_exceptions.Unauthorized('bad password')

    monkeypatch.setattr(agent.keystone_session, 'create', refused)
    with caplog.at_level(logging.ERROR):
        one_cycle(agent)
    assert 'Skipping img, keystone issue: bad password' in caplog.text
    assert 'Skipping fail, keystone issue: no identity' in caplog.text
    assert cpu.calls == []


def test_failed_discovery_is_tried_once_per_cycle(build, conf, caplog):
    broken = FakeDiscovery(conf, RuntimeError('libvirt down'))
    cpu = FakePollster(conf, 'cpu', default_discovery='broken')
    mem = FakePollster(conf, 'mem', default_discovery='broken')
    agent = build('sources: [{name: a, interval: 60, meters: ["*"]}]',
                  [cpu, mem], {'broken': broken})
    with caplog.at_level(logging.ERROR):
        one_cycle(agent)
    assert broken.calls == [None]
    assert caplog.text.count('Unable to discover resources: libvirt down') \
        == 1
    one_cycle(agent)
    assert broken.calls == [None, None]
    assert cpu.calls == mem.calls == []
