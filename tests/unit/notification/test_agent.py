"""The notification agent service over the in-process fake transport:
targets, priorities, the events endpoint, requeue, several URLs."""

from __future__ import annotations

import logging
import threading
import time
import types

import oslo_messaging
import pytest
from oslo_config import cfg
from oslo_messaging import transport as om_transport

from telemeter import messaging
from telemeter.messaging import dispatch
from telemeter.notification import events, ipc, meters
from telemeter.notification import service as agent
from tests.unit.notification import payloads
from tests.unit.notification.conftest import (
    EVENT_PIPELINE,
    SAMPLE_PIPELINE,
    published_events,
    published_samples,
)

MEMORY = """
metric:
  - name: memory
    event_type: compute\\.instance\\.
    type: gauge
    unit: MB
    volume: $.payload.memory_mb
    resource_id: $.payload.instance_id
  - name: volume.size
    event_type: volume\\.
    type: gauge
    unit: GB
    volume: $.payload.size
    resource_id: $.payload.volume_id
"""


@pytest.fixture
def agent_conf(conf, fake_transport_url, write_yaml, meters_dir):
    meters_dir('m.yaml', MEMORY)
    conf.set_override('pipeline_cfg_file',
                      write_yaml('pipeline.yaml', SAMPLE_PIPELINE))
    conf.set_override('event_pipeline_cfg_file',
                      write_yaml('event_pipeline.yaml', EVENT_PIPELINE))
    # The fake transport runs oslo.messaging's batch listener, which holds
    # a partial batch for batch_timeout seconds: one message at a time
    # keeps these tests about the agent, not about waiting.
    conf.set_override('batch_size', 1, group='notification')
    return conf


@pytest.fixture
def run_agent(agent_conf):
    started = []

    def start(worker_id=0):
        svc = agent.NotificationService(worker_id, agent_conf)
        svc.run()
        started.append(svc)
        return svc
    yield start
    for svc in started:
        svc.terminate()


def _sender(exchange: str, topic: str = 'notifications',
            url: str = 'fake://'):
    """A Notifier on ``exchange``, as the OpenStack service would have."""
    # Not prepare_service: it would set up logging again (and drop the
    # handler pytest's caplog installed).
    conf = cfg.ConfigOpts()
    conf([], project='sender', default_config_files=[])
    conf.register_opts(om_transport._transport_opts)
    conf.set_override('control_exchange', exchange)
    transport = oslo_messaging.get_notification_transport(conf, url)
    return oslo_messaging.Notifier(transport, driver='messagingv2',
                                   topics=[topic])


def _send(notifier, notification, priority=None):
    priority = (priority or notification['priority']).lower()
    notifier.prepare(publisher_id=notification['publisher_id'])
    getattr(notifier.prepare(publisher_id=notification['publisher_id']),
            priority)(notification['ctxt'], notification['event_type'],
                      notification['payload'])


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _samples(svc):
    return published_samples(svc.sample_pipelines.current)


def _events(svc):
    return published_events(svc.event_pipelines.current)


def test_targets_cover_every_topic_and_exchange(agent_conf):
    agent_conf.set_override('topics', ['notifications', 'audit'],
                            group='oslo_messaging_notifications')
    agent_conf.set_override('notification_control_exchanges',
                            ['nova', 'glance'], group='notification')
    svc = agent.NotificationService(0, agent_conf)
    handlers = svc._load_handlers(_Manager(agent_conf))
    targets = [(t.topic, t.exchange) for t in svc._targets(handlers)]
    # Generic handlers: topics x control exchanges; _sample: topics x
    # telemeter; hardware.ipmi.*: topics x ironic. Several handlers ask for
    # the same targets: each appears once.
    assert sorted(targets) == sorted([
        ('notifications', 'nova'), ('notifications', 'glance'),
        ('audit', 'nova'), ('audit', 'glance'),
        ('notifications', 'telemeter'), ('audit', 'telemeter'),
        ('notifications', 'ironic'), ('audit', 'ironic')])
    assert len(targets) == 8


class _Manager:
    def __init__(self, conf):
        self.conf = conf

    def publisher(self):
        raise AssertionError('not used')


def test_handlers_and_endpoint_order(run_agent):
    svc = run_agent()
    [listener] = svc.listeners
    endpoints = listener.dispatcher.endpoints
    assert isinstance(endpoints[0], events.EventsNotificationEndpoint)
    kinds = {type(e).__name__ for e in endpoints[1:]}
    assert {'ProcessMeterNotifications', 'TelemetryIpc', 'HTTPRequest',
            'HTTPResponse', 'TemperatureSensorNotification',
            'VoltageSensorNotification', 'CurrentSensorNotification',
            'FanSensorNotification'} == kinds
    assert any(isinstance(e, meters.ProcessMeterNotifications)
               for e in endpoints)
    assert any(isinstance(e, ipc.TelemetryIpc) for e in endpoints)


