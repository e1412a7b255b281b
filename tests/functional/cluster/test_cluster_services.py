"""The 3-node cluster of tools/rabbitmq-cluster.sh itself: clustered,
each node killable and restartable alone, quorum queues replicated on the
three and available while one node is down."""

from __future__ import annotations

import json
import time

import amqp.exceptions
import kombu
import pytest

pytestmark = pytest.mark.timeout(600)


def _publish(url: str, queue: str, body: str) -> None:
    """Publish with a broker confirm; while the queue elects a new leader
    (a node was just killed) the broker may nack: send again on a new
    connection, as oslo.messaging's retry does."""
    for _ in range(30):
        with kombu.Connection(url, transport_options={
                'confirm_publish': True}) as conn:
            channel = conn.channel()
            channel.queue_declare(queue=queue, durable=True,
                                  auto_delete=False,
                                  arguments={'x-queue-type': 'quorum'})
            try:
                conn.Producer(channel).publish(body, routing_key=queue,
                                               delivery_mode=2)
                return
            except amqp.exceptions.MessageNacked:
                pass
        time.sleep(0.5)
    raise AssertionError(f'{url}: every publish nacked for 15 s')


def _get(url: str, queue: str) -> str | None:
    with kombu.Connection(url) as conn:
        channel = conn.channel()
        for _ in range(50):
            message = channel.basic_get(queue, no_ack=True)
            if message is not None:
                body = message.body
                return body.decode() if isinstance(body, bytes) else body
            time.sleep(0.1)
    return None


def test_three_nodes_clustered(rabbit_cluster):
    status = rabbit_cluster.rabbitmqctl('cluster_status', '--formatter',
                                        'json')
    assert len(json.loads(status)['running_nodes']) == 3
    assert rabbit_cluster.url.count('127.0.0.1:') == 3


def test_node_killed_and_restarted_alone(rabbit_cluster, cluster_vhost):
    vhost, _url = cluster_vhost
    node2 = rabbit_cluster.node_url(2).rstrip('/') + '/' + vhost
    node3 = rabbit_cluster.node_url(3).rstrip('/') + '/' + vhost
    _publish(node2, 'q', 'before')
    assert _get(node2, 'q') == 'before'
    queues = rabbit_cluster.list_queues(vhost, 'name', 'type', 'members')
    assert [(q['type'], len(q['members'])) for q in queues] == [
        ('quorum', 3)]

    rabbit_cluster.kill(2)
    assert rabbit_cluster.running_nodes() == [1, 3]
    # the queue (its leader was on node 2) keeps a majority: still served
    _publish(node3, 'q', 'during')
    assert _get(node3, 'q') == 'during'
    rabbit_cluster.start(2)
    assert rabbit_cluster.running_nodes() == [1, 2, 3]
    rabbit_cluster.wait_quorum_members(vhost)
    _publish(node2, 'q', 'after')
    assert _get(node2, 'q') == 'after'
