"""The two daemons under test: what each one is pre-loaded with, how its
output is counted, its configuration per run and the checks after it."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path
from typing import Any

from tools.bench.e2e.accounting import count_delivery
from tools.bench.e2e.daemon_conf import write_config
from tools.bench.e2e.daemons import Daemon, dbsync
from tools.bench.e2e.errors import BenchError
from tools.bench.e2e.notification_plan import run_dryrun
from tools.bench.e2e.servers import ScratchDatabase, TableCounter
from tools.bench.e2e.storage_scan import scan_storage

from . import agent_load, collector_load
from .console import say
from .outputs import LineCounter, bad_json_lines, truncate
from .wire import WireMessage, wire_body

PIPELINE = """---
sources:
    - name: {kind}_source
      {key}: ["*"]
      sinks: [{kind}_sink]
sinks:
    - name: {kind}_sink
      publishers: ["file://{path}?json"]
"""


class Subject:
    """A daemon under test (base): the bench fills ``messages`` /
    ``bodies`` / ``expected`` once, then each run calls ``prepare``,
    ``progress`` until done, ``verify`` and ``finish_run``."""

    daemon = ''
    queues: tuple[str, ...] = ()
    poll_interval = 0.5

    def __init__(self, args: argparse.Namespace, workdir: Path,
                 transport_url: str, secret: str, id_prefix: str) -> None:
        self.args = args
        self.workdir = workdir
        self.log_dir = workdir / 'log'
        self.transport_url = transport_url
        self.secret = secret
        self.id_prefix = id_prefix
        self.messages: list[WireMessage] = []
        self.bodies: list[bytes] = []
        self.expected: dict[str, int] = {}
        self.notes: list[str] = []
        self.running: Daemon | None = None
        self.config: Path | None = None

    def write_config(self, path: Path, workers: int, database_url: str = '',
                     extra: tuple[str, ...] = ()) -> Path:
        """The daemons' telemeter.conf with ``workers`` for this daemon;
        ``--conf-extra`` last, so it overrides the bench's own extras."""
        write_config(path, self.transport_url, database_url, self.log_dir,
                     self.secret, workers, workers,
                     [*extra, *self.args.conf_extra])
        return path

    def encode(self) -> None:
        """The AMQP bodies of ``messages`` (once: every run sends the
        same)."""
        self.bodies = [wire_body(m.message) for m in self.messages]
        size = sum(len(b) for b in self.bodies)
        say(f'{len(self.bodies):,} bodies, {size / 2**20:,.1f} MiB')

    def setup(self, base_config: Path) -> None:
        raise NotImplementedError

    def prepare(self, workers: int, index: int) -> Path:
        raise NotImplementedError

    def progress(self) -> dict[str, int]:
        raise NotImplementedError

    def verify(self) -> dict[str, Any]:
        return {}

    def finish_run(self) -> None:
        """Tear down what ``prepare`` made for the run."""

    def cleanup(self) -> None:
        """Tear down anything left (exit, Ctrl-C, error)."""
        self.finish_run()