@pytest.fixture
def listener_calls(monkeypatch):
    """The keyword arguments of every batch listener the agent asks for,
    with the pool size it is started with under ``pool``."""
    calls = []
    real = messaging.get_batch_notification_listener

    def recording(transport, targets, endpoints, **kwargs):
        calls.append(kwargs)
        listener = real(transport, targets, endpoints, **kwargs)
        real_start = listener.start

        def start(override_pool_size=None):
            calls[-1]['pool'] = override_pool_size
            real_start(override_pool_size=override_pool_size)
        listener.start = start
        return listener

    monkeypatch.setattr(messaging, 'get_batch_notification_listener',
                        recording)
    return calls


def test_listener_options(run_agent, agent_conf, listener_calls):
    agent_conf.set_override('max_parallel_requests', 7)
    agent_conf.set_override('batch_size', 50, group='notification')
    agent_conf.set_override('batch_timeout', 2, group='notification')
    agent_conf.set_override('batch_max_bytes', 65536, group='notification')
    run_agent()
    # Batches are handled one at a time, in order.
    assert listener_calls == [{'allow_requeue': True, 'batch_size': 50,
                               'batch_timeout': 2, 'batch_bytes': 65536,
                               'pool': 1}]


def test_listener_without_batches_uses_the_request_pool(
        run_agent, agent_conf, listener_calls):
    agent_conf.set_override('max_parallel_requests', 7)
    agent_conf.set_override('batch_size', 1, group='notification')
    run_agent()
    assert [call['pool'] for call in listener_calls] == [7]


def test_samples_and_events_from_the_service_exchanges(run_agent):
    svc = run_agent()
    nova, cinder = _sender('nova'), _sender('cinder')
    _send(nova, payloads.instance())
    _send(cinder, payloads.volume())
    assert _wait(lambda: len(_samples(svc)) == 2 and len(_events(svc)) == 2)
    assert sorted((s.name, s.volume) for s in _samples(svc)) == [
        ('memory', 2048), ('volume.size', 10)]
    assert sorted(e.event_type for e in _events(svc)) == [
        'compute.instance.create.end', 'volume.create.end']
    event = next(e for e in _events(svc)
             if e.event_type == 'volume.create.end')
    traits = {t.name: t.value for t in event.traits}
    assert traits['resource_id'] == payloads.VOLUME
    assert traits['size'] == 10


@pytest.mark.parametrize('priority, samples, events_', [
    ('info', 1, 1), ('sample', 1, 0), ('error', 0, 1), ('warn', 0, 0),
    ('audit', 0, 0), ('critical', 0, 0), ('debug', 0, 0),
])
def test_priorities(run_agent, priority, samples, events_):
    svc = run_agent()
    nova = _sender('nova')
    _send(nova, payloads.instance(), priority)
    # A marker sent afterwards: once it is handled, so was the first.
    _send(_sender('glance'), payloads.image('image.delete'), 'info')
    assert _wait(lambda: any(e.event_type == 'image.delete'
                             for e in _events(svc)))
    nova_samples = [s for s in _samples(svc) if s.name == 'memory']
    nova_events = [e for e in _events(svc)
                   if e.event_type.startswith('compute')]
    assert (len(nova_samples), len(nova_events)) == (samples, events_)


def test_unknown_exchange_is_not_consumed(run_agent):
    svc = run_agent()
    _send(_sender('not-listened'), payloads.instance())
    _send(_sender('glance'), payloads.image('image.delete'), 'info')
    assert _wait(lambda: len(_events(svc)) == 1)
    assert [e.event_type for e in _events(svc)] == ['image.delete']


def _fail_first(publisher, method, count, only=lambda data: True):
    real = getattr(publisher, method)
    failures = []

    def flaky(data):
        if len(failures) < count and only(data):
            failures.append(data)
            raise RuntimeError('event storage down')
        return real(data)
    setattr(publisher, method, flaky)
    return failures


def test_requeue_redelivers_until_the_event_is_published(run_agent,
                                                         agent_conf):
    agent_conf.set_override('ack_on_event_error', False,
                            group='notification')
    svc = run_agent()
    publisher = svc.event_pipelines.current.pipelines[0].sink.publishers[0]
    failures = _fail_first(publisher, 'publish_events', 2)
    _send(_sender('nova'), payloads.instance())
    assert _wait(lambda: len(_events(svc)) == 1)
    assert len(failures) == 2
    # The sample handlers run only once the events endpoint accepted the
    # notification (a requeued batch is redelivered whole).
    assert _wait(lambda: len(_samples(svc)) == 1)
    time.sleep(0.3)
    assert len(_events(svc)) == 1 and len(_samples(svc)) == 1


