"""The notifier:// publisher (publishers.md §1) over the fake transport."""

import time

import pytest
from oslo_utils import netutils

from telemeter import messaging, sample
from telemeter.publisher import messaging as notifier
from telemeter.publisher import utils
from tests.unit.conftest import notification_listener


def _samples(*names):
    return [sample.Sample(name, 'gauge', 'u', i, 'user', 'project', f'r{i}',
                          timestamp='2031-01-01T00:00:00')
            for i, name in enumerate(names)]


def _wait_for(received, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return received


def _publisher(conf, url='notifier://'):
    return notifier.SampleNotifierPublisher(conf, netutils.urlsplit(url))


def test_samples_travel_signed_on_the_metering_topic(conf,
                                                      fake_transport_url):
    conf.set_override('host', 'node-1')
    listener, received = notification_listener(
        messaging.get_transport(conf), 'metering')
    listener.start()
    try:
        _publisher(conf).publish_samples(_samples('cpu', 'memory'))
        _wait_for(received, 1)
    finally:
        listener.stop()
        listener.wait()
    assert len(received) == 1
    message = received[0]
    assert message['event_type'] == 'metering'
    assert message['publisher_id'] == 'telemetry.publisher.node-1'
    assert [m['counter_name'] for m in message['payload']] == ['cpu',
                                                                'memory']
    secret = conf.publisher.telemetry_secret
    assert all(utils.verify_signature(m, secret)
               for m in message['payload'])


def test_per_meter_topic_adds_one_entry_per_meter(conf):
    publisher = _publisher(conf, 'notifier://?per_meter_topic=1')
    sent = []
    publisher._send = lambda event_type, payload: sent.append(
        (event_type, [m['counter_name'] for m in payload]))
    publisher.publish_samples(_samples('b', 'a', 'b'))
    assert sent == [('metering', ['b', 'a', 'b']), ('metering.a', ['a']),
                    ('metering.b', ['b', 'b'])]


def test_events_are_refused_by_the_sample_publisher(conf):
    import telemeter
    with pytest.raises(telemeter.NotImplementedError):
        _publisher(conf).publish_events([])


def _failing(publisher, failures):
    """Make the next ``failures`` sends fail; record successful ones."""
    sent = []
    state = {'left': failures}

    def send(event_type, payload):
        if state['left']:
            state['left'] -= 1
            raise notifier.DeliveryFailure('down')
        sent.append(payload)
    publisher._send = send
    return sent


def test_queue_policy_keeps_failed_batches_and_resends_them_first(conf):
    publisher = _publisher(conf, 'notifier://?policy=queue')
    sent = _failing(publisher, 1)
    publisher.publish_samples(_samples('first'))
    assert sent == [] and len(publisher.local_queue) == 1
    publisher.publish_samples(_samples('second'))
    assert [[m['counter_name'] for m in p] for p in sent] == [
        ['first'], ['second']]
    assert publisher.local_queue == []


def test_queue_policy_drops_oldest_beyond_max_queue_length(conf, caplog):
    publisher = _publisher(
        conf, 'notifier://?policy=queue&max_queue_length=2')
    _failing(publisher, 10)
    for name in ('a', 'b', 'c'):
        publisher.publish_samples(_samples(name))
    assert [q[1][0]['counter_name'] for q in publisher.local_queue] == [
        'b', 'c']
    assert 'dropping 1 oldest samples' in caplog.text


def test_drop_policy_discards(conf, caplog):
    publisher = _publisher(conf, 'notifier://?policy=drop')
    sent = _failing(publisher, 1)
    publisher.publish_samples(_samples('a', 'b'))
    assert sent == [] and publisher.local_queue == []
    assert 'Failed to publish 2 datapoints, dropping them' in caplog.text


def test_default_policy_retries_then_raises(conf, caplog):
    publisher = _publisher(conf, 'notifier://?max_retry=3')
    sent = _failing(publisher, 2)
    publisher.publish_samples(_samples('a'))
    assert len(sent) == 1
    _failing(publisher, 3)
    with pytest.raises(notifier.DeliveryFailure):
        publisher.publish_samples(_samples('b'))
    assert 'Failed to retry to send sample data with max_retry' in caplog.text


def test_unknown_policy_falls_back_to_default(conf, caplog):
    assert _publisher(conf, 'notifier://?policy=weird').policy == 'default'
    assert 'Publishing policy is unknown (weird)' in caplog.text


def test_netloc_builds_a_transport_url_without_own_parameters(conf,
                                                             monkeypatch):
    urls = []
    real_get_transport = messaging.get_transport

    def get_transport(conf, url=None, **kwargs):
        urls.append(url)
        return real_get_transport(conf, 'fake://')
    conf.set_override('transport_url', 'fake://')
    monkeypatch.setattr(messaging, 'get_transport', get_transport)
    _publisher(conf, 'notifier://user:pw@mq.example:5673/vh?driver=kafka'
                     '&foo=bar&topic=t&policy=drop&foo=baz')
    _publisher(conf, 'notifier://')
    assert urls == ['kafka://user:pw@mq.example:5673/vh?foo=bar&foo=baz',
                    None]
    messaging.cleanup()


def test_transport_failure_reaches_the_policy(conf, fake_transport_url):
    """oslo's Notifier swallows delivery errors; the publisher sends
    through the transport so the queue policy sees them."""
    import oslo_messaging
    publisher = _publisher(conf, 'notifier://?policy=queue')
    calls = []
    real = publisher.transport._send_notification

    def flaky(target, ctxt, message, version, retry=None):
        calls.append((target.topic, version, retry, message['event_type'],
                      message['priority'], message['publisher_id']))
        if len(calls) == 1:
            raise oslo_messaging.MessageDeliveryFailure('broker down')
        return real(target, ctxt, message, version, retry=retry)
    publisher.transport._send_notification = flaky
    publisher.publish_samples(_samples('a'))
    assert len(publisher.local_queue) == 1
    publisher.publish_samples(_samples('b'))
    assert publisher.local_queue == []
    host = conf.host
    # queue and drop use retry=1; the message is what oslo's Notifier
    # would build for the messagingv2 driver.
    assert calls == [('metering.sample', 2.0, 1, 'metering', 'SAMPLE',
                      f'telemetry.publisher.{host}')] * 3


def test_other_notifier_drivers_go_through_the_notifier(conf,
                                                         fake_transport_url):
    conf.set_override('telemetry_driver', 'noop',
                      group='publisher_notifier')
    publisher = _publisher(conf, 'notifier://?policy=queue')
    sent = []
    publisher.notifier.sample = lambda ctxt, event_type, payload: (
        sent.append((event_type, payload)))
    publisher.transport._send_notification = None  # must not be used
    publisher.publish_samples(_samples('a'))
    assert [e for e, _ in sent] == ['metering']
    assert publisher.retry == 1
    assert _publisher(conf, 'notifier://').retry is None


def test_large_batches_go_out_in_messages_of_max_per_message(conf):
    publisher = _publisher(conf, 'notifier://?max_per_message=2')
    sent = []
    publisher._send = lambda event_type, payload: sent.append(
        [m['counter_name'] for m in payload])
    publisher.publish_samples(_samples('a', 'b', 'c', 'd', 'e'))
    assert sent == [['a', 'b'], ['c', 'd'], ['e']]


def test_default_message_size_and_url_parameter_not_passed_on(conf):
    assert _publisher(conf).max_per_message == notifier.MAX_PER_MESSAGE
    publisher = _publisher(
        conf, 'notifier://guest:guest@localhost:5672/?max_per_message=7')
    assert publisher.max_per_message == 7
    assert 'max_per_message' not in str(publisher.transport._driver._url)
