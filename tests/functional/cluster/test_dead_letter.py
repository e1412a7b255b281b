"""Poison on quorum queues: the broker's own delivery limit (issue 15).

A collector (``[collector] batch_size = 1``, so a failing sample is alone
in its batch and telemeter cannot tell it from an outage of the next hop:
it requeues it, up to ``[delivery] max_deliveries`` = 50 here) consumes
``metering.sample`` on the cluster, a quorum queue under the policy that
``telemeter-quarantine policy`` prints (``delivery-limit`` 3, dead-letter
to ``[delivery] dead_letter_queue``). The database has a CHECK constraint
that one sample (volume -1) violates, so every write of it fails: after 3
deliveries the broker moves it to the dead-letter queue, its 20 batch-mates
are stored, ``telemeter-quarantine --dead-letter list`` shows it, and once
the constraint is dropped (the cause fixed) ``replay`` brings it back and
it is stored. (Data that can never be stored - a unit longer than its
column, a NUL byte - is dropped or quarantined by telemeter itself.)
"""

from __future__ import annotations

import re
import shlex
import time
import uuid

import pytest
import sqlalchemy

from telemeter import messaging, sample
from telemeter.publisher import utils
from tests.functional import daemons

pytestmark = pytest.mark.timeout(600)

LIMIT = 3


def _signed(i: int) -> dict:
    s = sample.Sample('dlq.meter', 'gauge', 'B', i, 'u', 'p', f'r-{i}',
                      timestamp='2032-02-01T00:00:00')
    return utils.meter_message_from_counter(s, daemons.SECRET)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f'{what} not reached within {timeout}s')


def _volumes(engine) -> list[float]:
    with engine.connect() as conn:
        return sorted(float(v) for (v,) in conn.execute(sqlalchemy.text(
            "SELECT s.volume FROM sample s JOIN meter m ON m.id = "
            "s.meter_id WHERE m.name = 'dlq.meter'")))


def test_poison_dead_lettered_after_the_limit_then_replayed(
        tmp_path, rabbit_cluster, cluster_vhost, postgresql_function_url):
    vhost, url = cluster_vhost
    dead = f'dead-{uuid.uuid4().hex[:8]}'
    dep = daemons.Deployment(
        tmp_path / 'dep', url, database_url=postgresql_function_url,
        extra_conf=f"""
            [oslo_messaging_rabbit]
            rabbit_quorum_queue = true
            [collector]
            batch_size = 1
            [delivery]
            max_deliveries = 50
            broker_delivery_limit = {LIMIT}
            dead_letter_queue = {dead}
            """)
    dep.run('telemeter-dbsync')
    engine = sqlalchemy.create_engine(postgresql_function_url,
                                      poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(
            'ALTER TABLE sample ADD CONSTRAINT no_negative CHECK '
            '(volume >= 0)'))
    # the command declares the dead-letter queue and prints the policy
    printed = dep.run('telemeter-quarantine', 'policy', '--vhost',
                      vhost).stdout
    [line] = [x for x in printed.splitlines() if x.startswith('rabbitmqctl')]
    rabbit_cluster.rabbitmqctl(*shlex.split(line)[1:])
    policies = rabbit_cluster.rabbitmqctl('list_policies', '-q', '-p', vhost)
    assert f'"delivery-limit":{LIMIT}' in policies.replace(' ', '')

    collector = dep.start('telemeter-collector')
    collector.wait_for_log('Collector listening on topic', timeout=120)
    transport = messaging.get_transport(dep.conf(), url, cache=False)
    try:
        notifier = messaging.get_notifier(
            transport, 'test', driver='messagingv2',
            topics=[dep.metering_topic])
        for i in range(20):
            if i == 10:
                notifier.sample({}, 'metering', [_signed(-1)])
            notifier.sample({}, 'metering', [_signed(i)])
    finally:
        transport.cleanup()

    try:
        _wait(lambda: len(_volumes(engine)) >= 20, 120, '20 stored')

        def in_dead_letter():
            queues = {q['name']: q for q in rabbit_cluster.list_queues(
                vhost, 'name', 'type', 'messages')}
            return queues.get(dead, {}).get('messages') == 1 and queues
        queues = _wait(in_dead_letter, 120, 'the poison dead-lettered')
        assert _volumes(engine) == [float(i) for i in range(20)]
        assert queues[dead]['type'] == 'quorum'
        assert queues[f'{dep.metering_topic}.sample']['messages'] == 0
        # telemeter itself did not quarantine it (its limit is 50)
        assert queues.get(dep.quarantine_queue, {}).get('messages', 0) == 0
        failures = len(re.findall(r'failed \(delivery \d+ of at most 50\)',
                                  collector.log()))
        assert 1 <= failures <= LIMIT + 1, failures

        listed = dep.run('telemeter-quarantine', '--dead-letter',
                         'list').stdout
        assert 'delivery_limit' in listed and '1 message(s)' in listed, listed
        assert f'{dep.metering_topic}.sample' in listed

        # the cause fixed: the constraint is gone; replay
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(
                'ALTER TABLE sample DROP CONSTRAINT no_negative'))
        replayed = dep.run('telemeter-quarantine', '--dead-letter', 'replay',
                           '--all').stdout
        assert '1 message(s) replayed' in replayed, replayed
        _wait(lambda: -1.0 in _volumes(engine), 120, 'the replay stored')
        assert _volumes(engine) == [-1.0] + [float(i) for i in range(20)]
        assert 'no message' not in dep.run(
            'telemeter-quarantine', '--dead-letter', 'list').stdout
    finally:
        engine.dispose()
        dep.cleanup()
