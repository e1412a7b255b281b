"""What oslo.messaging cannot do on a quorum-queue cluster, shown on the
3-node cluster (doc/source/admin/cluster.rst, "Limits").

* The replication of the quorum queues it declares is not configurable:
  oslo.messaging has no option for it, RabbitMQ 3.10 takes no policy for
  it, and every queue gets a member on each node. The operator changes
  membership afterwards with ``rabbitmq-queues``.
* A publish the broker refuses (a nack: a quorum queue electing a new
  leader, or one that is full with ``overflow = reject-publish``) is, for
  oslo.messaging, a failed connection: it reconnects and publishes again.
  telemeter's ``notifier://`` publisher therefore holds the batch (and the
  agent the source notification) until the broker takes it; a plain
  oslo.messaging Notifier given a bounded ``retry`` logs "Could not send
  notification" and drops the message without telling its caller.

A full queue stands in for the election here because it nacks on demand;
the election's nacks are too short to be caught reliably.
"""

from __future__ import annotations

import json
import logging
import threading

import kombu
import oslo_messaging
import pytest
from oslo_config import cfg
from oslo_messaging._drivers import impl_rabbit

from telemeter import messaging, publisher, sample, service

pytestmark = pytest.mark.timeout(300)

QUEUE = 'metering.sample'


def _conf(url: str) -> cfg.ConfigOpts:
    conf = service.prepare_service(argv=['cluster-limits'],
                                   config_files=[], conf=cfg.ConfigOpts())
    conf.set_override('transport_url', url)
    conf.set_override('rabbit_quorum_queue', True,
                      group='oslo_messaging_rabbit')
    conf.set_override('rabbit_retry_interval', 1,
                      group='oslo_messaging_rabbit')
    conf.set_override('rabbit_interval_max', 1,
                      group='oslo_messaging_rabbit')
    return conf


def _sample(name: str) -> sample.Sample:
    return sample.Sample(name=name, type=sample.TYPE_GAUGE, unit='B',
                         volume=1, user_id=None, project_id=None,
                         resource_id='r-1')


def _ready(cluster, vhost: str) -> int:
    """Messages in ``metering.sample``, as its leader counts them.

    A passive declare is answered from the queue's state; the
    ``list_queues`` column is a statistic the nodes emit every
    ``collect_statistics_interval`` (5 s), so it may still show 0 for
    messages published (and confirmed) seconds ago."""
    with kombu.Connection(cluster.node_url(1).rstrip('/') + '/' + vhost
                          ) as conn:
        return conn.channel().queue_declare(QUEUE, passive=True
                                            ).message_count


def _members(cluster, vhost: str) -> list[str]:
    [queue] = [q for q in cluster.list_queues(vhost, 'name', 'members')
               if q['name'] == QUEUE]
    return sorted(queue['members'])


def test_replication_of_declared_quorum_queues_is_not_configurable(
        rabbit_cluster, cluster_vhost):
    vhost, url = cluster_vhost
    names = {opt.name for opt in impl_rabbit.rabbit_opts}
    assert 'rabbit_quorum_queue' in names
    assert not [n for n in names if 'group' in n or 'replica' in n
                or 'initial' in n], names

    # A policy cannot set the size: the quorum-queue argument is refused
    # as a policy key; the stream key is taken but does not apply.
    with pytest.raises(Exception, match='not recognised policy settings'):
        rabbit_cluster.rabbitmqctl(
            'set_policy', '-p', vhost, '--apply-to', 'queues', 'size',
            '^metering', '{"x-quorum-initial-group-size": 2}')
    rabbit_cluster.rabbitmqctl(
        'set_policy', '-p', vhost, '--apply-to', 'queues', 'size',
        '^metering', '{"initial-cluster-size": 2}')

    conf = _conf(url)
    notifier = publisher.get_publisher(
        conf, 'notifier://?topic=metering', 'telemeter.sample.publisher')
    try:
        notifier.publish_samples([_sample('declared')])
        nodes = _members(rabbit_cluster, vhost)
        assert len(nodes) == 3, nodes
        [queue] = [q for q in rabbit_cluster.list_queues(
            vhost, 'name', 'type', 'policy') if q['name'] == QUEUE]
        assert (queue['type'], queue['policy']) == ('quorum', ''), queue

        # What the operator does instead: rabbitmq-queues, per replica.
        rabbit_cluster.rabbitmq_queues(
            'delete_member', '-p', vhost, QUEUE, nodes[0])
        assert _members(rabbit_cluster, vhost) == nodes[1:]
        notifier.publish_samples([_sample('on-two')])
        assert _ready(rabbit_cluster, vhost) == 2
        rabbit_cluster.rabbitmq_queues(
            'grow', nodes[0], 'all', '--vhost-pattern', vhost,
            '--queue-pattern', QUEUE)
        assert _members(rabbit_cluster, vhost) == nodes
        assert _ready(rabbit_cluster, vhost) == 2
    finally:
        messaging.cleanup()   # the publisher's transport is cached


