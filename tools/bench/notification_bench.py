#!/usr/bin/env python3
"""Notification agent benchmark: the in-process cost of one notification.

Runs, without a broker, the packaged meter definitions (the ``meter``
handler), the packaged event definitions and the partitioning router over a
mix of notifications shaped like OpenStack's (nova instance, compute
metrics, glance, cinder, swift, keystone), ``--count`` notifications per
stage, and prints notifications/s and samples or events/s per stage (median
of ``--rounds``). No target is set by the issue; the figures say how much
of an agent's time goes into definitions rather than the bus.

    .venv/bin/python tools/bench/notification_bench.py --count 5000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

from oslo_config import cfg
from stevedore import extension

from telemeter import sample, service
from telemeter.notification import event_converter, meters, pipe
from tests.unit.notification import payloads


def _mix() -> list[dict]:
    return [payloads.message(n) for n in (
        payloads.instance(), payloads.instance_update(),
        payloads.compute_metrics(), payloads.image(), payloads.image_send(),
        payloads.volume(), payloads.snapshot(), payloads.swift_request(),
        payloads.keystone_authenticate())]


def _time(function, rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=3000)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()

    conf = service.prepare_service(argv=['bench'], config_files=[],
                                   conf=cfg.ConfigOpts())
    conf.set_override('meter_definitions_dirs', [meters.PACKAGED_METERS_DIR],
                      group='meter')
    plugins = extension.ExtensionManager('telemeter.event.trait_plugin')
    definitions, _errors = meters.load_definitions(conf, plugins)
    converter = event_converter.setup_events(conf, plugins)
    mix = _mix()
    batch = [mix[i % len(mix)] for i in range(args.count)]

    produced = {'samples': 0, 'events': 0}

    def meter_stage():
        count = 0
        for message in batch:
            for definition in definitions:
                if definition.match_type(message['event_type']):
                    for kwargs in definition.to_samples(message):
                        sample.Sample.from_notification(**kwargs)
                        count += 1
        produced['samples'] = count

    def event_stage():
        count = 0
        for message in batch:
            if converter.to_event('info', message) is not None:
                count += 1
        produced['events'] = count

    samples = [sample.Sample('cpu', 'cumulative', 'ns', i, 'u', 'p',
                             f'instance-{i % 500}',
                             timestamp='2031-01-01T00:00:00')
               for i in range(args.count)]

    def route_stage():
        for s in samples:
            pipe.queue_index({'resource_id': s.resource_id},
                             ['resource_id'], 10)

    print(f'{len(definitions)} meter definitions, '
          f'{len(converter.definitions)} event definitions, '
          f'{args.count} notifications of {len(mix)} kinds, median of '
          f'{args.rounds} rounds')
    seconds = _time(meter_stage, args.rounds)
    print(f'meters.d:        {args.count / seconds:10.0f} notifications/s, '
          f'{produced["samples"] / seconds:10.0f} samples/s')
    seconds = _time(event_stage, args.rounds)
    print(f'event defs:      {args.count / seconds:10.0f} notifications/s, '
          f'{produced["events"] / seconds:10.0f} events/s')
    seconds = _time(route_stage, args.rounds)
    print(f'queue choice:    {args.count / seconds:10.0f} samples/s '
          f'(MD5 of the grouping keys)')


if __name__ == '__main__':
    main()
