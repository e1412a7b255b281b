"""With workload partitioning, a batch the bus does not take onto a
``telemeter-pipe-*`` queue leaves the source notifications unacknowledged.

oslo.messaging's Notifier logs such a failure and returns, so the source
notification was acknowledged and its samples lost (seen in the cluster
tier when a broker node was killed). The transport's send is made to fail
here, below both the Notifier and the project's own send path.
"""

from __future__ import annotations

import oslo_messaging
import pytest

from telemeter import messaging, pipeline
from telemeter.notification import events, meters, pipe
from tests.unit.notification import payloads
from tests.unit.notification.conftest import (
    EVENT_PIPELINE,
    MEMORY_METER,
    SAMPLE_PIPELINE,
)

REQUEUE = oslo_messaging.NotificationResult.REQUEUE


class _Current:
    """What the pipe publisher reads the pipelines in force from."""

    def __init__(self, manager):
        self.current = manager
        self.conf = manager.conf


@pytest.fixture
def broken_bus(conf, fake_transport_url, monkeypatch):
    """The fake transport, whose sends fail while ``state['down']``; every
    attempted topic is recorded in ``state['tried']``."""
    transport = messaging.get_transport(conf)
    real = transport._send_notification
    state = {'down': True, 'tried': []}

    def send(target, ctxt, message, version, retry=None):
        state['tried'].append(target.topic)
        if state['down']:
            raise ConnectionRefusedError(111, 'Connection refused')
        return real(target, ctxt, message, version, retry=retry)
    monkeypatch.setattr(transport, '_send_notification', send)
    return transport, state


def _meter_handler(conf, write_yaml, meters_dir, transport):
    meters_dir('m.yaml', MEMORY_METER)
    conf.set_override('pipeline_cfg_file',
                      write_yaml('pipeline.yaml', SAMPLE_PIPELINE))
    publisher = pipe.PipePublisher(
        conf, _Current(pipeline.setup_pipeline(conf)), pipe.SAMPLES,
        transport)
    return meters.ProcessMeterNotifications(publisher)


def test_samples_the_bus_refuses_are_requeued(conf, write_yaml, meters_dir,
                                              broken_bus):
    transport, state = broken_bus
    handler = _meter_handler(conf, write_yaml, meters_dir, transport)
    notifications = [payloads.message(payloads.instance(instance_id=f'vm-{i}'))
                     for i in range(5)]
    assert handler.info(notifications) == REQUEUE
    # Stopped at the first queue that failed: the redelivery sends again.
    assert len(state['tried']) == 1
    assert state['tried'][0].startswith('telemeter-pipe-s:k-')

    state['down'] = False
    state['tried'].clear()
    assert handler.info(notifications) is None
    assert all(t.startswith('telemeter-pipe-s:k-') and t.endswith('.sample')
               for t in state['tried'])
    # One notification per queue touched.
    queues = {pipe.queue_index({'resource_id': f'vm-{i}'}, ['resource_id'],
                               conf.notification.pipeline_processing_queues)
              for i in range(5)}
    assert len(state['tried']) == len(queues)


def test_events_the_bus_refuses_are_requeued(conf, write_yaml, broken_bus):
    transport, state = broken_bus
    conf.set_override('event_pipeline_cfg_file',
                      write_yaml('event_pipeline.yaml', EVENT_PIPELINE))
    publisher = pipe.PipePublisher(
        conf, _Current(pipeline.setup_event_pipeline(conf)), pipe.EVENTS,
        transport)
    handler = events.EventsNotificationEndpoint(publisher)
    notification = payloads.message(payloads.instance())
    assert handler.info([notification]) == REQUEUE
    index = pipe.queue_index({'event_type': 'compute.instance.create.end'},
                             ['event_type'],
                             conf.notification.pipeline_processing_queues)
    assert state['tried'] == [f'telemeter-pipe-event:s:k-{index}.sample']
    state['down'] = False
    assert handler.info([notification]) == (
        oslo_messaging.NotificationResult.HANDLED)


def test_a_driver_off_the_bus_still_goes_through_the_notifier(
        conf, write_yaml, meters_dir, broken_bus):
    """``noop``/``log`` drivers put nothing on the transport: nothing can
    fail and nothing is requeued."""
    transport, state = broken_bus
    conf.set_override('telemetry_driver', 'noop', group='publisher_notifier')
    handler = _meter_handler(conf, write_yaml, meters_dir, transport)
    assert handler.info([payloads.message(payloads.instance())]) is None
    assert state['tried'] == []
