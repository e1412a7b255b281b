#!/usr/bin/env python3
"""Storage benchmark: batch writes and the main queries on a large table.

Loads ``--samples`` samples (default 1,000,000) spread over ``--resources``
resources (1,000) and ``--meters`` meters (10) into a fresh metering schema
through the storage driver's ``record_metering_data_batch`` and prints:

* the batch write rate (samples/s, Python preparation included);
* the time of ``get_meter_statistics`` for one meter with ``period=3600``,
  without and with ``groupby=['resource_id']``;
* the time of ``get_samples(limit=100)`` for one resource;
* (extra) ``get_resources()``, ``get_meters()`` and ``query_samples``.

Samples of one (resource, meter) pair are 10 minutes apart, so 1,000,000
samples span 100 x 10 min = 16.5 hours (17 one-hour buckets).

Usage (PostgreSQL: a scratch database is created on the server and dropped
afterwards; SQLite: a file in a temporary directory)::

    .venv/bin/python tools/bench/storage_bench.py --backend sqlite
    .venv/bin/python tools/bench/storage_bench.py \\
        --backend postgresql \\
        --server-url postgresql+psycopg://postgres@127.0.0.1:55440/postgres

Targets (issue 6): >= 30,000 samples/s into PostgreSQL, each query < 1 s.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

from oslo_config import cfg

from telemeter import service, storage
from tests.functional.fixtures import databases

BASE = datetime.datetime(2026, 1, 1)
STEP = datetime.timedelta(minutes=10)


def make_batches(samples: int, resources: int, meters: int,
                 batch_size: int):
    """Yield lists of metering dicts in time order, round-robin over
    resources and meters (as a collector receives them)."""
    per_pair = max(1, samples // (resources * meters))
    batch = []
    produced = 0
    metadata = [{'display_name': f'vm-{r}', 'flavor': {'name': 'm1.small',
                 'vcpus': 1}, 'instance_type': f'type-{r % 4}',
                 'host': f'host-{r % 20}'} for r in range(resources)]
    for step in range(per_pair):
        when = BASE + step * STEP
        for r in range(resources):
            for m in range(meters):
                batch.append({
                    'counter_name': f'meter-{m}',
                    'counter_type': 'gauge',
                    'counter_unit': 'unit',
                    'counter_volume': float((step * 7 + r + m) % 100),
                    'user_id': f'user-{r % 50}',
                    'project_id': f'project-{r % 10}',
                    'resource_id': f'resource-{r}',
                    'timestamp': when + datetime.timedelta(seconds=m),
                    'resource_metadata': metadata[r],
                    'source': 'openstack',
                    'message_id': str(uuid.uuid4()),
                    'message_signature': 'x' * 64,
                    'monotonic_time': None,
                })
                produced += 1
                if len(batch) == batch_size:
                    yield batch
                    batch = []
                if produced == samples:
                    if batch:
                        yield batch
                    return
    if batch:
        yield batch


def _load() -> str:
    return ' '.join(f'{value:.2f}' for value in os.getloadavg())


def timed(label: str, func, repeat: int = 3):
    """Run ``func`` ``repeat`` times; print and return the times."""
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    size = len(result) if hasattr(result, '__len__') else '?'
    print(f'{label:<58} {min(times):7.3f} s (median '
          f'{statistics.median(times):.3f} s, {size} results)', flush=True)
    return times


def run(url: str, args: argparse.Namespace) -> None:
    conf = service.prepare_service(argv=['storage-bench'], config_files=[],
                                   conf=cfg.ConfigOpts())
    load_at_start = _load()
    conn = storage.get_connection(conf, url)
    conn.clear()
    conn.upgrade()
    total = 0
    write_time = 0.0
    generate_time = 0.0
    started = time.perf_counter()
    gen = make_batches(args.samples, args.resources, args.meters, args.batch)
    while True:
        t0 = time.perf_counter()
        batch = next(gen, None)
        t1 = time.perf_counter()
        generate_time += t1 - t0
        if batch is None:
            break
        conn.record_metering_data_batch(batch)
        write_time += time.perf_counter() - t1
        total += len(batch)
        if args.progress and total % (args.batch * 100) == 0:
            print(f'  {total} samples, {total / write_time:,.0f}/s',
                  flush=True)
    print(f'backend: {url.split("@")[-1] if "@" in url else url}; '
          f'load average at start {load_at_start}, now '
          f'{_load()} (2 cores: figures from a busy machine are lower)')
    print(f'wrote {total:,} samples in batches of {args.batch} in '
          f'{write_time:.1f} s: {total / write_time:,.0f} samples/s '
          f'(generating the dicts took another {generate_time:.1f} s, '
          f'wall {time.perf_counter() - started:.1f} s)', flush=True)
    analyse = getattr(conn, 'analyse', None)
    if analyse:
        analyse()
    flt = storage.SampleFilter
    timed("get_meter_statistics(meter-3, period=3600)",
          lambda: conn.get_meter_statistics(flt(meter='meter-3'),
                                            period=3600))
    timed("get_meter_statistics(meter-3, period=3600, "
          "groupby=['resource_id'])",
          lambda: conn.get_meter_statistics(flt(meter='meter-3'),
                                            period=3600,
                                            groupby=['resource_id']))
    timed('get_samples(resource=resource-42, limit=100)',
          lambda: conn.get_samples(flt(resource='resource-42'), limit=100))
    if not args.skip_extra:
        timed('get_meter_statistics(meter-3) no period',
              lambda: conn.get_meter_statistics(flt(meter='meter-3')))
        timed('get_samples(meter=meter-3, limit=100)',
              lambda: conn.get_samples(flt(meter='meter-3'), limit=100))
        timed('query_samples(and(=resource, >volume), limit=100)',
              lambda: conn.query_samples(
                  {'and': [{'=': {'resource_id': 'resource-7'}},
                           {'>': {'counter_volume': 50}}]}, limit=100))
        timed('get_resources()', lambda: conn.get_resources(), repeat=1)
        timed('get_resources(resource=resource-42)',
              lambda: conn.get_resources(resource='resource-42'))
        timed('get_meters(resource=resource-42)',
              lambda: conn.get_meters(resource='resource-42'))
        timed('get_meters(unique=True)',
              lambda: conn.get_meters(unique=True), repeat=1)
    if not args.keep:
        conn.clear()
    dispose = getattr(conn, 'dispose', None)
    if dispose:
        dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--backend', choices=['sqlite', 'postgresql',
                                              'mysql', 'url'],
                        default='sqlite')
    parser.add_argument('--server-url',
                        default=os.environ.get(
                            'TELEMETER_TEST_POSTGRESQL_URL',
                            'postgresql+psycopg://postgres@127.0.0.1:55432/'
                            'postgres'),
                        help='server admin URL (postgresql/mysql); a '
                             'scratch database is created on it')
    parser.add_argument('--url', help='with --backend url: use this '
                                      'database as is (its metering tables '
                                      'are dropped)')
    parser.add_argument('--samples', type=int, default=1_000_000)
    parser.add_argument('--resources', type=int, default=1000)
    parser.add_argument('--meters', type=int, default=10)
    parser.add_argument('--batch', type=int, default=1000)
    parser.add_argument('--progress', action='store_true')
    parser.add_argument('--skip-extra', action='store_true',
                        help='only the three required queries')
    parser.add_argument('--keep', action='store_true',
                        help='keep the data (url backend only)')
    args = parser.parse_args()
    if args.backend == 'url':
        run(args.url, args)
    elif args.backend == 'sqlite':
        with tempfile.TemporaryDirectory() as tmp:
            run(f'sqlite:///{tmp}/bench.db', args)
    else:
        name, url = databases.create_database(args.server_url,
                                              'storage_bench')
        try:
            run(url, args)
        finally:
            databases.drop_database(args.server_url, name)


if __name__ == '__main__':
    main()
