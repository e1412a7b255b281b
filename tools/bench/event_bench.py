#!/usr/bin/env python3
"""Event write benchmark: the collector's database dispatcher path.

What is measured: ``EventDatabaseDispatcher.record_events(batch)`` - the
conversion of the event dicts as they come off the bus and the storage
driver's ``record_events`` - for batches of ``--batch-sizes`` events, into
a fresh event schema per backend and batch size.

How the events are made: the packaged event definitions
(``event_definitions.yaml``) turn a mix of OpenStack-shaped notifications
(nova instance create / update / exists, cinder volume / snapshot /
backup, glance image upload, keystone authenticate: 9 to 27 traits each,
about 18 on average, text, integer, float and datetime traits) into
events, which are serialised and signed as the ``notifier://`` event
publisher sends them (``publisher.utils.message_from_event``). Every copy
gets its own ``message_id`` and ``generated`` time, so nothing is a
duplicate, and is a fresh dict (the dispatcher may convert in place).

How it is timed: the dicts of all batches are built first; then each
batch is handed to the dispatcher and the wall time of the calls is
summed (``time.perf_counter``); events/s and traits/s are the totals over
that sum. One warm-up batch (its own message ids) goes first, so
connecting and creating the event type rows are not counted. The
``redelivered`` line stores the first ``--batch-sizes`` batch a second
time (all duplicates, as after a requeue) and times that. The load
average (``os.getloadavg``) is printed with every figure: the benchmark
machine is shared, so read the figures with it.

Profiling: ``--profile`` runs the largest batch size once more under
``cProfile`` (enabled during the timed calls only) and prints the 25
functions with the most cumulative time and the 25 with the most own
time, which says whether the time goes into conversion, SQLAlchemy statement
building, the driver or waiting for the server.

Usage (PostgreSQL and MariaDB: a scratch database is created on the
server and dropped afterwards; SQLite: a file in a temporary directory)::

    .venv/bin/python tools/bench/event_bench.py --backend sqlite
    .venv/bin/python tools/bench/event_bench.py --backend postgresql \\
        --server-url postgresql+psycopg://postgres@127.0.0.1:55490/postgres
    .venv/bin/python tools/bench/event_bench.py --backend mysql \\
        --server-url mysql+pymysql://root@127.0.0.1:53390/test

Figures (events/s; median of 3 runs alternating this script over the
code before the batched writer - commit c759dde - and after it, on the
shared 2-core machine, load average 1.2 to 3.1; 18.2 traits an event; the
servers of ``tools/services.sh``):

==========  =========  ==========  =========  ==========
backend     before     before      after      after
            batch 100  batch 1000  batch 100  batch 1000
==========  =========  ==========  =========  ==========
PostgreSQL  458        423         7,394      7,429
MariaDB     575        601         3,184      3,139
SQLite      1,274      1,244       9,967      8,823
==========  =========  ==========  =========  ==========

Without migration ``event_002`` (trait foreign keys kept) PostgreSQL made
about 3,000 events/s in batches of 100 and 3,750-4,170 in batches of
1,000 (load about 2); MariaDB and SQLite about the same as with it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import logging
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

from oslo_config import cfg
from stevedore import extension

from telemeter import service, storage
from telemeter.dispatcher import database
from telemeter.notification import event_converter
from telemeter.publisher import utils
from tests.functional.fixtures import databases
from tests.unit.notification import payloads

BASE = datetime.datetime(2026, 1, 1)


def _templates(conf: cfg.ConfigOpts) -> list[dict]:
    """Serialised events of the notification mix (one of each kind)."""
    plugins = extension.ExtensionManager('telemeter.event.trait_plugin')
    converter = event_converter.setup_events(conf, plugins)
    notifications = (
        payloads.instance(), payloads.instance_update(),
        payloads.instance_exists(), payloads.volume(), payloads.snapshot(),
        payloads.backup(), payloads.image(),
        payloads.keystone_authenticate())
    templates = []
    for notification in notifications:
        event = converter.to_event('info', payloads.message(notification))
        if event is None:
            raise RuntimeError(f'no event for {notification["event_type"]}')
        templates.append(utils.message_from_event(event, 'secret'))
    return templates


def make_batches(templates: list[dict], count: int,
                 batch_size: int) -> list[list[dict]]:
    """``count`` event dicts in batches of ``batch_size``, round-robin
    over the templates, each with its own message id and time."""
    batches: list[list[dict]] = []
    batch: list[dict] = []
    for index in range(count):
        template = templates[index % len(templates)]
        event = dict(template, message_id=str(uuid.uuid4()),
                     generated=(BASE + datetime.timedelta(
                         milliseconds=index)).isoformat(),
                     traits=[list(trait) for trait in template['traits']])
        batch.append(event)
        if len(batch) == batch_size:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)
    return batches


def _copy(batch: list[dict]) -> list[dict]:
    return [dict(event, traits=[list(t) for t in event['traits']])
            for event in batch]


def _load() -> str:
    return '/'.join(f'{value:.2f}' for value in os.getloadavg())


@contextlib.contextmanager
def scratch_url(backend: str, server_url: str | None) -> Iterator[str]:
    """A fresh database URL for ``backend``, removed afterwards."""
    if backend == 'sqlite':
        with tempfile.TemporaryDirectory() as tmp:
            yield f'sqlite:///{tmp}/events.db'
        return
    if not server_url:
        raise SystemExit(f'--server-url is needed for {backend}')
    name, url = databases.create_database(server_url, 'event_bench')
    try:
        yield url
    finally:
        databases.drop_database(server_url, name)


def _dispatcher(conf: cfg.ConfigOpts, url: str
                ) -> database.EventDatabaseDispatcher:
    conf.set_override('event_connection', url, group='database')
    dispatcher = database.EventDatabaseDispatcher(conf)
    dispatcher.conn.clear()
    dispatcher.conn.upgrade()
    return dispatcher


def run(conf: cfg.ConfigOpts, url: str, templates: list[dict],
        count: int, batch_size: int,
        profiler: cProfile.Profile | None = None
        ) -> tuple[float, int, float]:
    """Store ``count`` events in batches; return (seconds, traits,
    redelivered-batch seconds). ``profiler`` runs during the timed calls
    only."""
    dispatcher = _dispatcher(conf, url)
    warm_up, = make_batches(templates, batch_size, batch_size)
    dispatcher.record_events(warm_up)
    batches = make_batches(templates, count, batch_size)
    traits = sum(len(event['traits']) for batch in batches
                 for event in batch)
    first = _copy(batches[0])
    elapsed = 0.0
    for batch in batches:
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        dispatcher.record_events(batch)
        elapsed += time.perf_counter() - started
        if profiler:
            profiler.disable()
    started = time.perf_counter()
    dispatcher.record_events(first)
    redelivered = time.perf_counter() - started
    stored = len(dispatcher.conn.get_events(storage.EventFilter()))
    if stored != count + batch_size:
        raise RuntimeError(f'{stored} events stored, expected '
                           f'{count + batch_size}')
    dispatcher.conn.dispose()
    return elapsed, traits, redelivered


def profile(conf: cfg.ConfigOpts, url: str, templates: list[dict],
            count: int, batch_size: int) -> None:
    """Print the 25 most expensive functions of the timed calls of one
    run, by cumulative and by own time."""
    profiler = cProfile.Profile()
    run(conf, url, templates, count, batch_size, profiler)
    stats = pstats.Stats(profiler)
    stats.sort_stats('cumulative').print_stats(25)
    stats.sort_stats('tottime').print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backend', default='sqlite',
                        choices=['sqlite', 'postgresql', 'mysql'])
    parser.add_argument('--server-url',
                        help='server URL (PostgreSQL / MariaDB)')
    parser.add_argument('--events', type=int, default=5000,
                        help='events per batch size (default 5000)')
    parser.add_argument('--batch-sizes', default='100,1000',
                        help='comma-separated batch sizes')
    parser.add_argument('--profile', action='store_true',
                        help='profile one more run of the largest size')
    args = parser.parse_args()

    conf = service.prepare_service(argv=['bench'], config_files=[],
                                   conf=cfg.ConfigOpts())
    # One INFO line per duplicate would time the log handler.
    logging.getLogger('telemeter').setLevel(logging.WARNING)
    templates = _templates(conf)
    sizes = [int(size) for size in args.batch_sizes.split(',')]
    average = (sum(len(t['traits']) for t in templates) / len(templates))
    print(f'{args.backend}: {args.events} events per batch size, '
          f'{len(templates)} kinds, {average:.1f} traits per event')
    with scratch_url(args.backend, args.server_url) as url:
        for size in sizes:
            before = _load()
            seconds, traits, redelivered = run(conf, url, templates,
                                               args.events, size)
            print(f'batch {size:5d}: {args.events / seconds:9.0f} events/s '
                  f'{traits / seconds:10.0f} traits/s; redelivered batch '
                  f'{size / redelivered:9.0f} events/s  (load {before} -> '
                  f'{_load()})', flush=True)
        if args.profile:
            profile(conf, url, templates, args.events, max(sizes))


if __name__ == '__main__':
    main()
