"""The RabbitMQ batch listener against a real broker: batches, acks,
requeues and their back-off, quarantine of malformed and failing
messages, prefetch, tails and stop."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import kombu
import oslo_messaging
import pytest
from oslo_config import cfg
from oslo_messaging._drivers import common as rpc_common

from telemeter import messaging
from telemeter.messaging import (
    declarations,
    delivery,
    dispatch,
    quarantine,
    rabbit,
)

REQUEUE = oslo_messaging.NotificationResult.REQUEUE


class Endpoint:
    """Records batches; optionally requeues the first ``requeue`` calls,
    and raises on any batch holding a number of ``poison``."""

    def __init__(self, requeue: int = 0, delay: float = 0.0,
                 poison: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.times: list[float] = []
        self.requeue = requeue
        self.delay = delay
        self.poison = poison
        self.lock = threading.Lock()

    def info(self, notifications):
        time.sleep(self.delay)
        numbers = [n['payload']['n'] for n in notifications]
        with self.lock:
            self.times.append(time.monotonic())
            if self.poison & set(numbers):
                raise ValueError(f'cannot handle {sorted(self.poison)}')
            self.batches.append(numbers)
            if self.requeue:
                self.requeue -= 1
                return REQUEUE
        return None

    def seen(self) -> list[int]:
        with self.lock:
            return [n for batch in self.batches for n in batch]


def _wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def bus(rabbit_url, request):
    """A transport, a fresh topic and a notifier on it; quorum queues (on
    an exchange of their own: quorum needs it durable) when the test
    parametrizes ``bus`` indirectly with True."""
    conf = cfg.ConfigOpts()
    conf([], project='telemeter-batch-test', default_config_files=[])
    topic = f'batch-{uuid.uuid4().hex[:8]}'
    if getattr(request, 'param', False):
        from oslo_messaging import transport as transport_mod
        conf.register_opts(transport_mod._transport_opts)
        conf.set_override('control_exchange', f'{topic}-exchange')
    transport = oslo_messaging.get_notification_transport(conf, rabbit_url)
    conf.set_override('heartbeat_timeout_threshold', 0,
                      group='oslo_messaging_rabbit')
    if getattr(request, 'param', False):
        conf.set_override('rabbit_quorum_queue', True,
                          group='oslo_messaging_rabbit')
    delivery.register_opts(conf)
    conf.set_override('quarantine_queue', f'{topic}.quarantine',
                      group='delivery')
    conf.set_override('requeue_backoff', 0.1, group='delivery')
    notifier = oslo_messaging.Notifier(transport, publisher_id='test.host',
                                       driver='messagingv2', topics=[topic])

    class Bus:
        pass
    bus = Bus()
    bus.conf, bus.transport, bus.topic = conf, transport, topic
    bus.targets = [oslo_messaging.Target(topic=topic)]
    bus.send = lambda n: notifier.info({}, 'test.event', {'n': n})
    bus.listeners = []

    def listen(endpoint, **kwargs):
        listener = messaging.get_batch_notification_listener(
            transport, bus.targets, [endpoint], allow_requeue=True, **kwargs)
        listener.start()
        bus.listeners.append(listener)
        return listener
    bus.listen = listen

    def quarantined():
        """(items, channel) of the quarantine queue; the items go back
        to the queue when the channel is closed."""
        context = transport._driver._get_connection(
            rpc_common.PURPOSE_LISTEN)
        conn = context.connection
        conn.ensure_connection()
        bus.contexts.append(context)
        return (list(quarantine.browse(conn.channel, f'{topic}.quarantine')),
                conn.channel)
    bus.contexts = []
    bus.quarantined = quarantined
    yield bus
    for context in bus.contexts:
        context.close()
    messaging.stop_listeners(bus.listeners)
    transport.cleanup()


def _queue_figure(rabbit_admin, queue: str, column: str) -> int:
    """One ``rabbitmqctl list_queues`` column of ``queue``."""
    out = rabbit_admin.rabbitmqctl('list_queues', '-q', 'name', column)
    for line in out.splitlines():
        name, _sep, count = line.partition('\t')
        if name == queue:
            return int(count)
    raise AssertionError(f'no queue {queue}')


def _unacked(rabbit_admin, queue: str) -> int:
    return _queue_figure(rabbit_admin, queue, 'messages_unacknowledged')


def test_rabbit_transports_get_the_batch_listener(bus):
    listener = bus.listen(Endpoint(), batch_size=10)
    assert isinstance(listener, rabbit.RabbitBatchListener)


def test_batches_are_delivered_whole_and_acknowledged(bus, rabbit_admin):
    for n in range(250):
        bus.send(n)
    endpoint = Endpoint()
    listener = bus.listen(endpoint, batch_size=100, batch_timeout=5)
    assert _wait(lambda: len(endpoint.seen()) == 250)
    assert endpoint.seen() == list(range(250))
    # Queued before the start: the batches fill up to the size.
    assert max(len(b) for b in endpoint.batches) == 100
    assert listener.stats.received == 250
    assert _wait(lambda: rabbit_admin.list_queues()[
        f'{bus.topic}.info'] == 0), 'messages left unacknowledged'


def test_a_short_tail_is_handed_over_without_waiting(bus):
    endpoint = Endpoint()
    bus.listen(endpoint, batch_size=1000, batch_timeout=None)
    for n in range(7):
        bus.send(n)
    # No batch_timeout and far fewer than batch_size: the pause in the
    # flow closes the batch.
    assert _wait(lambda: endpoint.seen() == list(range(7)), timeout=10)


def test_prefetch_does_not_cap_a_batch(bus):
    bus.conf.set_override('rabbit_qos_prefetch_count', 10,
                          group='oslo_messaging_rabbit')
    for n in range(300):
        bus.send(n)
    endpoint = Endpoint()
    bus.listen(endpoint, batch_size=200, batch_timeout=5)
    assert _wait(lambda: len(endpoint.seen()) == 300)
    assert max(len(b) for b in endpoint.batches) == 200


def test_large_messages_batch_by_bytes_small_ones_by_count(bus,
                                                          rabbit_admin):
    notifier = oslo_messaging.Notifier(
        bus.transport, publisher_id='test.host', driver='messagingv2',
        topics=[bus.topic])
    pad = 'x' * 10_000
    for n in range(60):
        notifier.info({}, 'test.event', {'n': n, 'pad': pad})
    for n in range(60, 260):
        bus.send(n)
    endpoint = Endpoint()
    listener = bus.listen(endpoint, batch_size=100, batch_timeout=5,
                          batch_bytes=50_000)
    assert _wait(lambda: len(endpoint.seen()) == 260)
    assert endpoint.seen() == list(range(260))
    large = [b for b in endpoint.batches if b[0] < 60]
    # ~10 KB bodies: the fifth reaches 50,000 bytes and closes the batch.
    assert max(len(b) for b in large) == 5
    assert len(large) >= 12
    # Bodies of ~200 bytes: the count closes the batch first.
    assert max(len(b) for b in endpoint.batches) == 100
    assert listener.stats.received == 260
    assert _wait(lambda: rabbit_admin.list_queues()[
        f'{bus.topic}.info'] == 0), 'messages left unacknowledged'


def test_requeued_batches_come_back_and_are_not_lost(bus, rabbit_admin):
    endpoint = Endpoint(requeue=2)
    bus.listen(endpoint, batch_size=50, batch_timeout=1)
    for n in range(40):
        bus.send(n)
    assert _wait(lambda: sorted(set(endpoint.seen())) == list(range(40)))
    # Every message was handled once after its requeues.
    assert _wait(lambda: rabbit_admin.list_queues()[
        f'{bus.topic}.info'] == 0)
    handled = endpoint.batches[2:]
    assert sorted(n for batch in handled for n in batch) == list(range(40))


def test_malformed_messages_are_quarantined_and_do_not_block(
        bus, rabbit_url, rabbit_admin):
    endpoint = Endpoint()
    listener = bus.listen(endpoint, batch_size=20, batch_timeout=1)
    bus.send(0)
    assert _wait(lambda: endpoint.seen() == [0])
    # What broke oslo.messaging's dispatcher (a priority that is not a
    # string) and what is not JSON at all, then valid notifications.
    queue = f'{bus.topic}.info'
    bodies = (b'{"oslo.version": "2.0", "oslo.message": '
              b'"{\\"priority\\": 3, \\"payload\\": {}}"}',
              b'not json at all', b'{"priority": null}')
    with kombu.Connection(rabbit_url.replace('rabbit://', 'amqp://')) as c:
        producer = c.Producer()
        for body in bodies:
            producer.publish(body, routing_key=queue, exchange='',
                             content_type='application/json')
        # A compression the sender did not apply (kombu cannot undo it).
        producer.publish(b'{"priority": "info"}', routing_key=queue,
                         exchange='', content_type='application/json',
                         headers={'compression': 'application/x-bogus'})
    for n in range(1, 101):
        bus.send(n)
    assert _wait(lambda: endpoint.seen() == list(range(101)))
    assert listener.stats.malformed == listener.stats.quarantined == 4
    assert listener.alive
    assert _wait(lambda: rabbit_admin.list_queues()[queue] == 0)
    # Kept unchanged, with the reason and where they came from.
    items, _channel = bus.quarantined()
    assert sorted(i.body for i in items) == sorted(
        (*bodies, b'{"priority": "info"}'))
    assert {i.routing_key for i in items} == {queue}
    reasons = sorted(i.reason for i in items)
    assert reasons[0].startswith('malformed: ')
    assert any('priority 3 is not a string' in r for r in reasons)


def test_a_message_the_endpoint_fails_on_is_quarantined_alone(
        bus, rabbit_admin):
    for n in range(60):
        bus.send(n)
    endpoint = Endpoint(poison=frozenset({13, 41}))
    listener = bus.listen(endpoint, batch_size=60, batch_timeout=5)
    good = sorted(set(range(60)) - {13, 41})
    assert _wait(lambda: sorted(endpoint.seen()) == good)
    # Each batch-mate handled exactly once, nothing requeued: the two
    # were isolated in the batch and quarantined at once.
    assert _wait(lambda: listener.stats.quarantined == 2)
    assert listener.stats.requeued == 0
    assert _wait(lambda: rabbit_admin.list_queues()[
        f'{bus.topic}.info'] == 0)
    items, channel = bus.quarantined()
    assert sorted(i.reason for i in items) == [
        'ValueError: cannot handle [13, 41]'] * 2

    # Replayed once the cause is gone, they are handled like any other.
    endpoint.poison = frozenset()
    for item in items:
        quarantine.replay(channel, item)
    assert _wait(lambda: sorted(endpoint.seen()) == list(range(60)))
    assert bus.quarantined()[0] == []


def test_a_failing_message_alone_is_quarantined_after_max_deliveries(
        bus, rabbit_admin):
    bus.conf.set_override('max_deliveries', 3, group='delivery')
    endpoint = Endpoint(poison=frozenset({5}))
    listener = bus.listen(endpoint, batch_size=1)
    for n in range(10):
        bus.send(n)
    assert _wait(lambda: sorted(endpoint.seen()) == [
        n for n in range(10) if n != 5])
    assert _wait(lambda: listener.stats.quarantined == 1)
    # Delivered three times, requeued twice (with a back-off), then
    # quarantined: no loop.
    assert listener.stats.failed_deliveries == 3
    assert listener.stats.requeued == 2
    [item], _channel = bus.quarantined()
    assert item.reason == ('ValueError: cannot handle [5] (failed 3 '
                           'deliveries)')
    assert _wait(lambda: rabbit_admin.list_queues()[
        f'{bus.topic}.info'] == 0)


def test_rejected_messages_are_acknowledged_and_copied_to_quarantine(
        bus, rabbit_admin):
    class Rejecting(Endpoint):
        def info(self, notifications):
            super().info(notifications)
            return dispatch.Rejected(
                (n, 'no definition fits') for n in notifications
                if n['payload']['n'] % 7 == 0)
    endpoint = Rejecting()
    listener = bus.listen(endpoint, batch_size=30, batch_timeout=1)
    for n in range(30):
        bus.send(n)
    assert _wait(lambda: listener.stats.quarantined == 5)
    # Handled once each, none requeued, all acknowledged.
    assert sorted(endpoint.seen()) == list(range(30))
    assert listener.stats.requeued == 0
    assert _wait(lambda: rabbit_admin.list_queues()[
        f'{bus.topic}.info'] == 0)
    items, _channel = bus.quarantined()
    assert sorted(json_n(i.body) for i in items) == [0, 7, 14, 21, 28]
    assert {i.reason for i in items} == {'no definition fits'}


def json_n(body: bytes) -> int:
    """The ``n`` of a quarantined notification's body."""
    inner = json.loads(json.loads(body)['oslo.message'])
    return inner['payload']['n']


