"""tools/bench/drain: the pre-loaded messages (the collector's signed
metering notifications, the agent's corpus notifications), their AMQP
bodies and the expected counts."""

from __future__ import annotations

import json

import pytest
from oslo_utils import netutils

from telemeter.collector import endpoints
from telemeter.messaging import envelope
from telemeter.publisher import messaging as notifier
from telemeter.publisher import utils as publisher_utils
from tools.bench.drain import agent_load, collector_load, wire
from tools.bench.e2e import accounting
from tools.bench.e2e.errors import BenchError

SECRET = 'drain-secret'
PREFIX = 'a1b2c3d4-e5f6-4a7b-8c9d-'


@pytest.fixture(scope='module')
def resources():
    return collector_load.make_resources(1000)


# -- the collector's load --------------------------------------------------


def test_resources_carry_ten_metadata_keys_one_nested(resources):
    assert len({r.id for r in resources}) == 1000
    for resource in resources[:50]:
        assert 8 <= len(resource.metadata) <= 10
        nested = [v for v in resource.metadata.values()
                  if isinstance(v, dict)]
        assert len(nested) == 1


def test_samples_cover_ten_meters_of_every_resource(resources):
    dicts = [collector_load.metering_dict(resources, seq, PREFIX, SECRET)
             for seq in range(0, 10_000, 7)]
    assert len({d['counter_name'] for d in dicts}) == 10
    assert len({d['resource_id'] for d in dicts}) == 1000
    assert [accounting.parse_message_id(PREFIX, d['message_id'])
            for d in dicts] == list(range(0, 10_000, 7))


def test_metering_dicts_verify_with_the_secret(resources):
    dicts = [collector_load.metering_dict(resources, seq, PREFIX, SECRET)
             for seq in range(25)]
    assert all(publisher_utils.verify_signature(d, SECRET) for d in dicts)
    assert not any(publisher_utils.verify_signature(d, 'other')
                   for d in dicts)


def test_cumulative_volumes_grow_from_cycle_to_cycle(resources):
    first = collector_load.metering_dict(resources, 2000, PREFIX, SECRET)
    later = collector_load.metering_dict(resources, 12000, PREFIX, SECRET)
    assert first['counter_name'] == later['counter_name'] == (
        'disk.read.bytes')
    assert later['counter_volume'] > first['counter_volume']
    assert later['timestamp'] > first['timestamp']


def test_messages_are_what_the_notifier_publisher_sends(
        conf, fake_transport_url, monkeypatch, resources):
    conf.set_override('host', 'node-7')
    conf.set_override('telemetry_secret', SECRET, group='publisher')
    sent = []
    monkeypatch.setattr(
        notifier.messaging, 'send_notification',
        lambda transport, target, message, **kw: sent.append(
            (target, message)))
    publisher = notifier.SampleNotifierPublisher(
        conf, netutils.urlsplit('notifier://'))
    publisher.publish_samples([collector_load.make_sample(resources, seq,
                                                          PREFIX)
                               for seq in range(3)])
    [(target, theirs)] = sent
    [ours] = collector_load.collector_messages(1, 3, resources, SECRET,
                                               PREFIX, 'node-7')
    assert (ours.exchange, ours.routing_key) == (target.exchange,
                                                 target.topic)
    assert set(ours.message) == set(theirs)
    for key in ('publisher_id', 'event_type', 'priority', 'payload'):
        assert ours.message[key] == theirs[key], key
    assert ours.message['message_id'] != theirs['message_id']


def test_collector_messages_number_their_samples(resources):
    messages = list(collector_load.collector_messages(
        3, 4, resources, SECRET, PREFIX, 'h'))
    seqs = [accounting.parse_message_id(PREFIX, d['message_id'])
            for m in messages for d in m.message['payload']]
    assert seqs == list(range(12))
    assert len({m.message['message_id'] for m in messages}) == 3


def test_the_collector_endpoint_takes_every_sample(resources):
    [message] = collector_load.collector_messages(1, 50, resources, SECRET,
                                                  PREFIX, 'h')
    priority, notification = envelope.decode(wire.wire_body(
        message.message))
    assert priority == 'sample'

    class Manager:
        def __init__(self):
            self.stored = []

        def map_method(self, method, data):
            self.stored.extend(data)

    manager = Manager()
    endpoint = endpoints.SampleEndpoint(SECRET, manager)
    assert endpoint.sample([notification]) is None
    assert endpoint.stats()['rejected'] == 0
    assert len(manager.stored) == 50


# -- the agent's load ----------------------------------------------------

ENTRY = {'key': 'nova.exists', 'exchange': 'nova', 'priority': 'INFO',
         'publisher_id': 'compute.cmp-01', 'event_type':
         'compute.instance.exists', 'payload': {'instance_id': 'i-1'},
         'ctxt': {'user_id': 'u-1', 'project_id': 'p-1'}}


def test_agent_messages_go_to_the_priority_queue_of_their_exchange():
    message = agent_load.wire_message(ENTRY, {'instance_id': 'i-2'},
                                      '2026-01-01 00:00:00')
    assert message.exchange == 'nova'
    assert message.routing_key == 'notifications.info'
    assert message.routing_key in agent_load.AGENT_QUEUES
    priority, notification = envelope.decode(wire.wire_body(
        message.message))
    assert priority == 'info'
    assert notification['event_type'] == 'compute.instance.exists'
    assert notification['publisher_id'] == 'compute.cmp-01'
    assert notification['payload'] == {'instance_id': 'i-2'}
    # pack_context adds client_timeout, as it does for the Notifier.
    assert ENTRY['ctxt'].items() <= notification['ctxt'].items()
    assert notification['metadata']['timestamp'] == '2026-01-01 00:00:00'


def test_keys_sent_cycle_through_the_sequence():
    sent = agent_load.keys_sent(['a', 'b', 'a', 'c'], 10)
    assert sent == {'a': 5, 'b': 3, 'c': 2}
    assert agent_load.keys_sent([], 10) == {}
    assert sum(agent_load.keys_sent(['a', 'b', 'c'], 7).values()) == 7


def test_expected_outputs_from_per_notification_counts():
    per_key = {'a': {'samples': 2, 'events': 1},
               'b': {'samples': 0, 'events': 1}}
    assert agent_load.expected_outputs({'a': 5, 'b': 3}, per_key) == {
        'samples': 10, 'events': 8}


def test_expected_outputs_refuse_keys_the_dry_run_missed():
    with pytest.raises(BenchError, match='c'):
        agent_load.expected_outputs({'a': 1, 'c': 1},
                                    {'a': {'samples': 1, 'events': 1}})


# -- the wire ------------------------------------------------------------


def test_wire_body_is_the_oslo_envelope():
    body = json.loads(wire.wire_body({'event_type': 'x', 'payload': []}))
    assert body['oslo.version'] == '2.0'
    inner = json.loads(body['oslo.message'])
    assert inner['event_type'] == 'x'
    assert len(inner['_unique_id']) == 32


def test_amqp_url_and_loopback_check():
    assert wire.amqp_url('rabbit://guest:guest@127.0.0.1:5760/') == (
        'amqp://guest:guest@127.0.0.1:5760/')
    wire.check_loopback('rabbit://guest:guest@127.0.0.1:5760/')
    wire.check_loopback('rabbit://guest:guest@localhost:5760/')
    with pytest.raises(BenchError):
        wire.check_loopback('rabbit://guest:guest@10.0.0.5:5672/')
