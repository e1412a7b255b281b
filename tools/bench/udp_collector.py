#!/usr/bin/env python3
"""UDP benchmark: udp:// publishers -> telemeter-collector -> storage.

Starts a real ``telemeter-collector`` with ``--workers`` workers (2) sharing
one UDP port through SO_REUSEPORT and the ``database`` dispatcher on a
fresh SQLite file (or ``--database-url``), then sends ``--rate`` samples/s
(5,000) for ``--duration`` seconds (10) on loopback through the real
``UDPPublisher`` (signed msgpack datagrams). Samples come from
``--senders`` publishers (8), i.e. 8 source ports, as from 8 agents: the
kernel spreads sources, not datagrams, over the workers' sockets.

It prints what was sent, what each worker received (the collector logs its
counters when it stops), what was stored (distinct message ids), and the
kernel's UDP receive-buffer drops on this machine during the run. The exit
status is 0 only if every sent sample was stored exactly once.

The collector runs UDP-only (its transport URL names no installed driver).

Usage::

    .venv/bin/python tools/bench/udp_collector.py
    .venv/bin/python tools/bench/udp_collector.py --rate 10000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:55440/bench

Target (issue 5): no sample lost at 5,000 samples/s for 10 s, 2 workers.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

import sqlalchemy
from oslo_config import cfg

from telemeter import publisher, sample, service

BIN = Path(sys.executable).parent
SECRET = 'bench-secret'  # noqa: S105 (a throwaway signing key)
# The pid, then the counters; each worker logs them every minute (when
# they changed) and when it stops: the last line of each pid is final.
STATS = re.compile(
    r' (\d+) INFO \S+ \[[^\]]*\] '
    r'UDP receiver: (\d+) datagrams received, (\d+) samples dispatched, '
    r'(\d+) undecodable, (\d+) rejected, (\d+) failed to store, (\d+) '
    r'dropped')


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def udp_rcvbuf_errors() -> int:
    """RcvbufErrors of /proc/net/snmp (all UDP sockets of the machine)."""
    lines = [line.split() for line in
             Path('/proc/net/snmp').read_text().splitlines()
             if line.startswith('Udp:')]
    header, values = lines[0], lines[1]
    return int(values[header.index('RcvbufErrors')])


def write_config(workdir: Path, port: int, workers: int, url: str,
                 batch_size: int) -> Path:
    path = workdir / 'telemeter.conf'
    path.write_text(textwrap.dedent(f"""\
        [DEFAULT]
        transport_url = none://
        meter_dispatchers = database
        host = udp-bench
        log_file = {workdir / 'collector.log'}
        [collector]
        workers = {workers}
        udp_batch_size = {batch_size}
        udp_address = 127.0.0.1
        udp_port = {port}
        [publisher]
        telemetry_secret = {SECRET}
        [database]
        connection = {url}
        """))
    return path


def wait_for_log(log: Path, pattern: str, count: int, timeout: float,
                 process: subprocess.Popen) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ''
        if len(re.findall(pattern, text)) >= count:
            return text
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f'collector: {pattern!r} not logged {count} times '
                     f'within {timeout}s; see {log}')


def make_publishers(port: int, senders: int) -> list:
    conf = service.prepare_service(['udp-bench'], config_files=[],
                                   conf=cfg.ConfigOpts())
    conf.set_override('telemetry_secret', SECRET, group='publisher')
    return [publisher.get_publisher(conf, f'udp://127.0.0.1:{port}',
                                    'telemeter.sample.publisher')
            for _ in range(senders)]


def send(publishers: list, rate: int, duration: float) -> tuple[set, float]:
    """Send ``rate`` samples/s for ``duration`` s in 10 ms ticks; return
    the message ids and the seconds it really took."""
    total = int(rate * duration)
    stamp = '2031-01-01T00:00:00'
    samples = [sample.Sample('bench.udp', 'gauge', 'B', float(i), 'user',
                             'project', f'resource-{i % 100}',
                             timestamp=stamp, id=str(uuid.uuid4()))
               for i in range(total)]
    per_tick = rate / 100.0
    started = time.monotonic()
    sent = 0
    tick = 0
    while sent < total:
        tick += 1
        due = min(total, int(per_tick * tick))
        while sent < due:
            publishers[sent % len(publishers)].publish_samples(
                [samples[sent]])
            sent += 1
        sleep = started + tick / 100.0 - time.monotonic()
        if sleep > 0:
            time.sleep(sleep)
    return {s.id for s in samples}, time.monotonic() - started


def stored_ids(engine: sqlalchemy.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            'SELECT count(*), count(DISTINCT message_id) FROM sample'
        ).one()
    return int(row[0]), int(row[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rate', type=int, default=5000)
    parser.add_argument('--duration', type=float, default=10.0)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--senders', type=int, default=8)
    parser.add_argument('--udp-batch-size', type=int, default=100,
                        help='[collector] udp_batch_size (1: every sample '
                             'dispatched alone, as Ceilometer did)')
    parser.add_argument('--database-url',
                        help='an empty database (default: a new SQLite '
                             'file)')
    parser.add_argument('--drain-timeout', type=float, default=120.0)
    parser.add_argument('--keep', action='store_true',
                        help='keep the work directory (config, log, DB)')
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix='udp-bench-'))
    url = args.database_url or f'sqlite:///{workdir / "bench.db"}'
    port = free_udp_port()
    config = write_config(workdir, port, args.workers, url,
                          args.udp_batch_size)
    log = workdir / 'collector.log'
    subprocess.run([str(BIN / 'telemeter-dbsync'), '--config-file',
                    str(config)], check=True, capture_output=True)
    engine = sqlalchemy.create_engine(url)
    before_drops = udp_rcvbuf_errors()
    collector = subprocess.Popen(
        [str(BIN / 'telemeter-collector'), '--config-file', str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        wait_for_log(log, 'UDP receiver bound to', args.workers, 60,
                     collector)
        publishers = make_publishers(port, args.senders)
        ids, seconds = send(publishers, args.rate, args.duration)
        for p in publishers:
            p.close()
        sent = len(ids)
        drain_started = time.monotonic()
        stored = distinct = 0
        last_change = time.monotonic()
        while time.monotonic() - drain_started < args.drain_timeout:
            count = stored_ids(engine)
            if count != (stored, distinct):
                stored, distinct = count
                last_change = time.monotonic()
            if distinct >= sent or time.monotonic() - last_change > 10:
                break
            time.sleep(0.5)
        drained = time.monotonic() - drain_started
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
        text = log.read_text()
        last = {m[0]: tuple(map(int, m[1:])) for m in STATS.findall(text)}
        workers = list(last.values())
        kernel_drops = udp_rcvbuf_errors() - before_drops
    finally:
        if collector.poll() is None:
            os.killpg(collector.pid, signal.SIGKILL)
            collector.wait(10)
        engine.dispose()

    received = sum(w[0] for w in workers)
    print(f'sent:       {sent} samples in {seconds:.2f} s '
          f'({sent / seconds:.0f}/s) from {args.senders} sockets')
    for i, w in enumerate(workers):
        print(f'worker {i}:   received {w[0]}, dispatched {w[1]}, '
              f'undecodable {w[2]}, rejected {w[3]}, failed {w[4]}, '
              f'backlog drops {w[5]}')
    print(f'received:   {received} datagrams by {len(workers)} workers')
    print(f'stored:     {stored} rows, {distinct} distinct message ids '
          f'(drained {drained:.1f} s after the last send)')
    print(f'kernel UDP receive-buffer drops during the run (whole '
          f'machine): {kernel_drops}')
    lost = sent - distinct
    duplicates = stored - distinct
    print(f'lost:       {lost}   duplicates: {duplicates}')
    if args.keep:
        print(f'work directory kept: {workdir}')
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if lost == 0 and duplicates == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
