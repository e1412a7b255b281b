"""The broker-side delivery limit of the quarantine module: the policy
telemeter prints and how a dead-lettered message is read and replayed."""

from __future__ import annotations

import datetime
import io
import json
import re
import types

from oslo_config import cfg

from telemeter import service
from telemeter.cmd import quarantine as cli
from telemeter.messaging import delivery, quarantine


def _conf(conf):
    delivery.register_opts(conf)
    conf.set_override('topics', ['notifications', 'nova-notif'],
                      group='oslo_messaging_notifications')
    conf.set_override('broker_delivery_limit', 7, group='delivery')
    return conf


def test_pattern_matches_every_queue_telemeter_consumes(conf):
    pattern = re.compile(quarantine.queue_pattern(_conf(conf)))
    for name in ('notifications.info', 'notifications.sample',
                 'nova-notif.error', 'metering.sample', 'event.sample',
                 'telemeter-pipe-meter_source:meter_sink-3'):
        assert pattern.match(name), name
    for name in ('notifications', 'notificationsXinfo', 'metering.sample.x',
                 'telemeter.quarantine', 'telemeter.dead-letter',
                 'reply_abc', 'nova.compute'):
        assert not pattern.match(name), name


def test_policy_command(conf):
    args = quarantine.set_policy_command(_conf(conf), vhost='prod')
    assert args[:7] == ['set_policy', '-p', 'prod', '--apply-to',
                        'queues', 'telemeter-dead-letter',
                        quarantine.queue_pattern(conf)]
    assert json.loads(args[7]) == {
        'delivery-limit': 7, 'dead-letter-exchange': '',
        'dead-letter-routing-key': 'telemeter.dead-letter'}


def _dead(body=b'{"oslo.version": "2.0"}', extra=None):
    headers = {'x-death': [{
        'count': 1, 'reason': 'delivery_limit', 'queue': 'metering.sample',
        'exchange': 'telemeter', 'routing-keys': ['metering.sample'],
        'time': datetime.datetime(2026, 12, 2, 12, 0)}],
        'x-first-death-reason': 'delivery_limit', 'x-delivery-count': 8,
        'x-first-death-queue': 'metering.sample', 'keep': 'me',
        **(extra or {})}
    return types.SimpleNamespace(body=body, headers=headers, delivery_tag=5,
                                 content_type='application/json',
                                 content_encoding='utf-8')


def test_a_dead_lettered_message_reads_as_an_item():
    item = quarantine.Item.from_message(_dead())
    assert (item.exchange, item.routing_key, item.host) == (
        'telemeter', 'metering.sample', 'broker')
    assert 'delivery_limit' in item.reason
    assert 'metering.sample' in item.reason
    assert item.time.startswith('2026-12-02T12:00')
    # stable: the same body gives the same id at every listing
    assert item.ident == quarantine.Item.from_message(_dead()).ident
    assert item.ident != quarantine.Item.from_message(_dead(b'x')).ident


def test_replay_sends_it_back_without_the_broker_headers():
    sent = []
    acked = []
    channel = types.SimpleNamespace(
        basic_publish=lambda msg, exchange, routing_key: sent.append(
            (msg, exchange, routing_key)),
        basic_ack=acked.append)
    quarantine.replay(channel, quarantine.Item.from_message(_dead()))
    [(message, exchange, key)] = sent
    assert (exchange, key) == ('telemeter', 'metering.sample')
    assert message.properties['application_headers'] == {'keep': 'me'}
    assert acked == [5]


def test_cli_policy_and_dead_letter_queue():
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(cli.CLI_OPTS)
    conf = service.prepare_service(argv=['q', 'policy', '--vhost', 'v'],
                                   config_files=[], conf=conf)
    _conf(conf)
    assert cli.queue_name(conf) == 'telemeter.dead-letter'
    buffer = io.StringIO()
    assert cli.run(conf, channel=None, out=buffer) == 0
    out = buffer.getvalue()
    assert 'rabbitmqctl set_policy -p v --apply-to queues' in out
    assert '"delivery-limit": 7' in out
