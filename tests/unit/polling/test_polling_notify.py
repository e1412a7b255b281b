"""The agent's notifications, received by an oslo.messaging listener on
the in-process ``fake://`` transport."""

from __future__ import annotations

import threading
import time

import oslo_messaging
import pytest

from telemeter.polling import manager as manager_mod
from telemeter.polling.host import pollsters
from telemeter.publisher import utils as publisher_utils


class Endpoint:
    """Batch endpoint collecting ``sample`` (and ``info``) notifications."""

    def __init__(self) -> None:
        self.samples: list[dict] = []
        self.infos: list[dict] = []
        self.event = threading.Event()

    def sample(self, messages):
        self.samples.extend(messages)
        self.event.set()

    def info(self, messages):
        self.infos.extend(messages)


@pytest.fixture
def listener(fake_transport):
    endpoint = Endpoint()
    listener = oslo_messaging.get_batch_notification_listener(
        fake_transport, [oslo_messaging.Target(topic='notifications')],
        [endpoint], executor='threading', batch_size=100, batch_timeout=0.1)
    listener.start()
    yield endpoint
    listener.stop()
    listener.wait()


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


HOST_METERS = sorted([
    'host.cpu.time', 'host.memory.used', 'host.memory.total',
    'host.disk.read.bytes', 'host.disk.write.bytes',
    'host.network.incoming.bytes', 'host.network.outgoing.bytes',
    'host.load.1min', 'host.load.5min', 'host.load.15min'])


def test_host_meters_on_the_bus(conf, polling_file, listener):
    conf.set_override('telemetry_secret', 'polling-secret',
                      group='publisher')
    conf.set_override('host', 'node-1')
    polling_file("""
        sources:
          - name: host
            interval: 3600
            meters: ["host.*"]
          - name: load_again
            interval: 3600
            meters: ["host.load.*"]
    """)
    agent = manager_mod.AgentManager(0, conf, ['compute'])
    agent.run()
    try:
        assert wait_for(lambda: len(listener.samples) >= 10)
        time.sleep(0.3)  # nothing else is coming
    finally:
        agent.terminate()

    # One notification per pollster call (each yields one sample).
    assert [len(m['payload']['samples']) for m in listener.samples] == \
        [1] * 10
    assert listener.infos == []
    for message in listener.samples:
        assert message['publisher_id'] == 'telemeter.polling'
        assert message['event_type'] == 'telemetry.polling'
        assert message['ctxt'] == {}
    samples = [s for m in listener.samples for s in m['payload']['samples']]
    # load_again found nothing new: the host was polled in this cycle.
    assert sorted(s['counter_name'] for s in samples) == HOST_METERS
    for s in samples:
        assert s['resource_id'] == 'node-1'
        assert s['source'] == 'openstack'
        assert s['resource_metadata']['host'] == 'node-1'
        assert publisher_utils.verify_signature(s, 'polling-secret')


@pytest.mark.parametrize('batch_size,expected', [
    (50, [10]), (4, [4, 4, 2]), (0, [1] * 10)])
def test_batches_on_the_bus(conf, polling_file, listener, monkeypatch,
                            batch_size, expected):
    conf.set_override('batch_size', batch_size, group='polling')
    polling_file("""
        sources:
          - {name: host, interval: 3600, meters: [host.load.1min]}
    """)

    original = pollsters.Load1MinPollster.get_samples

    def ten_samples(self, manager, cache, resources):
        [sample] = original(self, manager, cache, resources)
        for i in range(10):
            sample.volume = float(i)
            sample.id = f'id-{i}'
            yield sample

    monkeypatch.setattr(pollsters.Load1MinPollster, 'get_samples',
                        ten_samples)
    agent = manager_mod.AgentManager(0, conf, ['compute'])
    agent.run()
    try:
        assert wait_for(lambda: sum(len(m['payload']['samples'])
                                    for m in listener.samples) >= 10)
        time.sleep(0.3)
    finally:
        agent.terminate()
    assert [len(m['payload']['samples']) for m in listener.samples] == \
        expected
    volumes = [s['counter_volume'] for m in listener.samples
               for s in m['payload']['samples']]
    assert volumes == [float(i) for i in range(10)]
