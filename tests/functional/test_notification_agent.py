"""The notification agent as a real process on a real RabbitMQ: OpenStack
notifications sent with oslo.messaging's Notifier on the nova, glance and
cinder exchanges become samples and events in the database (through the
collector), and malformed notifications are logged and acknowledged.

agent-notification (meters.d, event_definitions.yaml) -> notifier:// ->
collector -> database dispatchers -> SQLite.
"""

from __future__ import annotations

import datetime
import http.server
import json
import socket
import threading
import time

import kombu
import oslo_messaging
import pytest
from oslo_config import cfg
from oslo_context import context as oslo_context
from oslo_messaging import transport as om_transport
from oslo_messaging._drivers import amqp

from telemeter import messaging, storage
from telemeter.notification import event_converter, meters
from tests.functional import daemons
from tests.unit.notification import payloads

EXTRA_CONF = f"""
[meter]
meter_definitions_dirs = {meters.PACKAGED_METERS_DIR}
[event]
definitions_cfg_file = {event_converter.PACKAGED_DEFINITIONS}
"""


@pytest.fixture
def deployment(tmp_path, rabbit_url):
    dep = daemons.Deployment(tmp_path / 'deployment', rabbit_url,
                             extra_conf=EXTRA_CONF)
    dep.run('telemeter-dbsync')
    yield dep
    dep.cleanup()
    messaging.cleanup()


@pytest.fixture
def senders(rabbit_url):
    """``senders(exchange, topic)``: a Notifier on that exchange, as the
    OpenStack service owning the exchange would have it, set up as the
    README's "Delivery" asks (durable queues, as telemeter declares them;
    without it the first declaration wins and the other side fails)."""
    transports = []

    def make(exchange: str, topic: str) -> oslo_messaging.Notifier:
        conf = cfg.ConfigOpts()
        conf([], project='sender', default_config_files=[])
        conf.register_opts(om_transport._transport_opts)
        conf.register_opts(amqp.amqp_opts, group='oslo_messaging_rabbit')
        conf.set_override('control_exchange', exchange)
        conf.set_override('amqp_durable_queues', True,
                          group='oslo_messaging_rabbit')
        transport = oslo_messaging.get_notification_transport(
            conf, rabbit_url)
        transports.append(transport)
        return oslo_messaging.Notifier(transport, driver='messagingv2',
                                       topics=[topic])
    yield make
    for transport in transports:
        transport.cleanup()


def _send(notifier, notification):
    # Services pass an oslo.context RequestContext (oslo.messaging drops
    # plain dicts); its redacted copy travels with the notification.
    context = oslo_context.RequestContext.from_dict(notification['ctxt'])
    prepared = notifier.prepare(publisher_id=notification['publisher_id'])
    getattr(prepared, notification['priority'].lower())(
        context, notification['event_type'], notification['payload'])


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _start(dep):
    collector = dep.start('telemeter-collector')
    agent = dep.start('telemeter-agent-notification')
    collector.wait_for_log('Collector listening on topic')
    collector.wait_for_log('Collector listening on topic', count=2)
    agent.wait_for_log('Notification agent listening')
    return collector, agent


def _event_conn(dep):
    return storage.get_connection(dep.conf(), dep.database_url,
                                  'telemeter.event.storage')


def _wait(fetch, count, timeout=90.0, what='rows'):
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        found = list(fetch())
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise AssertionError(f'{len(found)} of {count} {what} within {timeout}s')


