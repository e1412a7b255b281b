"""One benchmark run: set-up, daemons, load, drain, analysis, tear-down
(the once-a-second watching is in ``monitor``)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import random
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from .accounting import make_id_prefix
from .console import fmt_int, say
from .daemon_conf import overriding_files, write_config
from .daemons import Daemon, dbsync
from .errors import BenchError
from .monitor import monitor_until, wait_ready
from .notification_plan import run_dryrun
from .procwatch import ProcWatch
from .queues import (
    AmqpProbe,
    QueueDepth,
    QueueWatch,
    RabbitmqctlProbe,
    queued,
)
from .rates import counts_settled, steady_window
from .report import build_report
from .sender_group import SenderGroup
from .servers import ScratchDatabase, Services, TableCounter
from .storage_scan import scan_storage


@dataclasses.dataclass
class Timeline:
    """Wall-clock marks of the run (epoch seconds)."""

    start: float = 0.0
    send_start: float = 0.0
    window_start: float = 0.0
    window_end: float = 0.0
    send_end: float = 0.0
    drained: float | None = None
    end: float = 0.0


class Run:
    """One benchmark run: set-up, load, drain, analysis, tear-down."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tag = (datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
                    + '_' + secrets.token_hex(2))
        self.workdir = Path(args.workdir or
                            Path(tempfile.gettempdir()) / 'telemeter-e2e'
                            / self.tag)
        self.log_dir = self.workdir / 'log'
        self.config = self.workdir / 'telemeter.conf'
        self.rng = random.Random()  # noqa: S311 - ids, not secrets
        self.id_prefix = make_id_prefix(self.rng)
        self.services = Services(args.services_dir, args.rabbit_port,
                                 args.pg_port)
        self.procs = ProcWatch()
        self.daemons: list[Daemon] = []
        self.db: ScratchDatabase | None = None
        self.counter: TableCounter | None = None
        self.queues: QueueWatch | None = None
        self.sender: SenderGroup | None = None
        self.counts: list[tuple[float, int, int]] = []
        self.times = Timeline()
        self.load: dict[str, str] = {}
        self.machine: dict[str, tuple[float, float]] = {}
        self.managed_broker = False
        self.dryrun: dict[str, dict[str, int]] | None = None
        self.amqp: AmqpProbe | None = None
        self.final_queues: dict[str, Any] | None = None
        self.notes: list[str] = []

    # -- set-up ----------------------------------------------------------

    def setup(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        say(f'run {self.tag}: mode {self.args.mode}, workdir {self.workdir}')
        for path in overriding_files():
            self.notes.append(f'{path} exists and replaces a packaged file')
            say(f'WARNING: {path} replaces a packaged file for the daemons')
        transport_url = self.args.transport_url
        if not transport_url:
            self.services.ensure('rabbitmq')
            transport_url = self.services.url('rabbitmq')
            self.managed_broker = True
        admin_url = self.args.database_url
        if not admin_url:
            self.services.ensure('postgresql')
            admin_url = self.services.url('postgresql')
        self.track_servers()
        self.db = ScratchDatabase(admin_url, f'telemeter_e2e_{self.tag}')
        self.db.create()
        say(f'scratch database {self.db.name} created')
        secret = secrets.token_hex(16)
        write_config(self.config, transport_url, self.db.url, self.log_dir,
                     secret, self.args.agent_workers,
                     self.args.collector_workers, self.args.conf_extra)
        self.transport_url = transport_url
        dbsync(self.config)
        self.counter = TableCounter(self.db.url)
        self.amqp = AmqpProbe(transport_url)
        self.queues = QueueWatch(self.amqp, self.args.queue_interval)
        self.check_queues_empty()
        if self.args.mode == 'notifications':
            self.dryrun = run_dryrun(
                Path(self.args.peer_dir), self.config, self.workdir,
                self.notes)

    def track_servers(self) -> None:
        """CPU and RSS of the servers of services.sh (when used): where
        the two cores go besides the daemons."""
        servers = [('rabbitmq', not self.args.transport_url),
                   ('postgresql', not self.args.database_url)]
        for service, ours in servers:
            pid = self.services.pid(service) if ours else None
            if pid is not None:
                self.procs.track(service, pid, baseline=True)

    def check_queues_empty(self) -> None:
        assert self.queues is not None
        snap = self.full_snapshot()
        if snap is None:
            snap = self.queues.poll() or {}
        busy = queued(snap)
        if busy:
            raise BenchError(
                f'the broker already holds messages: {busy}. They would '
                f'be counted as this run\'s load. Purge them (or use a '
                f'fresh broker: leave out --transport-url)')

    def full_snapshot(self) -> dict[str, QueueDepth] | None:
        """Every queue with its unacknowledged messages (rabbitmqctl), on
        a broker the bench started; None otherwise or on failure."""
        if not self.managed_broker:
            return None
        try:
            return RabbitmqctlProbe(self.services).snapshot()
        except Exception as err:
            say(f'WARNING: rabbitmqctl list_queues failed: {err}')
            return None

    # -- daemons ---------------------------------------------------------

    def start_daemons(self) -> None:
        for name in ('telemeter-collector', 'telemeter-agent-notification'):
            daemon = Daemon(name, self.config, self.log_dir)
            self.daemons.append(daemon)
            self.procs.track(name, daemon.pid)
            say(f'started {name} (master pid {daemon.pid})')
        wait_ready(self)
        self.procs.sample()
        for daemon in self.daemons:
            for record in self.procs.pids(daemon.name):
                say(f'  {daemon.name} {record.role} pid {record.pid}: '
                    f'{record.label}')
        say('profile a worker during the run with: py-spy record --pid '
            '<worker pid> -d 30 -o worker.svg')

    # -- load and drain --------------------------------------------------

    def offer_load(self) -> None:
        assert self.queues is not None and self.counter is not None
        seconds = self.args.warmup + self.args.duration
        self.queues.start()
        say(f'offering load for {seconds:.0f} s ({self.args.warmup:.0f} s '
            f'warm-up + {self.args.duration:.0f} s window), rate '
            f'{self.args.rate or "as fast as the sender can"}')
        self.sender = SenderGroup(self.args, self.config, self.id_prefix,
                                  seconds, self.log_dir)
        for index, member in enumerate(self.sender.members):
            self.procs.track(f'sender-{index}', member.process.pid)
        monitor_until(self, lambda: not self.sender.running(),
                      seconds + 120, phase='load')
        if self.sender.running():
            raise BenchError('the sender did not finish in time; see '
                             f'{self.sender.stderr_path}')
        self.sender.wait(30)
        if self.sender.final is None:
            raise BenchError('the sender failed:\n'
                             + self.sender.stderr_tail())
        first = self.sender.first_time() or time.time()
        self.times.send_start = first
        self.times.window_start, self.times.window_end = steady_window(
            first, self.args.warmup, self.args.duration)
        self.times.send_end = self.sender.latest()[0]
        say(f'sender done: {fmt_int(self.sender.final["samples"])} '
            f'{"samples" if self.args.mode == "polling" else "notifications"}'
            f' in {self.times.send_end - first:.1f} s, '
            f'{self.sender.final["errors"]} send errors')

    def drain(self) -> None:
        """Wait until every queue is empty and the tables stop growing
        for ``--settle`` seconds, or ``--drain-timeout``."""
        assert self.queues is not None
        say(f'draining (up to {self.args.drain_timeout:.0f} s; queues '
            f'empty and counts still for {self.args.settle:.0f} s)')
        started = time.time()

        def drained() -> bool:
            if self.queues.latest_at() < started:
                return False
            if queued(self.queues.latest()):
                return False
            return counts_settled(self.counts, self.args.settle)

        if monitor_until(self, drained, self.args.drain_timeout, 'drain'):
            self.times.drained = time.time()
            say(f'drained in {self.times.drained - started:.1f} s')
        else:
            say(f'WARNING: not drained after {self.args.drain_timeout:.0f}'
                f' s; what is still queued is reported')
        self.queues.stop()
        self.queues.poll()
        final = self.full_snapshot()
        if final is not None:
            self.final_queues = {n: dataclasses.asdict(q)
                                 for n, q in sorted(final.items())}
            held = queued(final)
            say(f'still queued (ready + unacked): {held or "nothing"}')

    def stop_daemons(self) -> None:
        self.procs.sample()
        for daemon in reversed(self.daemons):
            if daemon.exit_code is None:
                code = daemon.stop(self.args.stop_timeout)
                say(f'stopped {daemon.name} (exit {code})')

    # -- analysis --------------------------------------------------------

    def analyse(self) -> dict[str, Any]:
        """Read the database through the storage API and compute every
        figure."""
        say('reading the stored samples through the storage API')
        scan = scan_storage(self.config, self.id_prefix)
        return build_report(self, scan)

    # -- tear-down -------------------------------------------------------

    def cleanup(self) -> None:
        for step in (self._stop_sender, self.stop_daemons,
                     self._close_counter, self._drop_db,
                     self.services.stop_started):
            try:
                step()
            except Exception as err:
                say(f'WARNING: clean-up step {step.__name__} failed: {err}')

    def _stop_sender(self) -> None:
        if self.sender is not None:
            self.sender.stop()
        if self.queues is not None:
            self.queues.stop()
            if self.queues.is_alive():
                self.queues.join(30)
        if self.amqp is not None:
            self.amqp.close()

    def _close_counter(self) -> None:
        if self.counter is not None:
            self.counter.dispose()

    def _drop_db(self) -> None:
        if self.db is None or not self.db.created:
            return
        if self.args.keep_db:
            say(f'scratch database kept: {self.db.url}')
            return
        self.db.drop()
        say(f'scratch database {self.db.name} dropped')