def test_requeues_back_off(bus):
    bus.conf.set_override('requeue_backoff', 0.2, group='delivery')
    bus.conf.set_override('requeue_backoff_max', 0.5, group='delivery')
    endpoint = Endpoint(requeue=4)
    bus.listen(endpoint, batch_size=10, batch_timeout=0.2)
    bus.send(1)
    assert _wait(lambda: len(endpoint.times) == 5)
    gaps = [b - a for a, b in zip(endpoint.times, endpoint.times[1:],
                                      strict=False)]
    # 0.2, 0.4, then capped at 0.5 (plus the redelivery itself).
    for gap, hold in zip(gaps, (0.2, 0.4, 0.5, 0.5), strict=True):
        assert hold <= gap < hold + 1.0, gaps


def test_stop_finishes_the_batch_in_flight(bus, rabbit_admin):
    endpoint = Endpoint(delay=1.0)
    listener = bus.listen(endpoint, batch_size=30, batch_timeout=0.5)
    for n in range(30):
        bus.send(n)
    # A batch is in the endpoint (which takes a second over it).
    assert _wait(lambda: listener.stats.batches >= 1, timeout=10)
    started = time.monotonic()
    messaging.stop_listeners([listener])
    bus.listeners.remove(listener)
    assert time.monotonic() - started < 5
    # Whatever was handled was acknowledged; the rest is still queued.
    assert endpoint.seen()
    left = rabbit_admin.list_queues()[f'{bus.topic}.info']
    assert left == 30 - len(endpoint.seen())
    assert _unacked(rabbit_admin, f'{bus.topic}.info') == 0


