"""The polling agent: loading, tasks, one cycle, batching, threads."""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import time
from typing import Any

import pytest
from oslo_config import cfg
from oslo_utils import timeutils
from stevedore import extension

from telemeter import sample as sample_mod
from telemeter.pipeline import base
from telemeter.polling import loading, plugin_base
from telemeter.polling import manager as manager_mod
from telemeter.polling import task as task_mod
from telemeter.publisher import utils as publisher_utils


class FakePollster(plugin_base.PollsterBase):
    """Records its calls; yields one sample per resource by default."""

    def __init__(self, conf: cfg.ConfigOpts, name: str,
                 default_discovery: str | None = None) -> None:
        super().__init__(conf)
        self.name = name
        self._default_discovery = default_discovery
        self.calls: list[list[Any]] = []
        self.caches: list[dict] = []
        self.samples_per_call: int | None = None
        self.error: Exception | None = None
        self.error_after: int = 0

    @property
    def default_discovery(self) -> str | None:
        return self._default_discovery

    def make_sample(self, resource: Any, i: int = 0) -> sample_mod.Sample:
        return sample_mod.Sample(
            name=self.name, type=sample_mod.TYPE_GAUGE, unit='u', volume=i,
            user_id='user', project_id='project', resource_id=str(resource),
            timestamp='2000-01-01T00:00:00', resource_metadata={'k': 'v'})

    def get_samples(self, manager, cache, resources):
        self.calls.append(list(resources))
        self.caches.append(cache)
        if self.error is not None and not self.error_after:
            raise self.error
        count = (len(resources) if self.samples_per_call is None
                 else self.samples_per_call)
        for i in range(count):
            if self.error is not None and i == self.error_after:
                raise self.error
            yield self.make_sample(resources[i % len(resources)], i)


class FakeDiscovery(plugin_base.DiscoveryBase):
    def __init__(self, conf: cfg.ConfigOpts, result: Any) -> None:
        super().__init__(conf)
        self.result = result
        self.calls: list[str | None] = []

    def discover(self, manager, param=None):
        self.calls.append(param)
        if isinstance(self.result, Exception):
            raise self.result
        return list(self.result)


class RecordingNotifier:
    def __init__(self) -> None:
        self.calls: list[tuple[dict, str, dict]] = []

    def sample(self, ctxt: dict, event_type: str, payload: dict) -> None:
        self.calls.append((ctxt, event_type, payload))

    @property
    def batches(self) -> list[list[dict]]:
        return [payload['samples'] for _, _, payload in self.calls]

    @property
    def samples(self) -> list[dict]:
        return [s for batch in self.batches for s in batch]


def ext(name: str, obj: Any) -> extension.Extension:
    return extension.Extension(name, None, type(obj), obj)


@pytest.fixture
def build(conf, polling_file, monkeypatch):
    """Build an AgentManager over fake pollsters and discoveries."""

    def _build(polling_yaml: str, pollsters: list[FakePollster],
               discoveries: dict[str, FakeDiscovery] | None = None,
               namespaces: list[str] | None = None,
               pollster_list: list[str] | None = None,
               queue: Any = None) -> manager_mod.AgentManager:
        polling_file(polling_yaml)
        discoveries = discoveries or {}

        def fake_extensions(self, category, agent_ns, invoke=True):
            if category == 'poll':
                return [ext(p.name, p) for p in pollsters]
            if category == 'discover':
                return [ext(n, d) for n, d in discoveries.items()]
            return []

        monkeypatch.setattr(loading.PluginLoader, '_extensions',
                            fake_extensions)
        agent = manager_mod.AgentManager(0, conf, namespaces or ['central'],
                                         pollster_list, queue=queue)
        agent.sender.notifier = RecordingNotifier()
        return agent

    return _build


def one_cycle(agent: manager_mod.AgentManager) -> None:
    for task in agent.setup_polling_tasks().values():
        agent.interval_task(task)


# -- loading -----------------------------------------------------------------