def test_nova_glance_and_cinder_notifications_reach_the_database(
        deployment, senders):
    dep = deployment
    _collector, agent = _start(dep)
    nova = senders('nova', dep.notification_topic)
    glance = senders('glance', dep.notification_topic)
    cinder = senders('cinder', dep.notification_topic)
    sent_from = _utcnow()
    _send(nova, payloads.instance())
    _send(glance, payloads.image())
    _send(glance, payloads.image_send())
    _send(cinder, payloads.volume())
    _send(cinder, payloads.snapshot())
    sent_until = _utcnow()

    conn = dep.storage()
    expected = {
        # name: (type, unit, volume, resource, user, project)
        'memory': ('gauge', 'MB', 2048, payloads.INSTANCE, payloads.USER,
                   payloads.PROJECT),
        'vcpus': ('gauge', 'vcpu', 1, payloads.INSTANCE, payloads.USER,
                  payloads.PROJECT),
        'disk.root.size': ('gauge', 'GB', 20, payloads.INSTANCE,
                           payloads.USER, payloads.PROJECT),
        'disk.ephemeral.size': ('gauge', 'GB', 0, payloads.INSTANCE,
                                payloads.USER, payloads.PROJECT),
        # 09:31:55.5 - 09:31:42 = 13.5 s
        'compute.instance.booting.time': ('gauge', 'sec', 13.5,
                                          payloads.INSTANCE, payloads.USER,
                                          payloads.PROJECT),
        'image.size': ('gauge', 'B', 297795584, payloads.IMAGE,
                       payloads.USER, payloads.OTHER_PROJECT),
        'image.download': ('delta', 'B', 297795584, payloads.IMAGE,
                           payloads.USER, payloads.PROJECT),
        'image.serve': ('delta', 'B', 297795584, payloads.IMAGE,
                        payloads.USER, payloads.OTHER_PROJECT),
        'volume.size': ('gauge', 'GB', 10, payloads.VOLUME, payloads.USER,
                        payloads.PROJECT),
        'snapshot.size': ('gauge', 'GB', 10, payloads.SNAPSHOT,
                          payloads.USER, payloads.PROJECT),
    }
    stored = _wait(lambda: conn.get_samples(storage.SampleFilter()),
                   len(expected), what='samples')
    by_name = {s.counter_name: s for s in stored}
    assert len(stored) == len(expected), sorted(by_name)
    assert {name: (s.counter_type, s.counter_unit, s.counter_volume,
                   s.resource_id, s.user_id, s.project_id)
            for name, s in by_name.items()} == expected
    # The Notifier stamps the notification; samples carry that time.
    assert sent_from <= by_name['memory'].timestamp <= sent_until
    assert by_name['memory'].resource_metadata['user_metadata'] == {
        'stack': 'prod-stack', 'server_group': 'web'}
    assert by_name['volume.size'].resource_metadata['display_name'] == (
        'data-vol')

    events = _wait(lambda: _event_conn(dep).get_events(
        storage.EventFilter()), 5, what='events')
    by_type = {e.event_type: e for e in events}
    assert sorted(by_type) == ['compute.instance.create.end', 'image.send',
                               'image.upload', 'snapshot.create.end',
                               'volume.create.end']
    instance = {t.name: t.value for t in
                by_type['compute.instance.create.end'].traits}
    assert instance['instance_id'] == payloads.INSTANCE
    assert instance['memory_mb'] == 2048
    assert instance['host'] == 'compute-01.example.org'
    assert instance['launched_at'] == datetime.datetime(2017, 9, 14, 9, 31,
                                                        55, 500000)
    volume = {t.name: t.value for t in by_type['volume.create.end'].traits}
    assert (volume['resource_id'], volume['size']) == (payloads.VOLUME, 10)
    image = {t.name: t.value for t in by_type['image.upload'].traits}
    assert image['project_id'] == payloads.OTHER_PROJECT
    assert sent_from <= by_type['image.upload'].generated <= sent_until
    assert by_type['image.upload'].generated == by_name[
        'image.size'].timestamp
    assert agent.alive()


def _queue_depths(url: str, names: list[str]) -> dict[str, int]:
    with kombu.Connection(url.replace('rabbit://', 'amqp://')) as conn:
        channel = conn.channel()
        depths = {}
        for name in names:
            _q, count, _consumers = channel.queue_declare(name,
                                                          passive=True)
            depths[name] = count
        return depths