def _reject_when_full(cluster, vhost: str) -> None:
    """``metering.sample`` nacks every publish once it holds 2 messages
    (a quorum queue rejects when it is already over ``max-length``)."""
    cluster.rabbitmqctl(
        'set_policy', '-p', vhost, '--apply-to', 'queues', 'full',
        f'^{QUEUE}$', json.dumps({'max-length': 1,
                                  'overflow': 'reject-publish'}))


def _drain(cluster, vhost: str) -> list[dict]:
    bodies = []
    with kombu.Connection(cluster.node_url(1).rstrip('/') + '/' + vhost
                          ) as conn:
        channel = conn.channel()
        while (message := channel.basic_get(QUEUE, no_ack=True)) is not None:
            inner = json.loads(json.loads(message.body)['oslo.message'])
            bodies.extend(inner['payload'])
    return bodies


def test_a_nacked_publish_is_held_by_telemeter_and_dropped_by_a_notifier(
        rabbit_cluster, cluster_vhost):
    vhost, url = cluster_vhost
    conf = _conf(url)
    notifier = publisher.get_publisher(
        conf, 'notifier://?topic=metering', 'telemeter.sample.publisher')
    try:
        notifier.publish_samples([_sample('first')])   # declares the queue
        _reject_when_full(rabbit_cluster, vhost)
        notifier.publish_samples([_sample('second')])
        assert _ready(rabbit_cluster, vhost) == 2

        # telemeter's publisher (default policy): the nacked batch is
        # published again until the broker takes it; the call does not
        # return meanwhile, so the agent holds the source notification.
        done = threading.Event()
        errors: list[BaseException] = []

        def publish() -> None:
            try:
                notifier.publish_samples([_sample('held')])
            except BaseException as exc:  # reported below
                errors.append(exc)
            done.set()

        thread = threading.Thread(target=publish, daemon=True)
        thread.start()
        assert not done.wait(8), errors
        assert _ready(rabbit_cluster, vhost) == 2

        # A plain Notifier (OpenStack services, bounded retry): logged and
        # dropped, its caller sees nothing.
        transport = oslo_messaging.get_notification_transport(conf, url)
        plain = messaging.get_notifier(transport, 'telemetry.publisher.x',
                                       driver='messagingv2',
                                       topics=['metering'], retry=1)
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        notify_log = logging.getLogger('oslo_messaging.notify.messaging')
        notify_log.addHandler(handler)
        try:
            plain.sample({}, 'telemetry.polling',
                         [{'counter_name': 'dropped'}])
        finally:
            notify_log.removeHandler(handler)
            transport.cleanup()
        assert [r.getMessage().startswith('Could not send notification')
                for r in records] == [True], records

        rabbit_cluster.rabbitmqctl('clear_policy', '-p', vhost, 'full')
        assert done.wait(60), 'the held batch was not published'
        assert not errors, errors
    finally:
        messaging.cleanup()   # the publisher's transport is cached
    names = [s['counter_name'] for s in _drain(rabbit_cluster, vhost)]
    assert sorted(names) == ['first', 'held', 'second'], names