def test_notifier_settings(build, conf):
    conf.set_override('telemetry_driver', 'messaging',
                      group='publisher_notifier')
    polling = 'sources: [{name: s, interval: 10, meters: ["*"]}]'
    agent = build(polling, [FakePollster(conf, 'a')])
    # build() replaced the notifier; check the one of a fresh agent.
    agent2 = manager_mod.AgentManager(0, conf, ['central'])
    assert agent2.notifier.publisher_id == 'telemeter.polling'
    assert agent2.notifier._driver_names == ['messaging']
    assert agent.transport is agent2.transport


def test_pollster_list_filters(build, conf):
    pollsters = [FakePollster(conf, n)
                 for n in ('cpu', 'disk.read', 'disk.write', 'memory')]
    agent = build('sources: [{name: s, interval: 10, meters: ["*"]}]',
                  pollsters, pollster_list=['disk.*', 'cpu'])
    assert [e.name for e in agent.extensions] == ['cpu', 'disk.read',
                                                  'disk.write']


def test_empty_pollsters_list(build, conf):
    with pytest.raises(manager_mod.EmptyPollstersList) as info:
        build('sources: [{name: s, interval: 10, meters: ["*"]}]',
              [FakePollster(conf, 'cpu')], pollster_list=['nothing*'])
    assert str(info.value) == (
        'No valid pollsters can be loaded with the startup parameters '
        'polling-namespaces and pollster-list.')


def _set_backend_url(conf, url):
    try:
        conf.coordination.backend_url  # noqa: B018
    except cfg.NoSuchOptError:
        conf.register_opts([cfg.StrOpt('backend_url')], group='coordination')
    conf.set_override('backend_url', url, group='coordination')


def test_pollster_list_forbidden_with_coordination(build, conf):
    _set_backend_url(conf, 'file:///tmp/tooz')
    with pytest.raises(manager_mod.PollsterListForbidden) as info:
        build('sources: [{name: s, interval: 10, meters: ["*"]}]',
              [FakePollster(conf, 'cpu')], pollster_list=['cpu'])
    assert 'It is forbidden to use pollster-list option of polling agent' \
        in str(info.value)
    # Without a pollster list coordination is accepted.
    build('sources: [{name: s, interval: 10, meters: ["*"]}]',
          [FakePollster(conf, 'cpu')])


def test_invalid_polling_file_fails_construction(build, conf):
    with pytest.raises(base.PipelineException):
        build('sources: [{name: s, interval: 0, meters: ["*"]}]',
              [FakePollster(conf, 'cpu')])


class _EntryPoint:
    name = 'broken'


def test_load_failure_callback(caplog):
    callback = loading.PluginLoader._on_load_failure
    with caplog.at_level(logging.DEBUG):
        callback(None, _EntryPoint(), plugin_base.ExtensionLoadError('env'))
        callback(None, _EntryPoint(), ImportError('no module x'))
    assert 'Skip loading extension for broken' in caplog.text
    assert 'Failed to import extension for broken: no module x' \
        in caplog.text
    with pytest.raises(ValueError, match='bad'):
        callback(None, _EntryPoint(), ValueError('bad'))


def test_pollster_setup_failure_is_extension_load_error(conf):
    class Broken(FakePollster):
        def setup_environment(self):
            raise RuntimeError('no libvirt here')

    with pytest.raises(plugin_base.ExtensionLoadError, match='no libvirt'):
        Broken(conf, 'x')