def test_malformed_notifications_are_logged_and_acknowledged(
        deployment, senders):
    dep = deployment
    collector, agent = _start(dep)
    nova = senders('nova', dep.notification_topic)
    cinder = senders('cinder', dep.notification_topic)
    notifier = nova.prepare(publisher_id='compute.compute-01')
    # Missing payload, payloads of the wrong type, wrong field types.
    notifier.info({}, 'compute.instance.update', None)
    notifier.info({}, 'compute.instance.update', 'not a mapping')
    notifier.info({}, 'compute.instance.update', [1, 2, 3])
    wrong = payloads.instance_update(memory_mb='lots', vcpus=[1],
                                     launched_at=12, instance_type_id='x')
    _send(nova, wrong)
    # A huge payload: 200 000 fixed IPs (about 8 MB of JSON).
    huge = payloads.instance_update(instance_id='huge-instance')
    huge['payload']['fixed_ips'] = [
        {'address': f'10.{i // 65536}.{i // 256 % 256}.{i % 256}',
         'type': 'fixed', 'meta': {'i': i}} for i in range(200000)]
    _send(nova, huge)
    raw_bodies = [
        b'\x00\xffnot json{',
        b'{"oslo.version": "2.0", "oslo.message": "{\\"priority\\": '
        b'\\"info\\"}"}',
        json.dumps({'event_type': 'compute.instance.update'}).encode(),
    ]
    with kombu.Connection(dep.transport_url.replace('rabbit://', 'amqp://')
                          ) as conn:
        producer = conn.Producer()
        for body in raw_bodies:
            producer.publish(body, exchange='nova',
                             routing_key=f'{dep.notification_topic}.info',
                             content_type='application/json',
                             content_encoding='utf-8')
    # Afterwards a good notification still goes all the way.
    _send(cinder, payloads.volume())

    conn = dep.storage()
    [volume] = _wait(lambda: conn.get_samples(storage.SampleFilter(
        meter='volume.size')), 1, what='samples')
    assert volume.counter_volume == 10
    # The huge notification was processed like any other.
    huge_samples = _wait(lambda: conn.get_samples(storage.SampleFilter(
        resource='huge-instance')), 4, what='samples')
    assert sorted(s.counter_name for s in huge_samples) == [
        'disk.ephemeral.size', 'disk.root.size', 'memory', 'vcpus']
    # Wrong volume types never reach storage.
    assert [s.counter_name for s in conn.get_samples(storage.SampleFilter(
        resource=payloads.INSTANCE))] == ['disk.ephemeral.size',
                                          'disk.root.size']
    log = agent.wait_for_log('has volume which is not a number')
    assert 'has no volume' in log
    assert "cannot convert 'lots' to integer" in log
    # The raw bodies: not JSON and a body without priority are moved to
    # the quarantine queue by the listener, saying why; an envelope
    # without event type becomes an event-less notification.
    log = agent.wait_for_log("unknown priority ''")
    assert 'Quarantining a malformed message' in log
    assert 'body is not JSON' in log
    assert 'Dropping Notification None (uuid:None)' in log
    assert agent.alive() and collector.alive()

    # Everything was acknowledged: once the agent is gone (unacknowledged
    # messages would return to their queue), the queues are empty.
    code, _seconds = agent.stop()
    assert code == 0
    depths = _queue_depths(dep.transport_url, [
        f'{dep.notification_topic}.info', f'{dep.notification_topic}.error',
        f'{dep.notification_topic}.sample'])
    assert depths == dict.fromkeys(depths, 0)
    assert _queue_depths(dep.transport_url, [dep.quarantine_queue]) == {
        dep.quarantine_queue: 2}
    assert 'Traceback' not in agent.log().split('Notification agent '
                                                'stopped')[-1]


class _Recorder(http.server.BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):
        length = int(self.headers['Content-Length'])
        self.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_requeued_event_is_delivered_once_the_publisher_recovers(
        deployment, senders):
    """ack_on_event_error = False: while the event publisher fails the
    notification goes back to the broker (again and again); once the
    publisher works it is delivered, once."""
    dep = deployment
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    dep.event_pipeline_path.write_text(
        'sources: [{name: s, events: ["*"], sinks: [k]}]\n'
        'sinks: [{name: k, publishers: ["http://127.0.0.1:' + str(port)
        + '/events?max_retries=0&timeout=2"]}]\n')
    dep.write_config(EXTRA_CONF + '[notification]\n'
                     'ack_on_event_error = false\n')
    agent = dep.start('telemeter-agent-notification')
    agent.wait_for_log('Notification agent listening')
    _send(senders('cinder', dep.notification_topic), payloads.volume())
    # Refused, requeued, redelivered, refused...
    agent.wait_for_log('requeuing the batch', count=3)

    _Recorder.bodies = []
    server = http.server.ThreadingHTTPServer(('127.0.0.1', port), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not _Recorder.bodies and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # a second delivery would show up now
    finally:
        server.shutdown()
        server.server_close()
    [batch] = _Recorder.bodies
    [event] = batch
    assert event['event_type'] == 'volume.create.end'
    traits = {name: value for name, _dtype, value in event['traits']}
    assert traits['resource_id'] == payloads.VOLUME
    assert agent.alive()
    assert agent.stop()[0] == 0
    depths = _queue_depths(dep.transport_url,
                           [f'{dep.notification_topic}.info'])
    assert depths == {f'{dep.notification_topic}.info': 0}
