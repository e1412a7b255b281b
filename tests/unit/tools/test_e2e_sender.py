"""tools/bench/e2e/sender.py: the notification the sender process puts
on the bus, and its pacing."""

from __future__ import annotations

import logging
import threading
import time

import oslo_messaging
import pytest

from tools.bench.e2e import polling_load, sender


def one_batch() -> list[dict]:
    """A signed ``telemetry.polling`` batch."""
    return polling_load.PollingLoad(
        polling_load.make_instances(120), 'bench-secret',
        'a1b2c3d4-e5f6-4a7b-8c9d-').next_batch()


class Endpoint:
    def __init__(self) -> None:
        self.samples: list[dict] = []
        self.infos: list[dict] = []
        self.event = threading.Event()

    def sample(self, messages):
        self.samples.extend(messages)
        self.event.set()

    def info(self, messages):
        self.infos.extend(messages)


def test_sent_on_the_notifications_topic_at_sample_priority(conf):
    conf.set_override('transport_url', 'fake://')
    notifier = sender.polling_notifier(conf)
    endpoint = Endpoint()
    listener = oslo_messaging.get_batch_notification_listener(
        notifier.transport, [oslo_messaging.Target(topic='notifications')],
        [endpoint], executor='threading', batch_size=10, batch_timeout=0.1)
    listener.start()
    try:
        batch = one_batch()
        sender.send_polling_batch(notifier, batch)
        assert endpoint.event.wait(5)
        time.sleep(0.2)
    finally:
        listener.stop()
        listener.wait()
        from oslo_messaging._drivers import impl_fake

        from telemeter import messaging
        messaging.cleanup()
        impl_fake.FakeExchangeManager.cleanup()
    [message] = endpoint.samples
    assert endpoint.infos == []
    assert message['publisher_id'] == 'telemeter.polling'
    assert message['event_type'] == 'telemetry.polling'
    assert message['ctxt'] == {}
    assert message['payload'] == {'samples': batch}


def test_pacer_keeps_the_rate_without_bursting():
    now = [0.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    pacer = sender.Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        pacer.wait()
    assert now[0] == pytest.approx(0.75)
    now[0] += 5.0  # the sender fell behind: no catching up in a burst
    pacer.wait()
    pacer.wait()
    assert sleeps[-1] == pytest.approx(0.25)
    assert sender.Pacer(None).interval == 0.0


def test_send_errors_counts_what_oslo_messaging_logs():
    errors = sender.SendErrors.install()
    logger = logging.getLogger('oslo_messaging')
    try:
        logger.warning('not an error')
        logger.error('send failed')
    finally:
        logger.removeHandler(errors)
    assert errors.count == 1