def test_builder_pollsters(conf, polling_file, monkeypatch, caplog):
    class Builder(plugin_base.PollsterBase):
        default_discovery = None

        def get_samples(self, manager, cache, resources):
            return []

        @classmethod
        def build_pollsters(cls, conf):
            return [('built.a', FakePollster(conf, 'built.a')),
                    ('built.b', FakePollster(conf, 'built.b'))]

    class BrokenBuilder(Builder):
        @classmethod
        def build_pollsters(cls, conf):
            raise RuntimeError('bad definitions')

    exts = Builder.get_pollsters_extensions(conf)
    assert [(e.name, e.plugin, e.entry_point) for e in exts] == [
        ('built.a', Builder, None), ('built.b', Builder, None)]
    assert exts[0].obj.name == 'built.a'
    with pytest.raises(plugin_base.ExtensionLoadError):
        BrokenBuilder.get_pollsters_extensions(conf)

    def fake_extensions(self, category, agent_ns, invoke=True):
        if category == 'builder.poll':
            assert not invoke
            return [extension.Extension('good', None, Builder, None),
                    extension.Extension('broken', None, BrokenBuilder,
                                        None)]
        return []

    polling_file('sources: [{name: s, interval: 10, meters: ["*"]}]')
    monkeypatch.setattr(loading.PluginLoader, '_extensions',
                        fake_extensions)
    with caplog.at_level(logging.ERROR):
        agent = manager_mod.AgentManager(0, conf, ['central'])
    assert [e.name for e in agent.extensions] == ['built.a', 'built.b']
    assert 'Skip loading extension for broken' in caplog.text


def test_real_entry_points(conf, polling_file):
    polling_file('sources: [{name: s, interval: 10, meters: ["host.*"]}]')
    agent = manager_mod.AgentManager(0, conf, ['compute'])
    names = sorted(e.name for e in agent.extensions)
    assert {'host.cpu.time', 'host.load.1min'} <= set(names)
    assert 'local_node' in [d.name for d in agent.discoveries]
    for e in agent.extensions:
        if e.name.startswith('host.'):
            assert e.obj.conf is conf
    assert agent.partition_coordinator is None


# -- tasks -------------------------------------------------------------------


def test_setup_polling_tasks(build, conf):
    pollsters = [FakePollster(conf, n) for n in ('cpu', 'disk', 'memory')]
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu]}
          - {name: b, interval: 600, meters: ["*", "!cpu"]}
          - {name: c, interval: 60, meters: [memory, cpu]}
          - {name: d, interval: 30, meters: [nothing]}
        """, pollsters)
    tasks = agent.setup_polling_tasks()
    assert sorted(tasks) == [60, 600]
    by_source = {src.name: [p.name for p in ps]
                 for task in tasks.values()
                 for src, ps in task.pollster_matches.items()}
    assert by_source == {'a': ['cpu'], 'b': ['disk', 'memory'],
                         'c': ['cpu', 'memory']}
    assert [s.name for s in tasks[60].pollster_matches] == ['a', 'c']


def test_no_task_no_thread(build, conf):
    agent = build('sources: [{name: a, interval: 60, meters: [nothing]}]',
                  [FakePollster(conf, 'cpu')])
    before = threading.active_count()
    agent.run()
    assert agent._workers == []
    assert threading.active_count() == before
    agent.terminate()


# -- one cycle ---------------------------------------------------------------


def test_cycle_static_resources_and_message(build, conf):
    conf.set_override('telemetry_secret', 's3cr3t', group='publisher')
    cpu = FakePollster(conf, 'cpu')
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu], resources: [r1, r2]}
        """, [cpu])
    before = timeutils.utcnow()
    one_cycle(agent)
    after = timeutils.utcnow()
    assert cpu.calls == [['r1', 'r2']]
    [(ctxt, event_type, payload)] = agent.notifier.calls
    assert ctxt == {}
    assert event_type == 'telemetry.polling'
    samples = payload['samples']
    assert [s['resource_id'] for s in samples] == ['r1', 'r2']
    ts = samples[0]['timestamp']
    assert all(s['timestamp'] == ts for s in samples)
    parsed = datetime.datetime.fromisoformat(ts)
    assert parsed.tzinfo is None
    assert before <= parsed <= after
    for s in samples:
        assert set(s) == {
            'source', 'counter_name', 'counter_type', 'counter_unit',
            'counter_volume', 'user_id', 'project_id', 'resource_id',
            'timestamp', 'resource_metadata', 'message_id',
            'monotonic_time', 'message_signature'}
        assert s['message_signature']
        assert publisher_utils.verify_signature(s, 's3cr3t')
        assert not publisher_utils.verify_signature(s, 'other')