def test_the_consumer_declares_what_the_driver_declares(bus):
    """The queue options (durability, quorum, HA) are the driver's."""
    from oslo_messaging._drivers import common as rpc_common
    bus.conf.set_override('amqp_durable_queues', True,
                          group='oslo_messaging_rabbit')
    context = bus.transport._driver._get_connection(
        rpc_common.PURPOSE_LISTEN)
    # An exchange of its own: a durable one would clash with the
    # non-durable exchanges other tests declare under the same name.
    exchange = f'{bus.topic}-durable'
    try:
        conn = context.connection
        conn.declare_topic_consumer(exchange, f'{bus.topic}.info',
                                    callback=lambda message: None)
        theirs = next(iter(conn._consumers))
        ours = declarations.topic_consumer(conn, list.append, exchange,
                                     f'{bus.topic}.info')
        for attribute in ('queue_name', 'exchange_name', 'routing_key',
                          'type', 'durable', 'exchange_auto_delete',
                          'queue_auto_delete', 'queue_arguments'):
            assert getattr(ours, attribute) == getattr(theirs, attribute), (
                attribute)
        assert ours.durable is True
    finally:
        context.connection.channel.queue_delete(f'{bus.topic}.info')
        context.connection.channel.exchange_delete(exchange)
        context.close()


