#!/usr/bin/env python3
"""Notification agent benchmark: CPU per notification above the bus.

What it runs, in one process and without a broker: the notification
agent's real data path from the AMQP body on - the oslo.messaging envelope
decoded (``telemeter.messaging.envelope``), the batch dispatched by
priority to the agent's endpoints (every ``telemeter.notification`` handler
and the events endpoint, loaded as the agent loads them), the meter and
event definitions, the pipelines and ``file://...?json`` publishers (what
``../shared/bench/notification-peer/compare.sh`` uses) - on batches of
``--batch`` notifications, and prints the CPU microseconds per notification
(``time.process_time``, the median of ``--rounds`` rounds) and per stage.

Notifications: the peer corpus of ``compare.sh`` (``--corpus`` /
``--mix``, 69 real-shaped OpenStack notifications in a weighted mix; the
default when ``../shared/bench/notification-peer`` exists) or, without it,
the payloads of the unit tests. Definitions: ``--meters-dir`` and
``--events`` (default: the packaged ones; Ceilometer's for the peer
comparison, as ``compare.sh`` configures them).

How the hot path was found (and how to look again):

* in process: ``--profile`` runs one round under cProfile and prints the
  functions by internal and cumulative time;
* under load, in the real daemon: start ``telemeter-agent-notification``
  on a queue of pre-loaded notifications (``compare.sh`` or
  ``send.py load`` of the peer directory) and sample its worker with
  ``py-spy record -r 500 -f raw -o agent.txt --duration 10 --pid <worker
  pid>`` (the worker's title is ``telemeter-agent-notification worker(0)``);
  the raw stacks sum per function with a few lines of Python. The thread to
  read is ``batch-listener``: ``_next_batch`` is the bus, ``_handle`` the
  rest.

    .venv/bin/python tools/bench/notification_bench.py
    .venv/bin/python tools/bench/notification_bench.py --count 20000 --profile
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import datetime
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

import telemeter.cmd  # noqa: F401 (threads, not eventlet, as the daemons)

# isort: split
from oslo_config import cfg
from oslo_messaging._drivers import amqp as rpc_amqp
from oslo_messaging._drivers import common as rpc_common

from telemeter import pipeline, service
from telemeter.messaging import dispatch, envelope
from telemeter.notification import events
from telemeter.notification import service as agent

PEER = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared',
                    'bench', 'notification-peer')
PIPELINE = """---
sources:
    - name: {kind}_source
      {key}: ["*"]
      sinks: [{kind}_sink]
sinks:
    - name: {kind}_sink
      publishers: ["file://{path}?json"]
"""


def peer_corpus(corpus: str, mix: str) -> list[dict[str, Any]]:
    """The weighted mix of the peer corpus, as (priority, message) bodies'
    sources: entries with ``priority``, ``publisher_id``, ``event_type``,
    ``payload`` and ``ctxt``."""
    entries = {e['key']: e for e in json.load(open(corpus))}
    sequence = []
    for item in json.load(open(mix)):
        sequence.extend([entries[item['key']]] * int(item['weight']))
    return sequence


def test_payloads() -> list[dict[str, Any]]:
    """The unit tests' notifications (no peer corpus here)."""
    from tests.unit.notification import payloads
    made = [payloads.instance(), payloads.instance_update(),
            payloads.compute_metrics(), payloads.image(),
            payloads.image_send(), payloads.volume(), payloads.snapshot(),
            payloads.swift_request(), payloads.keystone_authenticate()]
    return [dict(n, ctxt=n['ctxt']) for n in made]


def bodies(entries: list[dict[str, Any]], count: int) -> list[bytes]:
    """AMQP bodies as oslo.messaging's driver writes them, each with its
    own message id (and timestamp one second apart)."""
    start = datetime.datetime(2026, 1, 1)
    out = []
    for i in range(count):
        entry = entries[i % len(entries)]
        message = {'message_id': str(uuid.UUID(int=i)),
                   'publisher_id': entry['publisher_id'],
                   'event_type': entry['event_type'],
                   'priority': entry.get('priority', 'INFO').upper(),
                   'payload': copy.deepcopy(entry['payload']),
                   'timestamp': str(start + datetime.timedelta(seconds=i))}
        rpc_amqp.pack_context(message, entry.get('ctxt') or {})
        out.append(json.dumps(rpc_common.serialize_msg(message)).encode())
    return out