def test_timestamp_taken_once_per_call(build, conf, monkeypatch):
    stamps = iter(['2031-05-06T07:08:09.101112', '2031-05-06T07:08:19.0'])

    class FakeNow:
        def isoformat(self):
            return next(stamps)

    monkeypatch.setattr(task_mod.timeutils, 'utcnow', lambda: FakeNow())
    cpu, mem = FakePollster(conf, 'cpu'), FakePollster(conf, 'mem')
    cpu.samples_per_call = mem.samples_per_call = 3
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu, mem], resources: [r1]}
        """, [cpu, mem])
    one_cycle(agent)
    stamps_sent = [[s['timestamp'] for s in b]
                   for b in agent.notifier.batches]
    assert stamps_sent == [['2031-05-06T07:08:09.101112'] * 3,
                           ['2031-05-06T07:08:19.0'] * 3]


def test_dedup_across_sources(build, conf, caplog):
    cpu = FakePollster(conf, 'cpu')
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu], resources: [r1, r2, r1]}
          - {name: b, interval: 60, meters: [cpu], resources: [r2, r3]}
          - {name: c, interval: 60, meters: [cpu], resources: [r3, r1]}
        """, [cpu])
    with caplog.at_level(logging.INFO):
        one_cycle(agent)
    assert cpu.calls == [['r1', 'r2'], ['r3']]
    assert 'Polling pollster cpu in the context of a' in caplog.text
    assert 'Polling pollster cpu in the context of b' in caplog.text
    assert 'Skip pollster cpu, no new resources found this cycle' \
        in caplog.text
    # Next cycle starts with a fresh history.
    one_cycle(agent)
    assert cpu.calls[2:] == [['r1', 'r2'], ['r3']]


def test_shared_cache_per_cycle(build, conf):
    cpu, mem = FakePollster(conf, 'cpu'), FakePollster(conf, 'mem')
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu, mem], resources: [r]}
        """, [cpu, mem])
    one_cycle(agent)
    one_cycle(agent)
    assert cpu.caches[0] is mem.caches[0]
    assert cpu.caches[1] is mem.caches[1]
    assert cpu.caches[0] is not cpu.caches[1]


def test_no_resources(build, conf, caplog):
    cpu = FakePollster(conf, 'cpu')
    agent = build('sources: [{name: a, interval: 60, meters: [cpu]}]',
                  [cpu])
    with caplog.at_level(logging.INFO):
        one_cycle(agent)
    assert cpu.calls == []
    assert agent.notifier.calls == []
    assert 'Skip pollster cpu, no resources found this cycle' in caplog.text


def test_default_and_source_discovery(build, conf):
    node = FakeDiscovery(conf, ['n1'])
    other = FakeDiscovery(conf, ['o1', 'o2'])
    cpu = FakePollster(conf, 'cpu', default_discovery='node:param')
    mem = FakePollster(conf, 'mem', default_discovery='node:param')
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu]}
          - {name: b, interval: 60, meters: [mem], discovery: [other]}
          - {name: c, interval: 60, meters: [mem], resources: [s1],
             discovery: [other]}
        """, [cpu, mem], {'node': node, 'other': other})
    one_cycle(agent)
    assert cpu.calls == [['n1']]
    # Source discovery replaces the default one; static resources come
    # first; the discovery cache serves source c.
    assert mem.calls == [['o1', 'o2'], ['s1']]
    assert node.calls == ['param']
    assert other.calls == [None]


def test_discovery_cache_is_per_cycle(build, conf):
    node = FakeDiscovery(conf, ['n1'])
    cpu = FakePollster(conf, 'cpu', default_discovery='node')
    mem = FakePollster(conf, 'mem', default_discovery='node')
    agent = build('sources: [{name: a, interval: 60, meters: ["*"]}]',
                  [cpu, mem], {'node': node})
    one_cycle(agent)
    one_cycle(agent)
    assert node.calls == [None, None]
    assert cpu.calls == mem.calls == [['n1'], ['n1']]