def test_fast_sends_are_read_by_oslo_messaging_itself(bus):
    """What telemeter puts on the bus is what a Notifier would: an
    oslo.messaging listener (Ceilometer's, say) reads it unchanged."""
    received = []
    done = threading.Event()

    class Plain:
        def sample(self, ctxt, publisher_id, event_type, payload, metadata):
            received.append((publisher_id, event_type, payload,
                             metadata['message_id']))
            done.set()

    listener = oslo_messaging.get_notification_listener(
        bus.transport, bus.targets, [Plain()], executor='threading')
    listener.start()
    try:
        payload = [{'counter_name': 'cpu', 'counter_volume': 1.5,
                    'resource_metadata': {'é': ['x', None, 2 ** 40]}}]
        messaging.send_notification(
            bus.transport, oslo_messaging.Target(topic=f'{bus.topic}.sample'),
            {'message_id': 'm-1', 'publisher_id': 'telemetry.publisher.h',
             'event_type': 'metering', 'priority': 'SAMPLE',
             'payload': payload, 'timestamp': '2026-01-01 00:00:00'})
        assert done.wait(30)
    finally:
        listener.stop()
        listener.wait()
    assert received == [('telemetry.publisher.h', 'metering', payload,
                         'm-1')]


def test_backlog_depth_and_falling_behind(bus, caplog):
    # Two batches in flight, whatever telemeter's default prefetch is.
    bus.conf.set_override('rabbit_qos_prefetch_count', 0,
                          group='oslo_messaging_rabbit')
    bus.conf.set_override('backlog_check_interval', 0.3, group='delivery')
    bus.conf.set_override('backlog_warning', 50, group='delivery')
    release = threading.Event()

    class Slow(Endpoint):
        def info(self, messages):
            release.wait(60)
            return super().info(messages)

    endpoint = Slow()
    listener = bus.listen(endpoint, batch_size=10, batch_timeout=1)
    queue = f'{bus.topic}.info'
    bus.send(0)  # the first batch blocks the consumer
    with caplog.at_level(logging.INFO, logger='telemeter.messaging.backlog'):
        for n in range(1, 201):
            bus.send(n)
        assert _wait(lambda: listener.backlog.depth.get(queue, 0) >= 150,
                     timeout=30), listener.backlog.depth
        for n in range(201, 301):
            bus.send(n)
        assert _wait(lambda: 'falling behind' in caplog.text, timeout=30)
        assert f'Queue {queue} holds ' in caplog.text
        release.set()
        assert _wait(lambda: len(endpoint.seen()) == 301, timeout=60)
        assert _wait(lambda: listener.backlog.depth.get(queue) == 0,
                     timeout=30), listener.backlog.depth
        assert _wait(lambda: f'Queue {queue} has caught up' in caplog.text,
                     timeout=10)
    # The depth is a gauge of /metrics.
    from telemeter.health import bus as health_bus

    readings = health_bus.readings(lambda: [('notification', listener)],
                                   'notification')()
    [depth] = [r for r in readings if r.metric == 'backlog']
    assert dict(depth.labels)['queue'] == queue and depth.value == 0


