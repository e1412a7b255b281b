"""``telemeter-quarantine``: the bus messages no daemon could handle.

A daemon moves a message to ``[delivery] quarantine_queue`` when it
cannot be decoded, or when handling it failed ``max_deliveries`` times or
failed while its batch-mates went through. The message is kept unchanged
with the reason, its origin, time and host in ``x-quarantine-*`` headers.

  telemeter-quarantine list                 one line per message
  telemeter-quarantine show ID...           headers and body
  telemeter-quarantine replay ID... | --all back where they came from
  telemeter-quarantine purge ID... | --all  delete them
  telemeter-quarantine policy               the rabbitmqctl set_policy line
                                            of the broker's delivery limit

With ``--dead-letter`` the commands work on ``[delivery]
dead_letter_queue``: the messages RabbitMQ itself dead-lettered from a
quorum queue after ``[delivery] broker_delivery_limit`` deliveries (once
the policy is set).

Fix the cause first (a meter definition, a database column, the sender),
then replay: a message that fails again is quarantined again. Exit
status 1 when an ID is not in the queue.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

from oslo_config import cfg
from oslo_messaging._drivers import common as rpc_common

from telemeter import messaging, service
from telemeter.messaging import delivery, quarantine


def _add_parsers(subparsers: Any) -> None:
    subparsers.add_parser('list', help='One line per quarantined message.')
    policy = subparsers.add_parser(
        'policy', help='Print the rabbitmqctl set_policy command of the '
                       'delivery limit and dead-letter queue.')
    policy.add_argument('--vhost', default='/')
    show = subparsers.add_parser('show', help='Headers and body.')
    show.add_argument('ids', nargs='+', metavar='ID')
    for name, text in (('replay', 'Send back where they came from.'),
                       ('purge', 'Delete for good.')):
        parser = subparsers.add_parser(name, help=text)
        parser.add_argument('ids', nargs='*', metavar='ID')
        parser.add_argument('--all', action='store_true',
                            help='Every quarantined message.')


CLI_OPTS = [cfg.SubCommandOpt('action', handler=_add_parsers,
                              title='Actions',
                              help='What to do with the quarantine queue.'),
            cfg.BoolOpt('dead-letter', default=False,
                        help='Work on [delivery] dead_letter_queue (what '
                             'the broker dead-lettered) instead of the '
                             'quarantine queue.')]


def queue_name(conf: cfg.ConfigOpts) -> str:
    """The queue the command works on."""
    policy = delivery.DeliveryPolicy.from_conf(conf)
    if conf.dead_letter or conf.action.name == 'policy':
        return conf.delivery.dead_letter_queue
    return policy.quarantine_queue


def _describe(item: quarantine.Item) -> str:
    return (f'{item.ident or "-":12}  {item.time[:19]:19}  '
            f'{item.host[:20]:20}  {item.routing_key[:28]:28}  '
            f'{item.reason[:80]}')


def _body_text(item: quarantine.Item) -> str:
    """The body as indented JSON, the oslo.messaging envelope opened;
    as bytes when it is not JSON."""
    try:
        body = json.loads(item.body)
        if isinstance(body, dict) and isinstance(body.get('oslo.message'),
                                                 str):
            body = dict(body, **{'oslo.message': json.loads(
                body['oslo.message'])})
    except ValueError:
        return repr(item.body[:4000])
    return json.dumps(body, indent=2, sort_keys=True)


def run(conf: cfg.ConfigOpts, channel: Any, out: Any = sys.stdout) -> int:
    """Carry out ``conf.action`` on the quarantine queue over ``channel``."""
    action = conf.action
    name = queue_name(conf)
    if action.name == 'policy':
        # main() has declared the dead-letter queue: the broker drops
        # what it dead-letters to a queue that does not exist.
        print(f'# dead-letter queue {name} declared; set the policy with:',
              file=out)
        print(shlex.join(['rabbitmqctl', *quarantine.set_policy_command(
            conf, vhost=action.vhost)]), file=out)
        return 0
    wanted = set(getattr(action, 'ids', None) or [])
    every = bool(getattr(action, 'all', False))
    if action.name in ('replay', 'purge') and not (wanted or every):
        print(f'telemeter-quarantine {action.name}: give IDs or --all',
              file=sys.stderr)
        return 2
    seen = set()
    done = 0
    for item in quarantine.browse(channel, name):
        if action.name == 'list':
            if not seen:
                print(f'{"ID":12}  {"QUARANTINED (UTC)":19}  {"HOST":20}  '
                      f'{"FROM ROUTING KEY":28}  REASON', file=out)
            print(_describe(item), file=out)
        elif every or item.ident in wanted:
            if action.name == 'show':
                print(f'{_describe(item)}\nexchange: {item.exchange!r}\n'
                      f'headers: {item.raw.headers}\n{_body_text(item)}\n',
                      file=out)
            elif action.name == 'replay':
                quarantine.replay(channel, item)
                done += 1
                exchange = item.exchange or '(default)'
                print(f'replayed {item.ident} to {exchange} / '
                      f'{item.routing_key}', file=out)
            else:
                quarantine.purge(channel, item)
                done += 1
                print(f'purged {item.ident}', file=out)
        seen.add(item.ident)
    if action.name == 'list':
        print(f'{len(seen)} message(s) in queue {name}', file=out)
    elif action.name in ('replay', 'purge'):
        done_as = {'replay': 'replayed', 'purge': 'purged'}[action.name]
        print(f'{done} message(s) {done_as}', file=out)
    missing = wanted - seen
    for ident in sorted(missing):
        print(f'telemeter-quarantine: no message {ident} in queue {name}',
              file=sys.stderr)
    return 1 if missing else 0


def main() -> int:
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(CLI_OPTS)
    conf = service.prepare_service(
        conf=conf,
        description='Lists, shows, replays or purges the bus messages the '
                    'daemons put in the quarantine queue ([delivery] '
                    'quarantine_queue) because they could not handle them.')
    transport = messaging.get_transport(conf)
    driver = transport._driver
    with driver._get_connection(rpc_common.PURPOSE_LISTEN) as context:
        connection = context.connection
        connection.ensure_connection()
        channel = connection.channel
        quarantine.declare(channel, queue_name(conf),
                           quarantine.queue_arguments(connection))
        # What was fetched and not acknowledged goes back to the queue
        # when the connection closes, on leaving this block.
        return run(conf, channel)