def test_discovery_errors(build, conf, caplog):
    broken = FakeDiscovery(conf, RuntimeError('api down'))
    good = FakeDiscovery(conf, ['g'])
    cpu = FakePollster(conf, 'cpu')
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu],
             discovery: [nosuch, broken, good]}
        """, [cpu], {'broken': broken, 'good': good})
    with caplog.at_level(logging.WARNING):
        one_cycle(agent)
    assert 'Unknown discovery extension: nosuch' in caplog.text
    assert 'Unable to discover resources: api down' in caplog.text
    assert cpu.calls == [['g']]


def test_keystone_required_discovery(build, conf, caplog, monkeypatch):
    class NeedsImage(FakeDiscovery):
        KEYSTONE_REQUIRED_FOR_SERVICE = 'glance'

    try:
        conf.service_types.glance  # noqa: B018
    except cfg.NoSuchOptError:
        conf.register_opts([cfg.StrOpt('glance', default='image')],
                           group='service_types')
    disc = NeedsImage(conf, ['img'])
    cpu = FakePollster(conf, 'cpu', default_discovery='images')
    agent = build('sources: [{name: a, interval: 60, meters: [cpu]}]',
                  [cpu], {'images': disc})
    registered = {'image': False}
    monkeypatch.setattr(agent.keystone_session, 'service_registered',
                        lambda st: registered[st])
    with caplog.at_level(logging.WARNING):
        one_cycle(agent)
    assert disc.calls == []
    assert 'Skipping images, image service is not registered in keystone' \
        in caplog.text
    registered['image'] = True
    one_cycle(agent)
    assert cpu.calls == [['img']]


def test_blacklisting(build, conf, caplog):
    cpu = FakePollster(conf, 'cpu')
    cpu.error = plugin_base.PollsterPermanentError(['r2'])
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu], resources: [r1, r2]}
          - {name: b, interval: 600, meters: [cpu], resources: [r2]}
        """, [cpu])
    tasks = agent.setup_polling_tasks()
    with caplog.at_level(logging.ERROR):
        agent.interval_task(tasks[60])
    assert ("Prevent pollster cpu from polling ['r2'] on source a anymore!"
            in caplog.text)
    cpu.error = None
    agent.interval_task(tasks[60])
    agent.interval_task(tasks[600])
    # r2 is black-listed for (a, cpu) only.
    assert cpu.calls == [['r1', 'r2'], ['r1'], ['r2']]
    assert [s['resource_id'] for s in agent.notifier.samples] == ['r1', 'r2']


def test_blacklisted_resources_count_as_polled(build, conf, caplog):
    cpu = FakePollster(conf, 'cpu')
    cpu.error = plugin_base.PollsterPermanentError(['r1'])
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu], resources: [r1]}
        """, [cpu])
    one_cycle(agent)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        one_cycle(agent)
    assert cpu.calls == [['r1']]
    assert 'Skip pollster cpu, no new resources found this cycle' \
        in caplog.text


def test_error_does_not_stop_cycle(build, conf, caplog):
    cpu, mem = FakePollster(conf, 'cpu'), FakePollster(conf, 'mem')
    cpu.error = RuntimeError('boom')
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu, mem], resources: [r1]}
        """, [cpu, mem])
    with caplog.at_level(logging.ERROR):
        one_cycle(agent)
    assert 'Continue after error from cpu: boom' in caplog.text
    assert 'Traceback' in caplog.text
    assert mem.calls == [['r1']]
    assert [s['counter_name'] for s in agent.notifier.samples] == ['mem']
    # Not black-listed: polled again next cycle.
    one_cycle(agent)
    assert cpu.calls == [['r1'], ['r1']]