def test_queues_a_service_declared_transient_are_consumed_as_they_are(
        bus, rabbit_url, caplog):
    """A service on oslo.messaging's default (transient) declared the
    queue and its exchange; telemeter (durable) consumes them anyway, on
    that exchange and on one nobody declared yet, and says what to set."""
    topic = bus.topic
    service_exchange, new_exchange = f'{topic}-svc', f'{topic}-new'
    service_conf = cfg.ConfigOpts()
    service_conf([], project='a-service', default_config_files=[])
    # The first transport registers the options; the driver reads the
    # control exchange when it is built, so the service's is the second.
    oslo_messaging.get_notification_transport(service_conf,
                                              rabbit_url).cleanup()
    service_conf.set_override('amqp_durable_queues', False,
                              group='oslo_messaging_rabbit')
    service_conf.set_override('control_exchange', service_exchange)
    service_transport = oslo_messaging.get_notification_transport(
        service_conf, rabbit_url)
    service = oslo_messaging.Notifier(service_transport, 'svc.host',
                                      driver='messagingv2', topics=[topic])
    service.info({}, 'svc.event', {'n': 0})  # declares both, transient
    bus.conf.set_override('amqp_durable_queues', True,
                          group='oslo_messaging_rabbit')
    bus.targets = [oslo_messaging.Target(topic=topic,
                                         exchange=service_exchange),
                   oslo_messaging.Target(topic=topic, exchange=new_exchange)]
    endpoint = Endpoint()
    with caplog.at_level(logging.WARNING,
                         logger='telemeter.messaging.declarations'):
        listener = bus.listen(endpoint, batch_size=10, batch_timeout=1)
        service.info({}, 'svc.event', {'n': 1})
        assert _wait(lambda: endpoint.seen() == [0, 1], timeout=30), (
            endpoint.seen())
    assert listener.alive and listener.connected
    assert (f'The queue {topic}.info already exists transient'
            in caplog.text)
    # The new exchange was declared as configured, durable; the service's
    # stays transient (re-declaring it transient still works).
    assert f'exchange {new_exchange}' not in caplog.text
    service.info({}, 'svc.event', {'n': 2})
    assert _wait(lambda: endpoint.seen() == [0, 1, 2], timeout=30)
    service_transport.cleanup()


