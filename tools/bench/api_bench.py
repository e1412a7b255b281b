#!/usr/bin/env python3
"""telemeter-api benchmark: statistics and meter-list through the HTTP API.

Writes ``--samples`` samples (default 1,000,000) of ``--meters`` meters
(default 1, so one meter holds them all) over ``--resources`` resources
(1,000), 10 minutes apart per resource (1,000,000 samples span 1,000 x
10 min, ~7 days), into a scratch PostgreSQL database through
``telemeter.storage`` (``record_metering_data_batch``), starts
``telemeter-api`` (noauth, one worker) on it and times, best of
``--repeat`` HTTP requests each:

* ``GET /v2/meters/meter-0/statistics?period=3600`` (one result per hour);
* ``GET /v2/meters/meter-0/statistics?groupby=resource_id`` (one result
  per resource);
* ``GET /v2/meters?limit=1000`` (meter-list: one meter on 1,000
  resources).

The target is < 1 s each. Every figure is printed with the load average
(the machine is shared). Usage::

    .venv/bin/python tools/bench/api_bench.py \\
        --server-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres

``--url`` times the requests again on a database loaded before.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / 'tools' / 'bench'), str(REPO)]

import requests  # noqa: E402
import storage_bench_data as data  # noqa: E402  tools/bench
from oslo_config import cfg  # noqa: E402

from telemeter import service, storage  # noqa: E402
from tests.functional import api_server  # noqa: E402
from tests.functional.fixtures import databases  # noqa: E402


def _load() -> str:
    return ' '.join(f'{value:.2f}' for value in os.getloadavg())


def write(url: str, args: argparse.Namespace) -> None:
    conf = service.prepare_service(argv=['api-bench'], config_files=[],
                                   conf=cfg.ConfigOpts())
    conn = storage.get_connection(conf, url)
    conn.upgrade()
    started = time.perf_counter()
    total = 0
    for batch in data.timed_batches(args.samples, args.resources,
                                    args.meters, args.batch):
        conn.record_metering_data_batch(batch)
        total += len(batch)
    seconds = time.perf_counter() - started
    print(f'wrote {total:,} samples in {seconds:.1f} s (load {_load()})',
          flush=True)
    analyse = getattr(conn, 'analyse', None)
    if analyse:
        analyse()
    conn.dispose()


def timed(base: str, path: str, repeat: int) -> float:
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = requests.get(base + path, timeout=300)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        size = len(response.json())
    best = min(times)
    verdict = 'ok' if best < 1.0 else 'OVER 1 s'
    print(f'GET {path:<55} {best:6.3f} s (worst {max(times):.3f} s, '
          f'{size} results, load {_load()}) {verdict}', flush=True)
    return best


def run(url: str, args: argparse.Namespace) -> None:
    if not args.url:
        write(url, args)
    with tempfile.TemporaryDirectory() as tmp:
        server = api_server.ApiServer(
            Path(tmp), url, extra_conf='[api]\nmax_api_return_limit = '
                                       f'{max(10000, args.resources)}\n')
        try:
            server.wait_ready()
            for path in ('/v2/meters/meter-0/statistics?period=3600',
                         '/v2/meters/meter-0/statistics?groupby=resource_id',
                         f'/v2/meters?limit={args.resources}'):
                timed(server.url, path, args.repeat)
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--server-url',
                        default=os.environ.get(
                            'TELEMETER_TEST_POSTGRESQL_URL',
                            'postgresql+psycopg://postgres@127.0.0.1:55432/'
                            'postgres'),
                        help='PostgreSQL admin URL; a scratch database is '
                             'created on it and dropped afterwards')
    parser.add_argument('--samples', type=int, default=1_000_000)
    parser.add_argument('--resources', type=int, default=1000)
    parser.add_argument('--meters', type=int, default=1)
    parser.add_argument('--batch', type=int, default=1000)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--url', help='time the requests on this database, '
                                      'loaded before (nothing is written '
                                      'or dropped)')
    args = parser.parse_args()
    if args.url:
        run(args.url, args)
        return
    name, url = databases.create_database(args.server_url, 'api_bench')
    try:
        run(url, args)
    finally:
        databases.drop_database(args.server_url, name)


if __name__ == '__main__':
    main()
