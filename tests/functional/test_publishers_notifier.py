"""notifier:// against a real RabbitMQ: routing, topics, the netloc
transport URL, events, and the ``queue`` / ``drop`` / ``default`` policies
exercised by stopping the broker.

The policy test stops and starts a broker, so it never uses one that other
sessions share: with ``TELEMETER_TEST_RABBIT_URL`` unset it uses the
session's own broker (``rabbit_admin``); with it set, that broker is used
only if this checkout's ``tools/services.sh`` runs it (CI), otherwise the
module starts a private broker of its own.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.parse
import uuid

import oslo_messaging
import pytest
from oslo_config import cfg

from telemeter import messaging, publisher, sample, service
from telemeter.publisher import utils as signing
from tests.functional.fixtures import rabbit, receivers, services

SECRET = 'notifier-secret'


def _conf(transport_url: str) -> cfg.ConfigOpts:
    conf = service.prepare_service(argv=['functional'], config_files=[],
                                   conf=cfg.ConfigOpts())
    conf.set_override('transport_url', transport_url)
    conf.set_override('telemetry_secret', SECRET, group='publisher')
    conf.set_override('host', 'notifier-host')
    # Fail over quickly while the broker is down.
    conf.set_override('rabbit_retry_interval', 1,
                      group='oslo_messaging_rabbit')
    conf.set_override('rabbit_interval_max', 2,
                      group='oslo_messaging_rabbit')
    return conf


class Collected:
    """Notifications consumed from ``<topic>.sample`` queues."""

    def __init__(self, conf: cfg.ConfigOpts, url: str, topics: list[str]):
        self.messages: dict[str, list[dict]] = {t: [] for t in topics}
        self.transport = oslo_messaging.get_notification_transport(
            conf, url)
        self.listeners = []
        for topic in topics:
            endpoint = self._endpoint(self.messages[topic])
            listener = messaging.get_batch_notification_listener(
                self.transport, [oslo_messaging.Target(topic=topic)],
                [endpoint], batch_size=50, batch_timeout=0.2)
            listener.start()
            self.listeners.append(listener)

    @staticmethod
    def _endpoint(bucket: list[dict]):
        class Endpoint:
            def sample(self, messages):
                bucket.extend(messages)
        return Endpoint()

    def wait(self, topic: str, count: int, timeout: float = 30) -> list:
        receivers.wait_for(lambda: len(self.messages[topic]) >= count,
                           timeout, f'{count} notification(s) on {topic}')
        return self.messages[topic]

    def close(self) -> None:
        messaging.stop_listeners(self.listeners)
        self.transport.cleanup()


@pytest.fixture
def collect():
    started = []

    def _collect(conf, url, topics):
        c = Collected(conf, url, topics)
        started.append(c)
        return c
    yield _collect
    for c in started:
        c.close()


@pytest.fixture
def built():
    publishers = []
    yield publishers
    for p in publishers:
        p.close()
    messaging.cleanup()


def _make(built, conf, url, namespace='telemeter.sample.publisher'):
    p = publisher.get_publisher(conf, url, namespace)
    built.append(p)
    return p


def _samples(*names):
    return [sample.Sample(name, 'gauge', 'B', 1.0, 'u', 'p', 'r',
                          timestamp='2031-01-01T00:00:00') for name in names]


def _names(notifications: list[dict]) -> list[str]:
    return [m['counter_name'] for n in notifications for m in n['payload']]


def test_samples_routed_signed_on_the_telemeter_exchange(rabbit_url, built,
                                                         collect):
    conf = _conf(rabbit_url)
    topic = f'metering-{uuid.uuid4().hex[:8]}'
    conf.set_override('metering_topic', topic, group='publisher_notifier')
    received = collect(conf, rabbit_url, [topic])
    _make(built, conf, 'notifier://').publish_samples(_samples('a', 'b'))
    [notification] = received.wait(topic, 1)
    assert notification['event_type'] == topic
    assert notification['publisher_id'] == 'telemetry.publisher.notifier-host'
    assert _names([notification]) == ['a', 'b']
    assert all(signing.verify_signature(m, SECRET)
               for m in notification['payload'])


def test_netloc_is_the_transport_and_topics_are_lists(rabbit_url, built,
                                                      collect):
    # The daemon's own transport_url points nowhere: only the URL's netloc
    # can deliver.
    conf = _conf('rabbit://nobody:nothing@127.0.0.1:9/')
    split = urllib.parse.urlsplit(rabbit_url)
    one, two = (f'topic-{uuid.uuid4().hex[:8]}' for _ in range(2))
    received = collect(conf, rabbit_url, [one, two])
    url = (f'notifier://{split.netloc}{split.path}?topic={one}&topic={two}'
           f'&driver=rabbit&policy=drop&max_retry=3')
    p = _make(built, conf, url)
    p.publish_samples(_samples('x'))
    assert _names(received.wait(one, 1)) == ['x']
    assert _names(received.wait(two, 1)) == ['x']


def test_per_meter_topic_event_types(rabbit_url, built, collect):
    conf = _conf(rabbit_url)
    topic = f'pm-{uuid.uuid4().hex[:8]}'
    conf.set_override('metering_topic', topic, group='publisher_notifier')
    received = collect(conf, rabbit_url, [topic])
    _make(built, conf, 'notifier://?per_meter_topic=1').publish_samples(
        _samples('mem', 'cpu', 'mem'))
    notifications = received.wait(topic, 3)
    assert [(n['event_type'], _names([n])) for n in notifications] == [
        (topic, ['mem', 'cpu', 'mem']), (f'{topic}.cpu', ['cpu']),
        (f'{topic}.mem', ['mem', 'mem'])]


def test_events_on_the_event_topic(rabbit_url, built, collect):
    import datetime

    from telemeter.storage import models
    conf = _conf(rabbit_url)
    topic = f'event-{uuid.uuid4().hex[:8]}'
    conf.set_override('event_topic', topic, group='publisher_notifier')
    received = collect(conf, rabbit_url, [topic])
    event = models.Event('m-1', 'volume.create.end',
                         datetime.datetime(2031, 1, 1, 12),
                         [models.Trait('size', 2, 5)], {'k': 'v'})
    _make(built, conf, 'notifier://', 'telemeter.event.publisher'
          ).publish_events([event])
    [notification] = received.wait(topic, 1)
    [payload] = notification['payload']
    assert payload['message_id'] == 'm-1'
    assert payload['traits'] == [['size', 2, 5]]
    assert signing.verify_signature(payload, SECRET)


@pytest.fixture(scope='module')
def stoppable_broker(request):
    """A broker this module may stop (see the module docstring)."""
    spec = services.SERVICES['rabbitmq']
    url = os.environ.get(spec.url_env)
    if not url:
        yield request.getfixturevalue('_rabbit_admin')
        return
    port = urllib.parse.urlsplit(url).port or 5672
    managed = services.ManagedService(spec, port)
    if managed.is_running():
        admin = rabbit.RabbitAdmin(managed, url)
        yield admin
        if not admin.is_running():
            admin.start()
        return
    port, claim = services.pick_port(spec)
    managed = services.ManagedService(spec, port)
    try:
        managed.up()
    except services.ServiceError as exc:
        claim.release()
        pytest.fail(f'cannot start a private broker: {exc}', pytrace=False)
    try:
        yield rabbit.RabbitAdmin(managed, managed.url)
    finally:
        managed.down()
        claim.release()


@pytest.fixture
def broker_conf(stoppable_broker):
    # Built before the test body: prepare_service() sets up logging, which
    # would remove caplog's handler if it ran inside the test.
    return _conf(stoppable_broker.url)


@pytest.mark.timeout(400)
def test_policies_while_the_broker_is_stopped(stoppable_broker, broker_conf,
                                              built, collect, caplog):
    broker = stoppable_broker
    conf = broker_conf
    tag = uuid.uuid4().hex[:8]
    queued, dropped, blocking = (f'{kind}-{tag}'
                                 for kind in ('queue', 'drop', 'default'))
    queue_pub = _make(built, conf, f'notifier://?topic={queued}'
                                   f'&policy=queue&max_queue_length=2')
    drop_pub = _make(built, conf, f'notifier://?topic={dropped}&policy=drop')
    default_pub = _make(built, conf, f'notifier://?topic={blocking}')
    for p, name in ((queue_pub, 'q0'), (drop_pub, 'd0'),
                    (default_pub, 'x0')):
        p.publish_samples(_samples(name))  # connected and declared

    broker.stop()
    try:
        for name in ('q1', 'q2', 'q3'):
            queue_pub.publish_samples(_samples(name))
        drop_pub.publish_samples(_samples('d1'))
        outcome = []

        def publish_blocking():
            try:
                default_pub.publish_samples(_samples('x1'))
            except Exception as err:  # reported by the assertions below
                outcome.append(err)
            else:
                outcome.append('sent')
        thread = threading.Thread(target=publish_blocking, daemon=True)
        thread.start()
        time.sleep(3)
        # default: the notifier retries without limit, so the publish
        # waits for the broker instead of failing or dropping.
        assert thread.is_alive() and outcome == []
        # queue, max_queue_length=2: q1 was dropped as the oldest, q2 and
        # q3 wait; drop: d1 is gone.
        assert [_names([{'payload': p}]) for _, p in
                queue_pub.local_queue] == [['q2'], ['q3']]
        assert drop_pub.local_queue == []
    finally:
        broker.start()
    thread.join(120)
    assert outcome == ['sent']
    queue_pub.publish_samples(_samples('q4'))
    if queue_pub.local_queue:  # the first send after the restart may fail
        queue_pub.flush()
    assert queue_pub.local_queue == []
    drop_pub.publish_samples(_samples('d2'))

    # The queues are durable (telemeter's default), so q0/d0/x0, sent
    # before the broker stopped, are still there; then everything
    # published after the restart, in order.
    received = collect(conf, broker.url, [queued, dropped, blocking])
    assert _names(received.wait(queued, 4)) == ['q0', 'q2', 'q3', 'q4']
    assert _names(received.wait(dropped, 2)) == ['d0', 'd2']
    assert _names(received.wait(blocking, 2)) == ['x0', 'x1']
    time.sleep(1)
    assert len(received.messages[queued]) == 4
    assert len(received.messages[dropped]) == 2
    assert 'Failed to publish 1 datapoints, queue them' in caplog.text
    assert ('Publisher max local_queue length is exceeded, dropping 1 '
            'oldest samples') in caplog.text
    assert 'Failed to publish 1 datapoints, dropping them' in caplog.text