class AgentSubject(Subject):
    """``telemeter-agent-notification`` with JSON-lines file publishers."""

    daemon = 'telemeter-agent-notification'
    queues = agent_load.AGENT_QUEUES
    poll_interval = 0.02

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.out = {'samples': self.workdir / 'out' / 'samples.jsonl',
                    'events': self.workdir / 'out' / 'events.jsonl'}
        self.counters: dict[str, LineCounter] = {}

    def own_extra(self) -> tuple[str, ...]:
        """Pipelines to the files, ack_on_event_error, definitions."""
        extra = []
        for kind, key in (('samples', 'meters'), ('events', 'events')):
            path = self.workdir / f'{kind}-pipeline.yaml'
            path.write_text(PIPELINE.format(kind=kind, key=key,
                                            path=self.out[kind]))
            option = ('pipeline_cfg_file' if kind == 'samples'
                      else 'event_pipeline_cfg_file')
            extra.append(f'DEFAULT.{option}={path}')
        extra.append('notification.ack_on_event_error=true')
        if self.args.meters_dir:
            extra.append(f'meter.meter_definitions_dirs='
                         f'{Path(self.args.meters_dir).resolve()}')
        if self.args.events:
            extra.append(f'event.definitions_cfg_file='
                         f'{Path(self.args.events).resolve()}')
        return tuple(extra)

    def setup(self, base_config: Path) -> None:
        self.write_config(base_config, 1, extra=self.own_extra())
        peer = Path(self.args.peer_dir)
        per_key = run_dryrun(peer, base_config, self.workdir, self.notes)
        if per_key is None:
            raise_dryrun(self.notes)
        self.messages, sent = agent_load.agent_messages(
            peer, self.args.n, self.args.resources, self.secret,
            self.id_prefix)
        self.expected = agent_load.expected_outputs(sent, per_key)
        say(f'expected of {self.args.n:,} notifications (telemeter dry '
            f'run): {self.expected}')
        self.compare_ceilometer(peer, sent)
        self.encode()

    def compare_ceilometer(self, peer: Path, sent: Any) -> None:
        """What Ceilometer makes of the same (the peer's counts), as a
        note."""
        path = peer / 'expected-counts.json'
        if not path.exists():
            return
        per = json.loads(path.read_text())['per_notification']
        theirs = agent_load.expected_outputs(
            {k: v for k, v in sent.items() if k in per}, per)
        self.notes.append(f'Ceilometer 27 makes {theirs} of the same '
                          f'notifications (expected-counts.json)')
        say(self.notes[-1])

    def prepare(self, workers: int, index: int) -> Path:
        for path in self.out.values():
            truncate(path)
        self.counters = {k: LineCounter(p) for k, p in self.out.items()}
        self.config = self.write_config(
            self.workdir / f'telemeter-w{workers}.conf', workers,
            extra=self.own_extra())
        return self.config

    def progress(self) -> dict[str, int]:
        return {k: c.poll() for k, c in self.counters.items()}

    def verify(self) -> dict[str, Any]:
        return {'bad_json_lines': {k: bad_json_lines(p)
                                   for k, p in self.out.items()}}


class CollectorSubject(Subject):
    """``telemeter-collector`` with the ``database`` dispatcher into a
    scratch database per run."""

    daemon = 'telemeter-collector'
    poll_interval = 0.5

    def __init__(self, *args: Any, admin_url: str, tag: str,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admin_url = admin_url
        self.tag = tag
        self.db: ScratchDatabase | None = None
        self.counter: TableCounter | None = None
        self.queues = (f'{collector_load.METERING_TOPIC}.sample',)

    def setup(self, base_config: Path) -> None:
        self.write_config(base_config, 1)
        resources = collector_load.make_resources(self.args.resources)
        self.messages = list(collector_load.collector_messages(
            self.args.n, self.args.per_message, resources, self.secret,
            self.id_prefix, socket.gethostname()))
        self.expected = {'samples': self.args.n * self.args.per_message}
        say(f'expected: {self.expected["samples"]:,} sample rows')
        self.encode()

    def prepare(self, workers: int, index: int) -> Path:
        self.db = ScratchDatabase(self.admin_url,
                                  f'telemeter_drain_{self.tag}_{index + 1}')
        self.db.create()
        say(f'scratch database {self.db.name} created')
        self.config = self.write_config(
            self.workdir / f'telemeter-w{workers}.conf', workers,
            database_url=self.db.url)
        dbsync(self.config)
        self.counter = TableCounter(self.db.url)
        return self.config

    def progress(self) -> dict[str, int]:
        assert self.counter is not None
        return {'samples': self.counter.counts()[0]}

    def verify(self) -> dict[str, Any]:
        """Lost and duplicated samples, by message id through the
        storage API."""
        assert self.config is not None
        scan = scan_storage(self.config, self.id_prefix)
        delivery = count_delivery([(0, self.expected['samples'])],
                                  scan.own_seqs)
        say(f'stored: {delivery.stored_rows:,} rows, lost '
            f'{delivery.lost}, duplicated {delivery.duplicated}, '
            f'unexpected {delivery.unexpected} (storage API scan '
            f'{scan.seconds:.1f} s)')
        return {'lost': delivery.lost, 'duplicated': delivery.duplicated,
                'unexpected': delivery.unexpected,
                'stored_rows': delivery.stored_rows}

    def finish_run(self) -> None:
        if self.counter is not None:
            self.counter.dispose()
            self.counter = None
        if self.db is not None and self.db.created:
            if self.args.keep_db:
                say(f'scratch database kept: {self.db.url}')
            else:
                self.db.drop()
                say(f'scratch database {self.db.name} dropped')
        self.db = None


def raise_dryrun(notes: list[str]) -> None:
    raise BenchError(f'telemeter-notification-dryrun failed ({notes}); '
                     f'the expected counts are unknown')
