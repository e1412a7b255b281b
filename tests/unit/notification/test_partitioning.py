"""Workload partitioning: queue choice, the pipe publisher and endpoints,
and the lock-guarded hand-over of queues between agents."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time

import oslo_messaging
import pytest

from telemeter import messaging, pipeline, sample
from telemeter.notification import partitioning, pipe, pipe_endpoints
from telemeter.notification import service as agent
from telemeter.publisher import utils
from telemeter.storage import models
from tests.unit.notification import payloads
from tests.unit.notification.conftest import (
    EVENT_PIPELINE,
    SAMPLE_PIPELINE,
    published_events,
    published_samples,
)

RATE_PIPELINE = """
sources:
  - {name: cpu_source, meters: [cpu], sinks: [cpu_sink]}
  - {name: all, meters: ["*"], sinks: [plain]}
sinks:
  - name: cpu_sink
    transformers:
      - name: rate_of_change
        parameters: {target: {name: cpu_util, unit: "%", type: gauge}}
    publishers: [test://]
  - {name: plain, publishers: [test://]}
"""


def _sample(name='cpu', resource='r-1', volume=1.0, seconds=0,
            sample_type='cumulative'):
    moment = datetime.datetime(2031, 1, 1) + datetime.timedelta(
        seconds=seconds)
    return sample.Sample(name, sample_type, 'ns', volume, 'u', 'p',
                         resource, timestamp=moment.isoformat())


# -- queue choice ------------------------------------------------------------

def test_queue_index_is_the_md5_of_the_joined_keys():
    # MD5('') = d41d8cd98f00b204e9800998ecf8427e (RFC 1321 test suite).
    empty = int('d41d8cd98f00b204e9800998ecf8427e', 16)
    assert pipe.queue_index({'resource_id': None}, ['resource_id'], 10) == (
        empty % 10)
    # MD5('abc') = 900150983cd24fb0d6963f7d28e17f72 (RFC 1321).
    abc = int('900150983cd24fb0d6963f7d28e17f72', 16)
    assert pipe.queue_index({'a': 'a', 'b': '', 'c': 'bc'},
                            ['a', 'b', 'c'], 7) == abc % 7
    assert pipe.queue_index({'resource_id': 'abc', 'user_id': None},
                            ['resource_id', 'user_id'], 13) == abc % 13


def test_queue_index_is_the_same_in_every_process():
    resources = [f'instance-{i}' for i in range(50)]
    mine = [pipe.queue_index({'resource_id': r}, ['resource_id'], 10)
            for r in resources]
    code = ('import sys; from telemeter.notification import pipe; '
            'print([pipe.queue_index({"resource_id": f"instance-{i}"}, '
            '["resource_id"], 10) for i in range(50)])')
    for seed in ('1', '2', 'random'):
        out = subprocess.run(
            [sys.executable, '-W', 'ignore', '-c', code],
            env=dict(os.environ, PYTHONHASHSEED=seed), capture_output=True,
            text=True, check=True).stdout
        assert out.strip() == str(mine)
    # And the resources do spread over the queues.
    assert len(set(mine)) >= 8


def test_topic_names():
    assert pipe.queue_topic('cpu_source:cpu_sink', 3) == (
        'telemeter-pipe-cpu_source:cpu_sink-3')


# -- sending side ------------------------------------------------------------

class _Current:
    def __init__(self, manager):
        self.current = manager
        self.conf = manager.conf


@pytest.fixture
def rate_pipelines(conf, write_yaml):
    conf.set_override('pipeline_cfg_file',
                      write_yaml('pipeline.yaml', RATE_PIPELINE))
    return pipeline.setup_pipeline(conf)


def test_route_by_pipeline_and_resource(conf, rate_pipelines):
    publisher = pipe.PipePublisher(conf, _Current(rate_pipelines),
                                   pipe.SAMPLES, transport=None)
    cpu = [_sample('cpu', f'vm-{i}') for i in range(20)]
    memory = _sample('memory', 'vm-0')
    routed = publisher.route([*cpu, memory])
    queues = conf.notification.pipeline_processing_queues
    for resource in (f'vm-{i}' for i in range(20)):
        index = pipe.queue_index({'resource_id': resource},
                                 ['resource_id'], queues)
        # cpu goes to both pipelines, on the same queue index.
        for name in ('cpu_source:cpu_sink', 'all:plain'):
            assert resource in [m['resource_id']
                                for m in routed[(name, index)]]
    # memory only to the catch-all pipeline.
    memory_queue = pipe.queue_index({'resource_id': 'vm-0'},
                                    ['resource_id'], queues)
    assert 'memory' not in [m['counter_name'] for m in
                            routed[('cpu_source:cpu_sink', memory_queue)]]
    assert 'memory' in [m['counter_name']
                        for m in routed[('all:plain', memory_queue)]]
    # Signed with the telemetry secret.
    message = routed[('all:plain', memory_queue)][0]
    assert utils.verify_signature(message, conf.publisher.telemetry_secret)
    assert sum(len(v) for v in routed.values()) == 41


def test_grouping_keys_of_the_sink_transformers(rate_pipelines):
    by_name = {p.name: p for p in rate_pipelines.pipelines}
    assert pipe.grouping_keys(by_name['cpu_source:cpu_sink']) == [
        'resource_id']
    # No transformer: the default key.
    assert pipe.grouping_keys(by_name['all:plain']) == ['resource_id']


def test_events_are_routed_by_event_type(conf, event_pipelines):
    publisher = pipe.PipePublisher(conf, _Current(event_pipelines),
                                   pipe.EVENTS, transport=None)
    event = models.Event('m', 'compute.instance.update',
                         datetime.datetime(2031, 1, 1), [], {})
    [(name, index)] = publisher.route([event]).keys()
    assert name == 'event:s:k'
    assert index == pipe.queue_index({'event_type':
                                      'compute.instance.update'},
                                     ['event_type'], 10)


# -- receiving side ----------------------------------------------------------

def _ipc_message(pipeline_name, dicts):
    return {'ctxt': {}, 'publisher_id': pipeline_name,
            'event_type': pipe.SAMPLE_EVENT_TYPE, 'payload': dicts,
            'metadata': {'message_id': 'x', 'timestamp': 'y'}}


def test_sample_endpoint_verifies_sorts_and_feeds_one_pipeline(
        conf, rate_pipelines, caplog):
    secret = conf.publisher.telemetry_secret
    endpoint = pipe_endpoints.SamplePipeEndpoint(
        conf, _Current(rate_pipelines), 'cpu_source:cpu_sink')
    assert endpoint.filter_rule.match({}, 'cpu_source:cpu_sink', 'e', {},
                                      {})
    assert not endpoint.filter_rule.match({}, 'cpu_source:cpu_sink2', 'e',
                                          {}, {})
    assert not endpoint.filter_rule.match({}, 'cpu_source', 'e', {}, {})
    # Cumulative cpu of one resource: 10 s apart, +20e9 ns then +30e9 ns;
    # sent out of order, across two messages, plus a forged one.
    first = utils.meter_message_from_counter(
        _sample(volume=100e9, seconds=0), secret)
    second = utils.meter_message_from_counter(
        _sample(volume=120e9, seconds=10), secret)
    third = utils.meter_message_from_counter(
        _sample(volume=150e9, seconds=20), secret)
    forged = utils.meter_message_from_counter(
        _sample(volume=1e20, seconds=15), 'wrong secret')
    result = endpoint.sample([_ipc_message('cpu_source:cpu_sink',
                                           [third, forged]),
                              _ipc_message('cpu_source:cpu_sink',
                                           [first, second, 'junk'])])
    assert result == oslo_messaging.NotificationResult.HANDLED
    assert endpoint.rejected == 2
    by_name = {p.name: p for p in rate_pipelines.pipelines}
    rates = by_name['cpu_source:cpu_sink'].sink.publishers[0].samples
    # (120e9 - 100e9) / 10 s = 2e9 ns/s; (150e9 - 120e9) / 10 = 3e9 ns/s.
    assert [s.volume for s in rates] == [2e9, 3e9]
    assert [s.name for s in rates] == ['cpu_util', 'cpu_util']
    # Only that pipeline ran (the catch-all shares the test publisher, so
    # nothing but the rates reached it).
    assert len(by_name['all:plain'].sink.publishers[0].samples) == 2


def test_sample_endpoint_rebuilds_samples(conf, sample_pipelines):
    secret = conf.publisher.telemetry_secret
    original = _sample('disk.size', 'vol-1', 3.5, 5)
    original.monotonic_time = 12.5
    original.source = 'custom'
    message = utils.meter_message_from_counter(original, secret)
    endpoint = pipe_endpoints.SamplePipeEndpoint(
        conf, _Current(sample_pipelines), 's:k')
    endpoint.sample([_ipc_message('s:k', [message])])
    [rebuilt] = published_samples(sample_pipelines)
    assert (rebuilt.name, rebuilt.type, rebuilt.unit, rebuilt.volume,
            rebuilt.user_id, rebuilt.project_id, rebuilt.resource_id,
            rebuilt.timestamp, rebuilt.source, rebuilt.monotonic_time) == (
        'disk.size', 'cumulative', 'ns', 3.5, 'u', 'p', 'vol-1',
        original.timestamp, 'custom', 12.5)
    # derived from the sent id and the pipeline: the same message
    # delivered again gives the same id (storage keeps it once)
    assert rebuilt.id != original.id
    assert rebuilt.id == sample.derived_id(original.id, 'pipe', 's:k')
    endpoint.sample([_ipc_message('s:k', [message])])
    again = published_samples(sample_pipelines)[-1]
    assert again.id == rebuilt.id


def test_sample_endpoint_drops_unparsable_and_unknown_pipeline(
        conf, sample_pipelines, caplog):
    secret = conf.publisher.telemetry_secret
    bad = _sample()
    bad.timestamp = 'yesterday'
    endpoint = pipe_endpoints.SamplePipeEndpoint(
        conf, _Current(sample_pipelines), 's:k')
    endpoint.sample([_ipc_message('s:k', [
        utils.meter_message_from_counter(bad, secret),
        utils.meter_message_from_counter(_sample(), secret)])])
    assert len(published_samples(sample_pipelines)) == 1
    assert 'dropping malformed datapoint' in caplog.text
    gone = pipe_endpoints.SamplePipeEndpoint(
        conf, _Current(sample_pipelines), 'removed:pipeline')
    assert gone.sample([_ipc_message('removed:pipeline', [])]) == (
        oslo_messaging.NotificationResult.HANDLED)
    assert 'no longer exists' in caplog.text


def test_event_endpoint_requeues_only_without_ack_on_event_error(
        conf, event_pipelines):
    secret = conf.publisher.telemetry_secret
    event = models.Event('m-1', 'volume.create.end',
                         datetime.datetime(2031, 1, 1, 5),
                         [models.Trait('size', 2, 10),
                          models.Trait('at', 4, datetime.datetime(
                              2031, 1, 1))], {'raw': 1})
    message = _ipc_message('event:s:k',
                           [utils.message_from_event(event, secret)])
    endpoint = pipe_endpoints.EventPipeEndpoint(
        conf, _Current(event_pipelines), 'event:s:k')
    handled = oslo_messaging.NotificationResult.HANDLED
    assert endpoint.sample([message]) == handled
    [rebuilt] = published_events(event_pipelines)
    assert rebuilt == event
    publisher = event_pipelines.pipelines[0].sink.publishers[0]

    def broken(events):
        raise RuntimeError('down')
    publisher.publish_events = broken
    # The default (False): requeued until a publisher takes them.
    assert endpoint.sample([message]) == (
        oslo_messaging.NotificationResult.REQUEUE)
    conf.set_override('ack_on_event_error', True, group='notification')
    assert endpoint.sample([message]) == handled


# -- queue ownership with locks ---------------------------------------

class FakeLock:
    def __init__(self, table, name, owner):
        self.table, self.name, self.owner = table, name, owner

    def acquire(self, blocking=True):
        if self.table.get(self.name) is None:
            self.table[self.name] = self.owner
            return True
        return False

    def release(self):
        # as tooz's: a lock someone else holds now is left alone
        self.released = getattr(self, 'released', 0) + 1
        if self.table.get(self.name) != self.owner:
            return False
        del self.table[self.name]
        return True

    def is_still_owner(self):
        return self.table.get(self.name) == self.owner


class FakeCoordinator:
    """Stands in for PartitionCoordinator: ``owned`` says what the hash
    ring currently gives this member."""

    is_active = True

    def __init__(self, name, table, owned):
        self.name, self.table, self.owned = name, table, set(owned)

    def run_watchers(self):
        pass

    def members(self, group):
        return {self.name}

    def belongs_to_self(self, group, index):
        return index in self.owned

    def get_lock(self, name):
        return FakeLock(self.table, name, self.name)


class FakeListener:
    def __init__(self, log, owner, targets):
        self.log, self.owner = log, owner
        self.queues = sorted({int(t.topic.rsplit('-', 1)[1])
                              for t in targets})

    def start(self, override_pool_size=None):
        self.log.append((self.owner, 'start', self.queues,
                         override_pool_size))

    def stop(self):
        self.log.append((self.owner, 'stop', self.queues))

    def wait(self):
        self.log.append((self.owner, 'wait', self.queues))


@pytest.fixture
def ownership_factory(conf, sample_pipelines, event_pipelines, monkeypatch):
    log = []
    table = {}
    conf.set_override('pipeline_processing_queues', 4, group='notification')

    def factory(name, owned):
        def listener(transport, targets, endpoints, **kwargs):
            assert kwargs['allow_requeue'] is True
            assert kwargs['batch_size'] == conf.notification.batch_size
            assert {e.pipeline_name for e in endpoints} == {'s:k',
                                                            'event:s:k'}
            return FakeListener(log, name, targets)

        coordinator = FakeCoordinator(name, table, owned)
        ownership = partitioning.QueueOwnership(
            conf, coordinator, None, _Current(sample_pipelines),
            _Current(event_pipelines))
        # Each ownership builds its listeners through this.
        ownership._listener_factory = listener
        return ownership, coordinator

    monkeypatch.setattr(
        messaging, 'get_batch_notification_listener',
        lambda transport, targets, endpoints, **kw: factory.current(
            transport, targets, endpoints, **kw))
    return factory, log, table


def _refresh(ownership, factory):
    factory.current = ownership._listener_factory
    ownership.refresh()


def test_queues_move_only_after_the_old_owner_released_them(
        ownership_factory):
    factory, log, table = ownership_factory
    first, first_coord = factory('A', {0, 1, 2, 3})
    _refresh(first, factory)
    assert first.consuming == {0, 1, 2, 3}
    assert table == {partitioning.lock_name(i): 'A' for i in range(4)}

    # B joins: the ring now gives it 2 and 3, but A still holds them.
    second, _second_coord = factory('B', {2, 3})
    _refresh(second, factory)
    assert second.consuming == set()
    assert second.listener is None

    # A learns of B: it stops consuming 2 and 3 *then* releases them.
    first_coord.owned = {0, 1}
    del log[:]
    _refresh(first, factory)
    assert first.consuming == {0, 1}
    assert log[:3] == [('A', 'stop', [0, 1, 2, 3]),
                       ('A', 'wait', [0, 1, 2, 3]),
                       ('A', 'start', [0, 1], 1)]
    assert table == {partitioning.lock_name(0): 'A',
                     partitioning.lock_name(1): 'A'}

    # Only now can B take them.
    _refresh(second, factory)
    assert second.consuming == {2, 3}
    assert table[partitioning.lock_name(2)] == 'B'


def test_a_lost_lock_stops_consumption(ownership_factory):
    factory, _log, table = ownership_factory
    first, _coord = factory('A', {0, 1})
    _refresh(first, factory)
    # The lock of 1 expired and someone else took it.
    table[partitioning.lock_name(1)] = 'C'
    _refresh(first, factory)
    assert first.consuming == {0}
    # The lock stays C's: A does not release what it no longer holds.
    assert table[partitioning.lock_name(1)] == 'C'


def test_locks_lost_with_the_backend_data_are_taken_again(
        ownership_factory):
    factory, log, table = ownership_factory
    first, _coord = factory('A', {0, 1})
    _refresh(first, factory)
    del log[:]
    # The backend restarted empty: every lock is gone, nobody took them.
    table.clear()
    _refresh(first, factory)
    # A holds them again and its listener was not moved (state kept)
    assert table == {partitioning.lock_name(0): 'A',
                     partitioning.lock_name(1): 'A'}
    assert first.consuming == {0, 1}
    assert log == []


def test_stop_releases_everything_after_the_listener(ownership_factory):
    factory, log, table = ownership_factory
    first, _coord = factory('A', {0, 1, 2, 3})
    _refresh(first, factory)
    del log[:]
    factory.current = first._listener_factory
    first.stop()
    assert log == [('A', 'stop', [0, 1, 2, 3]), ('A', 'wait', [0, 1, 2, 3])]
    assert table == {}
    assert first.consuming == set()


def test_pool_size_is_one_when_batching(ownership_factory, conf):
    factory, log, _table = ownership_factory
    conf.set_override('batch_size', 1, group='notification')
    conf.set_override('max_parallel_requests', 9)
    first, _coord = factory('A', {0})
    _refresh(first, factory)
    assert log[-1] == ('A', 'start', [0], 9)


# -- the agent end to end over the fake transport ---------------------

def test_partitioned_agent_without_backend_owns_every_queue(
        conf, fake_transport_url, write_yaml, meters_dir):
    meters_dir('m.yaml', """
        metric:
          - name: memory
            event_type: compute\\.instance\\.
            type: gauge
            unit: MB
            volume: $.payload.memory_mb
            resource_id: $.payload.instance_id
        """)
    conf.set_override('pipeline_cfg_file',
                      write_yaml('pipeline.yaml', SAMPLE_PIPELINE))
    conf.set_override('event_pipeline_cfg_file',
                      write_yaml('event_pipeline.yaml', EVENT_PIPELINE))
    conf.set_override('workload_partitioning', True, group='notification')
    conf.set_override('batch_timeout', 1, group='notification')
    conf.set_override('pipeline_processing_queues', 3,
                      group='notification')
    svc = agent.NotificationService(0, conf)
    svc.run()
    try:
        assert svc.ownership.consuming == {0, 1, 2}
        notifier = oslo_messaging.Notifier(
            messaging.get_transport(conf), driver='messagingv2',
            topics=['notifications'], publisher_id='compute.host')
        for i in range(6):
            notification = payloads.instance(instance_id=f'vm-{i}')
            notifier.info(notification['ctxt'], notification['event_type'],
                          notification['payload'])
        deadline = time.monotonic() + 15
        samples = published_samples(svc.sample_pipelines.current)
        events = published_events(svc.event_pipelines.current)
        while time.monotonic() < deadline and (len(samples) < 6
                                               or len(events) < 6):
            time.sleep(0.05)
        assert sorted(s.resource_id for s in samples) == [
            f'vm-{i}' for i in range(6)]
        assert len(events) == 6
        # The handlers were given the pipe publisher, not the pipelines.
        meter = next(e for e in svc.listeners[0].dispatcher.endpoints
                 if type(e).__name__ == 'ProcessMeterNotifications')
        assert isinstance(meter.manager, pipe.PipePublisher)
    finally:
        svc.terminate()


# -- transformer state follows the queues ---------------------------------

def _rates_of(rate_pipelines):
    by_name = {p.name: p for p in rate_pipelines.pipelines}
    return by_name['cpu_source:cpu_sink'].sink.publishers[0].samples


def test_transformer_state_lives_with_the_queue(conf, rate_pipelines):
    secret = conf.publisher.telemetry_secret
    states = pipe_endpoints.TransformerStates()
    endpoint = pipe_endpoints.SamplePipeEndpoint(
        conf, _Current(rate_pipelines), 'cpu_source:cpu_sink', states)

    def feed(resource, volume, seconds):
        endpoint.sample([_ipc_message('cpu_source:cpu_sink', [
            utils.meter_message_from_counter(
                _sample(resource=resource, volume=volume, seconds=seconds),
                secret)])])

    queues = conf.notification.pipeline_processing_queues
    index = pipe.queue_index({'resource_id': 'vm-a'}, ['resource_id'],
                             queues)
    other = next(f'vm-{i}' for i in range(100) if pipe.queue_index(
        {'resource_id': f'vm-{i}'}, ['resource_id'], queues) != index)
    feed('vm-a', 100, 0)
    feed(other, 1000, 0)
    # (130 - 100) / 10 s = 3.0
    feed('vm-a', 130, 10)
    assert [s.volume for s in _rates_of(rate_pipelines)] == [3.0]
    # The template transformers of the sink were never used: their cache
    # (transformers.md: cache[name + resource_id]) is empty.
    sink = rate_pipelines.pipelines[0].sink
    assert sink.transformers[0].cache == {}
    # The queue of vm-a is given up (and maybe taken back later): its
    # next sample has no predecessor here.
    states.forget(index)
    feed('vm-a', 190, 20)
    assert [s.volume for s in _rates_of(rate_pipelines)] == [3.0]
    # The other queue kept its state: (1500 - 1000) / 20 s = 25.0
    feed(other, 1500, 20)
    assert [s.volume for s in _rates_of(rate_pipelines)] == [3.0, 25.0]
    # And vm-a goes on from its fresh start: (250 - 190) / 10 s = 6.0
    feed('vm-a', 250, 30)
    assert [s.volume for s in _rates_of(rate_pipelines)] == [3.0, 25.0,
                                                              6.0]
    states.clear()
    feed(other, 1600, 30)
    assert len(_rates_of(rate_pipelines)) == 3


def test_giving_a_queue_up_forgets_its_state(ownership_factory):
    factory, _log, _table = ownership_factory
    first, coordinator = factory('A', {0, 1, 2, 3})
    _refresh(first, factory)
    first.states._states = {('sink', i): ['state'] for i in range(4)}
    coordinator.owned = {0, 1}
    _refresh(first, factory)
    assert sorted(first.states._states) == [('sink', 0), ('sink', 1)]
    # Losing a lock forgets too.
    _table[partitioning.lock_name(1)] = 'C'
    _refresh(first, factory)
    assert sorted(first.states._states) == [('sink', 0)]


def test_sighup_moves_the_pipe_listener_to_the_new_pipelines(
        conf, fake_transport_url, write_yaml, meters_dir):
    meters_dir('m.yaml', 'metric: []\n')
    path = write_yaml('pipeline.yaml', SAMPLE_PIPELINE)
    conf.set_override('pipeline_cfg_file', path)
    conf.set_override('event_pipeline_cfg_file',
                      write_yaml('event_pipeline.yaml', EVENT_PIPELINE))
    conf.set_override('workload_partitioning', True, group='notification')
    conf.set_override('pipeline_processing_queues', 2,
                      group='notification')
    svc = agent.NotificationService(0, conf)
    svc.run()
    try:
        ownership = svc.ownership

        def topics():
            # The targets the running pipe listener consumes.
            return sorted(t.topic for t in ownership.listener.targets)
        assert topics() == ['telemeter-pipe-event:s:k-0',
                            'telemeter-pipe-event:s:k-1',
                            'telemeter-pipe-s:k-0', 'telemeter-pipe-s:k-1']
        ownership.states._states[('k', 0)] = ['old state']
        old_listener = ownership.listener
        with open(path, 'w') as f:
            f.write(SAMPLE_PIPELINE.replace('name: s,', 'name: renamed,'))
        svc.reload()
        assert ownership.listener is not old_listener
        assert topics() == ['telemeter-pipe-event:s:k-0',
                            'telemeter-pipe-event:s:k-1',
                            'telemeter-pipe-renamed:k-0',
                            'telemeter-pipe-renamed:k-1']
        assert ownership.states._states == {}
    finally:
        svc.terminate()