def make_conf(args: argparse.Namespace, workdir: str) -> cfg.ConfigOpts:
    conf = service.prepare_service(argv=['notification-bench'],
                                   config_files=[], conf=cfg.ConfigOpts())
    for kind, key in (('samples', 'meters'), ('events', 'events')):
        path = os.path.join(workdir, f'{kind}-pipeline.yaml')
        with open(path, 'w') as out:
            out.write(PIPELINE.format(kind=kind, key=key, path=os.path.join(
                workdir, f'{kind}.jsonl')))
    conf.set_override('pipeline_cfg_file',
                      os.path.join(workdir, 'samples-pipeline.yaml'))
    conf.set_override('event_pipeline_cfg_file',
                      os.path.join(workdir, 'events-pipeline.yaml'))
    if args.meters_dir:
        conf.set_override('meter_definitions_dirs', [args.meters_dir],
                          group='meter')
    if args.events:
        conf.set_override('definitions_cfg_file', args.events, group='event')
    conf.set_override('ack_on_event_error', True, group='notification')
    return conf


def endpoints(conf: cfg.ConfigOpts) -> list[Any]:
    """The agent's endpoints, loaded as the agent loads them."""
    samples = agent.ReloadablePipelines(conf, pipeline.setup_pipeline)
    event_pipelines = agent.ReloadablePipelines(conf,
                                                pipeline.setup_event_pipeline)
    svc = agent.NotificationService(0, conf)
    handlers = svc._load_handlers(samples)
    return [events.EventsNotificationEndpoint(event_pipelines), *handlers]


def timed(function: Any, rounds: int) -> float:
    spent = []
    for _ in range(rounds):
        started = time.process_time()
        function()
        spent.append(time.process_time() - started)
    return statistics.median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=5000)
    parser.add_argument('--batch', type=int, default=100)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--corpus', default=os.path.join(PEER,
                                                         'corpus.json'))
    parser.add_argument('--mix', default=os.path.join(PEER, 'mix.json'))
    parser.add_argument('--meters-dir', help='meter definitions directory')
    parser.add_argument('--events', help='event definitions file')
    parser.add_argument('--profile', action='store_true')
    args = parser.parse_args()

    if os.path.exists(args.corpus):
        entries, source = peer_corpus(args.corpus, args.mix), args.corpus
    else:
        entries, source = test_payloads(), 'the unit tests\' payloads'
    raw = bodies(entries, args.count)
    workdir = tempfile.mkdtemp(prefix='notification-bench-')
    conf = make_conf(args, workdir)
    dispatcher = dispatch.BatchDispatcher(endpoints(conf))
    batches = [raw[i:i + args.batch] for i in range(0, len(raw),
                                                    args.batch)]

    def decode_only() -> None:
        for body in raw:
            envelope.decode(body)

    def agent_path() -> None:
        for batch in batches:
            dispatcher.dispatch([(*envelope.decode(body), None)
                                 for body in batch])

    print(f'{args.count} notifications from {source}, batches of '
          f'{args.batch}, median of {args.rounds} rounds, load average '
          f'{" ".join(f"{x:.2f}" for x in os.getloadavg())}')
    decode = timed(decode_only, args.rounds)
    whole = timed(agent_path, args.rounds)
    per = 1e6 / args.count
    print(f'envelope decode        {decode * per:8.1f} µs/notification')
    print(f'whole agent path       {whole * per:8.1f} µs/notification '
          f'({args.count / whole:,.0f} notifications/s of one core)')
    for kind in ('samples', 'events'):
        with open(os.path.join(workdir, f'{kind}.jsonl')) as lines:
            made = sum(1 for _ in lines) / args.rounds
        print(f'  {kind:<8} {made / args.count:5.2f} per notification')
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(agent_path)
        stats = pstats.Stats(profiler)
        stats.sort_stats('tottime').print_stats(25)
        stats.sort_stats('cumulative').print_stats(25)


if __name__ == '__main__':
    main()