@pytest.mark.parametrize('bus', [False, True], ids=['classic', 'quorum'],
                         indirect=True)
def test_deliveries_left_unsettled_are_released(bus, rabbit_admin):
    # A batch whose acknowledgement never reached the broker while the
    # channel stayed open: without the settlement watch its messages stay
    # unacknowledged for the life of the connection.
    endpoint = Endpoint()
    listener = bus.listen(endpoint, batch_size=50, batch_timeout=0.5)
    listener.settlement.grace = 0.5
    settle, lost = listener._settle, []

    def lose_the_first(raw, requeue):
        if not lost:
            lost.append(len(raw))
            return
        settle(raw, requeue)
    listener._settle = lose_the_first
    for n in range(10):
        bus.send(n)
    assert _wait(lambda: sorted(endpoint.seen()) == sorted(
        list(range(10)) + list(range(lost[0]))) if lost else False)
    assert listener.stats.released == lost[0]
    assert _wait(lambda: _unacked(rabbit_admin, f'{bus.topic}.info') == 0)
    assert rabbit_admin.list_queues()[f'{bus.topic}.info'] == 0


def _survives_a_disturbed_first_batch(bus, rabbit_admin, disturb):
    """Run ``disturb(listener)`` once, inside the endpoint's handling of
    the first batch; then all 20 messages sent must be handled (the first
    batch again, never acknowledged), none left unacknowledged, and the
    queue consumed by one consumer. Returns the listener."""
    listener = None
    disturbed = threading.Event()

    class Disturbed(Endpoint):
        def info(self, notifications):
            if not disturbed.is_set():
                disturbed.set()
                disturb(listener)
            return super().info(notifications)

    endpoint = Disturbed()
    listener = bus.listen(endpoint, batch_size=5, batch_timeout=0.5)
    for n in range(5):
        bus.send(n)
    assert _wait(disturbed.is_set)
    for n in range(5, 20):
        bus.send(n)
    assert _wait(lambda: set(endpoint.seen()) == set(range(20))), (
        f'seen {endpoint.seen()}; listener {listener.stats.as_dict()}')
    assert _wait(lambda: _unacked(rabbit_admin, f'{bus.topic}.info') == 0)
    assert _consumers(rabbit_admin, f'{bus.topic}.info') == 1
    return listener


def test_a_channel_the_broker_closed_mid_batch_is_replaced(bus, rabbit_admin):
    # While the first batch is handled the broker closes the listener's
    # channel (here: a passive declaration of a queue that does not exist,
    # made on that channel, as a failing quarantine declaration would).
    # The batch cannot be settled on it.
    import amqp.exceptions

    def close_the_channel(listener):
        with pytest.raises(amqp.exceptions.NotFound):
            listener._conn.channel.queue_declare(
                f'{bus.topic}.missing', passive=True)
    _survives_a_disturbed_first_batch(bus, rabbit_admin, close_the_channel)


def test_a_consumer_gone_unknown_to_the_driver_is_started_again(
        bus, rabbit_admin):
    # The listener's consumer is cancelled on its channel while a batch is
    # handled, and no error reaches the driver: it would keep waiting on
    # a channel that delivers nothing. The listener sees the consumer
    # missing from its channel and starts its consumers on a new
    # connection.
    def cancel_the_consumers(listener):
        conn = listener._conn
        for tag in conn._consumers.values():
            conn.channel.basic_cancel(str(tag))
    listener = _survives_a_disturbed_first_batch(bus, rabbit_admin,
                                                 cancel_the_consumers)
    assert listener.stats.restarts == 1

def _consumers(rabbit_admin, queue: str) -> int:
    return _queue_figure(rabbit_admin, queue, 'consumers')