def test_ack_on_event_error_logs_and_drops(run_agent, agent_conf, caplog):
    agent_conf.set_override('ack_on_event_error', True,
                            group='notification')
    svc = run_agent()
    publisher = svc.event_pipelines.current.pipelines[0].sink.publishers[0]
    failures = _fail_first(
        publisher, 'publish_events', 1,
        only=lambda data: data[0].event_type.startswith('compute.'))
    caplog.set_level(logging.ERROR)
    _send(_sender('nova'), payloads.instance())
    _send(_sender('glance'), payloads.image('image.delete'), 'info')
    assert _wait(lambda: len(_events(svc)) == 1 and failures)
    assert [e.event_type for e in _events(svc)] == ['image.delete']
    assert _wait(lambda: 'Fail to process a notification' in caplog.text)
    assert svc.listeners[0].dispatcher.endpoints[0].failures == 1
    # The failed event did not hold the samples back.
    assert _wait(lambda: len(_samples(svc)) == 1)


def test_events_endpoint_results(conf, event_pipelines, caplog):
    endpoint = events.EventsNotificationEndpoint(event_pipelines)
    assert not hasattr(endpoint, 'sample')
    ok = payloads.message(payloads.instance())
    broken = payloads.message(payloads.instance())
    broken['metadata'] = {}
    # The broken one is rejected (a copy is kept in the quarantine), the
    # good one published, whatever ack_on_event_error says.
    for ack in (True, False):
        conf.set_override('ack_on_event_error', ack, group='notification')
        before = len(published_events(event_pipelines))
        result = endpoint.info([broken, ok])
        assert isinstance(result, dispatch.Rejected)
        assert [n for n, _ in result] == [broken]
        assert 'event conversion: ' in result[0][1]
        assert len(published_events(event_pipelines)) == before + 1
    assert endpoint.failures == 2
    handled = oslo_messaging.NotificationResult.HANDLED
    assert endpoint.error([ok]) == handled


def test_a_batch_of_events_is_published_in_one_call(conf, event_pipelines):
    endpoint = events.EventsNotificationEndpoint(event_pipelines)
    endpoint.info([payloads.message(payloads.instance()),
                   payloads.message(payloads.volume())])
    publisher = event_pipelines.pipelines[0].sink.publishers[0]
    assert publisher.calls == 1
    assert sorted(e.event_type for e in published_events(event_pipelines)
                  ) == ['compute.instance.create.end', 'volume.create.end']


def test_several_messaging_urls_get_one_listener_each(run_agent,
                                                      agent_conf):
    agent_conf.set_override('messaging_urls', ['fake://a/', 'fake://b/'],
                            group='notification')
    svc = run_agent()
    assert sorted(str(listener.transport._driver._url)
                  for listener in svc.listeners) == ['fake://a/',
                                                     'fake://b/']
    # Both listen on every target, with every endpoint.
    first, second = svc.listeners
    assert first.targets == second.targets
    assert len(first.dispatcher.endpoints) == len(
        second.dispatcher.endpoints) == 9


def test_no_handlers_is_a_warning(agent_conf, caplog, monkeypatch):
    monkeypatch.setattr(agent.NotificationService,
                        'NOTIFICATION_NAMESPACE', 'telemeter.nothing')
    svc = agent.NotificationService(0, agent_conf)
    with caplog.at_level(logging.WARNING):
        assert svc._load_handlers(_Manager(agent_conf)) == []
    assert ('Failed to load any notification handlers for '
            'telemeter.nothing') in caplog.text


def test_worker_start_is_staggered(agent_conf, monkeypatch):
    delays = []
    monkeypatch.setattr(agent, 'time',
                        types.SimpleNamespace(sleep=delays.append))
    svc = agent.NotificationService(3, agent_conf)
    svc.run()
    svc.terminate()
    assert delays == [3]


def test_terminate_before_run_finishes_starts_nothing(agent_conf):
    svc = agent.NotificationService(0, agent_conf)
    svc.terminate()
    svc.run()
    assert svc.listeners == []


def test_handler_errors_do_not_stop_the_agent(run_agent, caplog):
    svc = run_agent()
    nova = _sender('nova')
    bad = payloads.instance()
    bad['payload'] = {'memory_mb': 1}
    notifier = nova.prepare(publisher_id='compute.x')
    # Not even a dict as payload, then no payload at all.
    notifier.info({}, 'compute.instance.update', 'not a dict')
    notifier.info({}, 'compute.instance.update', None)
    notifier.info({}, 'compute.instance.update', {'memory_mb': [1, 2]})
    _send(nova, payloads.instance())
    assert _wait(lambda: any(s.volume == 2048 for s in _samples(svc)))
    assert svc.listeners[0]._started
    # Lock-free check that the listener thread is still alive.
    assert any(t.name != 'MainThread' for t in threading.enumerate())