def test_error_midway_keeps_sent_batches(build, conf):
    conf.set_override('batch_size', 2, group='polling')
    cpu = FakePollster(conf, 'cpu')
    cpu.samples_per_call = 10
    cpu.error = RuntimeError('boom')
    cpu.error_after = 5
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu], resources: [r1]}
        """, [cpu])
    one_cycle(agent)
    # Samples 0-3 went out in two batches; sample 4 was dropped.
    assert [[s['counter_volume'] for s in b]
            for b in agent.notifier.batches] == [[0, 1], [2, 3]]


@pytest.mark.parametrize('batch_size,polled_batch,expected', [
    (50, True, [50, 50, 20]),
    (1, True, [1] * 120),
    (0, True, [1] * 120),
    (50, False, [1] * 120),
    (200, True, [120]),
    (40, True, [40, 40, 40]),
])
def test_batching(build, conf, batch_size, polled_batch, expected):
    conf.set_override('batch_size', batch_size, group='polling')
    conf.set_override('batch_polled_samples', polled_batch)
    cpu = FakePollster(conf, 'cpu')
    cpu.samples_per_call = 120
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu], resources: [r1]}
        """, [cpu])
    one_cycle(agent)
    assert [len(b) for b in agent.notifier.batches] == expected
    assert [s['counter_volume'] for s in agent.notifier.samples] == \
        list(range(120))


