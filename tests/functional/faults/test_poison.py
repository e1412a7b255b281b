"""Poison in the stream: items that can never be handled must not block,
loop or take valid items with them.

* a notification whose ``priority`` is not a string (``3``, then ``null``)
  published with plain AMQP on the agent's ``<topic>.info`` queue;
* two properly signed samples the database cannot store (a NUL byte in
  ``resource_id``, a NUL byte in a metadata value) in a
  ``telemetry.polling`` notification.

Each is put into the stream twice: before its first sample (the first
collector batch) and in the middle, with ``[collector] batch_size`` 1 and
1000. Every valid sample must be stored once, both daemons alive, their
logs small (a redelivery loop logs megabytes).
"""

from __future__ import annotations

import functools

import pytest

from telemeter import messaging
from tests.functional.faults import harness

pytestmark = pytest.mark.timeout(900)


def _poison_notification(dep, priority) -> None:
    harness.raw_notification(dep, priority, 'faults.tick',
                             harness.notif_payload(-1))


def _poison_samples(dep) -> None:
    conf = dep.conf()
    transport = messaging.get_transport(conf, dep.transport_url,
                                        cache=False)
    try:
        notifier = messaging.get_notifier(
            transport, 'telemeter.polling', driver='messagingv2',
            topics=[dep.notification_topic])
        notifier.sample({}, 'telemetry.polling', {'samples': [
            harness.polled_sample(-1, resource='poison\x00resource'),
            harness.polled_sample(-2, metadata={'path': 'poison\x00meta'}),
        ]})
    finally:
        transport.cleanup()


@pytest.mark.parametrize('batch', [1, 1000])
def test_poison_notification(scenario, batch):
    scn = scenario(f'poison priority 3/null, collector batch {batch}',
                   collector_batch=batch)
    dep = scn.dep
    injections = {
        0: functools.partial(_poison_notification, dep, 3),
        scn.n // 2: functools.partial(_poison_notification, dep, None)}
    scn.run(rate=1000, injections=injections)
    scn.assert_nothing_lost_or_doubled()


@pytest.mark.parametrize('batch', [1, 1000])
def test_poison_sample(scenario, batch):
    scn = scenario(f'poison NUL samples, collector batch {batch}',
                   collector_batch=batch)
    dep = scn.dep
    injections = {0: functools.partial(_poison_samples, dep),
                  scn.n // 2: functools.partial(_poison_samples, dep)}
    scn.run(rate=1000, injections=injections)
    scn.assert_nothing_lost_or_doubled()
