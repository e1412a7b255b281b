"""The ledgers and checks of the daemons, in process."""

import logging

import pytest

from telemeter import pipeline, sample
from telemeter.collector import endpoints
from telemeter.collector import service as collector_service
from telemeter.health import collector as health_collector
from telemeter.health import pipelines, storage
from telemeter.health.ledger import total
from tests.unit.collector.fakes import (
    SECRET,
    RecordingDispatcher,
    manager,
    notification,
    signed,
)


class _Service:
    """What the collector's ledger reads of its service."""

    def __init__(self, meter, event=None):
        self.worker_id = 0
        self.meter_manager = meter
        self.event_manager = event or manager()
        self.endpoints = []
        self.listeners = []
        self.udp_receiver = None
        self.udp_thread = None


def _collector(conf, dispatcher, poison_checker=0):
    conf.set_override('probe_timeout', 1.0, group='health')
    svc = _Service(manager(dispatcher))
    book, health = health_collector.watch(svc, conf)
    endpoint = endpoints.SampleEndpoint(SECRET, svc.meter_manager)
    svc.endpoints.append(endpoint)
    return svc, endpoint, book, health


def test_collector_counts_reconcile(conf):
    dispatcher = RecordingDispatcher(failures=1)
    _, endpoint, book, health = _collector(conf, dispatcher)
    batch = [notification([signed('a'), signed('b'), signed('c', 'bad')])]
    assert endpoint.sample(batch) is not None   # requeued: database down
    found = book.readings()
    assert total(found, 'received', stage='bus') == 3
    assert total(found, 'dropped', stage='bus', reason='signature') == 1
    assert total(found, 'dispatch_failed') == 2
    # The two good samples are requeued, and counted as such.
    assert total(found, 'requeued', stage='bus', kind='sample') == 2
    assert total(found, 'unsettled', stage='bus', kind='sample') == 0
    [failed] = [c for c in health.run() if c.name.startswith('dispatcher')]
    assert not failed.ok and 'database down' in failed.detail

    assert endpoint.sample(batch) is None        # redelivered, stored
    found = book.readings()
    assert total(found, 'received', stage='bus') == 6
    assert total(found, 'dispatched', stage='bus') == 2
    assert total(found, 'stored', stage='dispatcher:d0') == 2
    assert total(found, 'requeued', stage='bus', kind='batch') == 1
    # received (a redelivery counts again) = dropped + dispatched +
    # requeued: nothing unsettled.
    assert total(found, 'unsettled', stage='bus') == 0
    # (No listener in this test: the service has not run.)
    assert all(c.ok for c in health.run() if c.name != 'listener')


def test_stored_excludes_what_storage_dropped(conf):
    class Database(RecordingDispatcher):
        opened_connection = None

        def __init__(self):
            super().__init__()
            self.dropped = 0

        def record_metering_data(self, data):
            self.dropped += 1   # one unstorable sample
            super().record_metering_data(data[1:])
    _, endpoint, book, health = _collector(conf, Database())
    endpoint.sample([notification([signed('nul'), signed('ok')])])
    found = book.readings()
    assert total(found, 'dispatcher_taken') == 2
    assert total(found, 'stored') == 1
    assert total(found, 'dropped', stage='storage:d0',
                 reason='unstorable') == 1
    [probe] = [c for c in health.run() if c.name.startswith('storage')]
    assert probe.ok and probe.detail == 'not connected yet (nothing written)'


def test_counted_dispatcher_keeps_the_dispatchers_attributes():
    recording = RecordingDispatcher()
    counted = storage.CountedDispatcher(recording, 'file', 'sample')
    counted.record_metering_data(signed('one'))
    counted.record_metering_data([signed('two'), signed('three')])
    assert (counted.taken, counted.failed) == (3, 0)
    assert counted.names() == ['one', 'two', 'three']


def test_collector_service_serves_its_ledger(conf, fake_transport_url):
    conf.set_override('udp_address', '', group='collector')
    conf.set_override('meter_dispatchers', ['file'])
    conf.set_override('event_dispatchers', ['file'])
    conf.set_override('enabled', True, group='health')
    conf.set_override('collector_port', 0, group='health')
    svc = collector_service.CollectorService(0, conf)
    assert all(isinstance(e.obj, storage.CountedDispatcher)
               for e in svc.meter_manager)
    svc.run()
    try:
        assert svc.health is not None
        names = {c.name: c.ok for c in svc.checks.run()}
        assert names['listener:sample'] and names['listener:event']
    finally:
        svc.terminate()
    assert svc.health._thread is None


PIPELINE = """
sources:
  - name: cpu
    meters: ["cpu"]
    sinks: [out]
sinks:
  - name: out
    publishers: ["test://", "test://?second"]
"""


def _sample(name, volume=1.0):
    return sample.Sample(name, 'gauge', 'u', volume, 'user', 'project', 'r',
                         timestamp='2031-01-01T00:00:00')


@pytest.fixture
def sample_manager(conf, write_yaml):
    conf.set_override('pipeline_cfg_file',
                      write_yaml('pipeline.yaml', PIPELINE))
    return pipeline.setup_pipeline(conf)


def test_pipeline_counts_reconcile(sample_manager, caplog):
    caplog.set_level(logging.ERROR)
    second = sample_manager.pipelines[0].sink.publishers[1]

    def down(samples):
        raise ConnectionError('refused')
    with sample_manager.publisher() as publish:
        publish([_sample('cpu'), _sample('cpu', None), _sample('disk')])
    second.publish_samples = down
    with pytest.raises(pipeline.PublishError), \
            sample_manager.publisher() as publish:
        publish([_sample('cpu')])
    found = pipelines.readings(sample_manager, 'sample')
    assert total(found, 'received', stage='pipeline:cpu:out') == 4
    assert total(found, 'filtered', stage='pipeline:cpu:out') == 1
    assert total(found, 'dropped', reason='invalid_volume') == 1
    assert total(found, 'sink', stage='sink:out', direction='in') == 2
    assert total(found, 'sink', stage='sink:out', direction='out') == 2
    # Two URLs that differ only in their query are told apart.
    assert total(found, 'published', publisher='test://') == 2
    assert total(found, 'published', publisher='test://#2') == 1
    assert [(r.label('publisher'), r.value) for r in found
            if r.metric == 'publish_failed'] == [('test://', 0),
                                                 ('test://#2', 1)]
    assert total(pipelines.gauges(sample_manager, 'sample'),
                 'unsettled') == 0
    results = pipelines.publisher_checks(sample_manager)
    assert [c.ok for c in results] == [True, False]
    assert 'ConnectionError: refused' in results[1].detail
    del second.publish_samples            # back to the real method
    with sample_manager.publisher() as publish:
        publish([_sample('cpu')])
    assert all(c.ok for c in pipelines.publisher_checks(sample_manager))