def test_batches_do_not_span_pollsters(build, conf):
    cpu, mem = FakePollster(conf, 'cpu'), FakePollster(conf, 'mem')
    cpu.samples_per_call = mem.samples_per_call = 3
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu, mem], resources: [r1]}
        """, [cpu, mem])
    one_cycle(agent)
    assert [[s['counter_name'] for s in b]
            for b in agent.notifier.batches] == [['cpu'] * 3, ['mem'] * 3]


def test_heartbeat_queue(build, conf, caplog):
    q: queue.Queue = queue.Queue(maxsize=1)
    cpu, mem = FakePollster(conf, 'cpu'), FakePollster(conf, 'mem')
    agent = build("""
        sources:
          - {name: a, interval: 60, meters: [cpu, mem], resources: [r1]}
        """, [cpu, mem], queue=q)
    with caplog.at_level(logging.WARNING):
        one_cycle(agent)
    item = q.get_nowait()
    assert item['pollster'] == 'cpu'
    assert item['timestamp'] == agent.notifier.samples[0]['timestamp']
    assert "Heartbeat queue full. Update failed: {'pollster': 'mem'" \
        in caplog.text


# -- keystone ---------------------------------------------------------------


def test_keystone_lazy_and_error_cached(build, conf, monkeypatch):
    agent = build('sources: [{name: a, interval: 60, meters: [cpu]}]',
                  [FakePollster(conf, 'cpu')])
    created: list[int] = []

    def failing():
        created.append(1)
        raise RuntimeError('keystone down')

    monkeypatch.setattr(agent.keystone_session, 'create', failing)
    assert created == []
    for _ in range(2):
        with pytest.raises(RuntimeError, match='keystone down'):
            agent.keystone  # noqa: B018
    assert created == [1]

    client = object()
    monkeypatch.setattr(agent.keystone_session, 'create',
                        lambda: created.append(2) or client)
    agent.interval_task(manager_mod.PollingTask(agent.parts))
    assert agent.keystone is client
    assert agent.keystone is client
    assert created == [1, 2]


# -- partitioning seam ------------------------------------------------------


def test_group_ids(build, conf):
    conf.set_override('partitioning_group_prefix', 'mygroup',
                      group='polling')
    agent = build('sources: [{name: a, interval: 60, meters: [cpu]}]',
                  [FakePollster(conf, 'cpu')],
                  namespaces=['compute', 'central'])
    assert agent.construct_group_id('global') == \
        'central-compute-mygroup-global'
    digest = manager_mod.hash_of_resources(['b', 'a'])
    assert digest == manager_mod.hash_of_resources(['a', 'b'])
    assert len(digest) == 32
    assert agent.belongs_to_self('any', 'r')


# -- threads -----------------------------------------------------------------


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_first_poll_immediate_and_prompt_terminate(build, conf):
    cpu = FakePollster(conf, 'cpu')
    agent = build("""
        sources:
          - {name: a, interval: 3600, meters: [cpu], resources: [r1]}
          - {name: b, interval: 1800, meters: [cpu], resources: [r2]}
        """, [cpu])
    agent.run()
    try:
        assert _wait_for(lambda: len(cpu.calls) == 2, timeout=2)
        assert sorted(t.name for t in agent._workers) == [
            'polling-every-1800s', 'polling-every-3600s']
    finally:
        start = time.monotonic()
        agent.terminate()
    assert time.monotonic() - start < 1
    assert not any(t.is_alive() for t in agent._workers)
    assert agent.transport is None


def test_polls_every_interval(build, conf):
    cpu = FakePollster(conf, 'cpu')
    agent = build("""
        sources:
          - {name: a, interval: 1, meters: [cpu], resources: [r1]}
        """, [cpu])
    agent.run()
    try:
        assert _wait_for(lambda: len(cpu.calls) >= 3, timeout=4)
    finally:
        agent.terminate()
    count = len(cpu.calls)
    time.sleep(1.2)
    assert len(cpu.calls) == count


def test_shuffle_delays_first_poll(build, conf, monkeypatch):
    conf.set_override('shuffle_time_before_polling_task', 10)
    drawn = []

    def uniform(low, high):
        drawn.append((low, high))
        return 5.0

    monkeypatch.setattr(manager_mod.random, 'uniform', uniform)
    cpu = FakePollster(conf, 'cpu')
    agent = build("""
        sources:
          - {name: a, interval: 1, meters: [cpu], resources: [r1]}
          - {name: b, interval: 2, meters: [cpu], resources: [r2]}
        """, [cpu])
    agent.run()
    time.sleep(0.5)
    start = time.monotonic()
    agent.terminate()
    assert time.monotonic() - start < 1
    assert cpu.calls == []
    assert drawn == [(0, 10)]  # one draw for every task


def test_terminate_waits_for_inflight_poll(build, conf):
    entered, release = threading.Event(), threading.Event()
    finished = []

    class Slow(FakePollster):
        def get_samples(self, manager, cache, resources):
            entered.set()
            release.wait(5)
            finished.append(True)
            yield self.make_sample(resources[0])

    slow = Slow(conf, 'slow')
    agent = build("""
        sources:
          - {name: a, interval: 3600, meters: [slow], resources: [r1]}
        """, [slow])
    agent.run()
    assert entered.wait(2)
    stopper = threading.Thread(target=agent.terminate)
    stopper.start()
    time.sleep(0.3)
    assert stopper.is_alive()
    release.set()
    stopper.join(2)
    assert not stopper.is_alive()
    assert finished == [True]
    assert len(agent.notifier.samples) == 1


def test_reload(build, conf, polling_file, caplog):
    cpu = FakePollster(conf, 'cpu')
    agent = build("""
        sources:
          - {name: a, interval: 3600, meters: [cpu], resources: [r1]}
        """, [cpu])
    agent.run()
    try:
        assert _wait_for(lambda: len(cpu.calls) == 1)
        polling_file("""
            sources:
              - {name: a, interval: 1800, meters: [cpu], resources: [r9]}
            """)
        agent.reload()
        assert sorted(agent.polling_tasks) == [1800]
        assert [t.name for t in agent._workers] == ['polling-every-1800s']
        assert _wait_for(lambda: cpu.calls[-1:] == [['r9']])

        polling_file("""
            sources:
              - {name: a, interval: -1, meters: [cpu]}
            """)
        with caplog.at_level(logging.ERROR):
            agent.reload()
        assert 'Invalid polling definitions, keeping the current polling ' \
            'tasks' in caplog.text
        assert 'Interval value should > 0' in caplog.text
        assert sorted(agent.polling_tasks) == [1800]
        assert all(t.is_alive() for t in agent._workers)
    finally:
        agent.terminate()
