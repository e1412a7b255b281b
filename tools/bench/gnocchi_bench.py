#!/usr/bin/env python3
"""Gnocchi benchmark: measures/s through the ``gnocchi://`` publisher
beside Gnocchi's own batch API called directly, in the same run.

Both paths write the same shape into the same Gnocchi: each call carries
``--resources`` instance resources x ``--meters`` meters x ``--points``
measures per metric (timestamps one second apart). Gnocchi's cost is
mostly per metric and request (one incoming file each), so more points
per metric raise the rate of both paths. The publisher path builds
telemeter Samples and calls ``GnocchiPublisher.publish_samples`` (mapping,
grouping, the batch request, the attribute bookkeeping); the direct path
posts a ready-made body with gnocchiclient's
``batch_resources_metrics_measures`` (the floor: Gnocchi's API and
indexer cost). Resources and metrics are created in a warm-up
call, so the rounds measure the steady state. Rounds alternate between the
two paths; the best and the median are printed with the load average
(the machine is shared: read the best as the less disturbed figure).

    tools/gnocchi/service.sh install
    TELEMETER_GNOCCHI_PORT=8141 tools/services.sh up gnocchi
    .venv/bin/python tools/bench/gnocchi_bench.py --url http://127.0.0.1:8141
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

from oslo_config import cfg

from telemeter import sample as sample_mod
from telemeter import service
from telemeter.gnocchi import client as gnocchi_client
from telemeter.gnocchi import upgrade
from telemeter.publisher import gnocchi as gnocchi_publisher
from telemeter.publisher import split_url

METERS = ['memory.usage', 'memory.resident', 'vcpus', 'cpu_util',
          'disk.usage', 'disk.allocation', 'disk.capacity', 'disk.iops',
          'disk.latency', 'memory.swap.in']


def load() -> str:
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def make_conf(url: str) -> cfg.ConfigOpts:
    conf = service.prepare_service(argv=['gnocchi-bench'], config_files=[],
                                   conf=cfg.ConfigOpts())
    gnocchi_client.register_opts(conf)
    conf.set_override('auth_mode', 'basic', 'gnocchi')
    conf.set_override('url', url, 'gnocchi')
    conf.set_override('timeout', 60, 'gnocchi')
    return conf


class Workload:
    """Resources x meters; ``step(n)`` is the n-th call's content."""

    def __init__(self, resources: int, meters: int, points: int) -> None:
        self.points = points
        self.ids = [str(uuid.uuid4()) for _ in range(resources)]
        self.meters = METERS[:meters]
        self.start = datetime.datetime.now(datetime.UTC).replace(
            microsecond=0) - datetime.timedelta(hours=1)

    def stamps(self, step: int) -> list[str]:
        first = step * self.points
        return [(self.start + datetime.timedelta(seconds=first + n)
                 ).isoformat() for n in range(self.points)]

    def samples(self, step: int) -> list[Any]:
        return [sample_mod.Sample(meter, 'gauge', 'B', step + i, 'user',
                                  'project', rid, stamp,
                                  {'display_name': f'vm-{i}',
                                   'instance_type': 'm1.small'})
                for i, rid in enumerate(self.ids) for meter in self.meters
                for stamp in self.stamps(step)]

    def body(self, step: int) -> dict:
        return {rid: {meter: {'archive_policy_name': 'telemeter-low',
                              'measures': [{'timestamp': stamp,
                                            'value': step + i}
                                           for stamp in self.stamps(step)]}
                      for meter in self.meters}
                for i, rid in enumerate(self.ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--url', default=os.environ.get(
        'TELEMETER_TEST_GNOCCHI_URL', 'http://127.0.0.1:8141'))
    parser.add_argument('--resources', type=int, default=50)
    parser.add_argument('--meters', type=int, default=10,
                        choices=range(1, len(METERS) + 1))
    parser.add_argument('--points', type=int, default=1,
                        help='measures per metric and call')
    parser.add_argument('--calls', type=int, default=20,
                        help='calls per round')
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args()

    conf = make_conf(args.url)
    upgrade.run(conf)  # archive policies and resource types
    publisher = gnocchi_publisher.GnocchiPublisher(
        conf, split_url('gnocchi://?filter_project='))
    direct = gnocchi_client.get_client(conf)
    via_publisher = Workload(args.resources, args.meters, args.points)
    via_api = Workload(args.resources, args.meters, args.points)
    metrics = args.resources * args.meters
    per_call = metrics * args.points
    print(f'gnocchi bench: {args.url}, {args.resources} resources x '
          f'{args.meters} meters x {args.points} points = {per_call} '
          f'measures per call, '
          f'{args.calls} calls per round, {args.rounds} rounds; '
          f'load {load()}')

    started = time.perf_counter()
    publisher.publish_samples(via_publisher.samples(0))
    print(f'  warm-up through the publisher (creates {args.resources} '
          f'resources, {metrics} metrics): '
          f'{time.perf_counter() - started:.2f} s')
    for rid in via_api.ids:
        direct.resource.create('instance', {'id': rid, 'user_id': 'user',
                                            'project_id': 'project'})
    direct.metric.batch_resources_metrics_measures(via_api.body(0),
                                                   create_metrics=True)

    rates: dict[str, list[float]] = {'publisher': [], 'direct': []}
    step = {'publisher': 1, 'direct': 1}
    for _ in range(args.rounds):
        for path in ('publisher', 'direct'):
            first = step[path]
            if path == 'publisher':
                batches = [via_publisher.samples(n)
                           for n in range(first, first + args.calls)]
                started = time.perf_counter()
                for batch in batches:
                    publisher.publish_samples(batch)
            else:
                bodies = [via_api.body(n)
                          for n in range(first, first + args.calls)]
                started = time.perf_counter()
                for body in bodies:
                    direct.metric.batch_resources_metrics_measures(
                        body, create_metrics=True)
            elapsed = time.perf_counter() - started
            step[path] += args.calls
            rates[path].append(args.calls * per_call / elapsed)

    stats = publisher.store.stats()
    assert stats['dropped'] == 0 and stats['backlog'] == 0, stats
    for path, label in (('publisher', 'gnocchi:// publisher'),
                        ('direct', 'gnocchiclient batch API')):
        values = rates[path]
        print(f'  {label:26s} best {max(values):9.0f} measures/s, median '
              f'{statistics.median(values):9.0f} measures/s')
    ratio = statistics.median(rates['publisher']) / statistics.median(
        rates['direct'])
    print(f'  publisher / direct (medians): {ratio:.2f}; publisher stats '
          f'{stats}; load {load()}')
    publisher.close()


if __name__ == '__main__':
    main()
