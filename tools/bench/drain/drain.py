"""One drain run: stop, purge, pre-load, start the daemon with W workers,
time the drain from its first output to the last expected one, stop it,
check what it produced."""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time
from typing import TYPE_CHECKING, Any

from tools.bench.e2e.console import tail
from tools.bench.e2e.daemons import Daemon
from tools.bench.e2e.errors import BenchError
from tools.bench.e2e.machine import loadavg, machine_cpu
from tools.bench.e2e.procwatch import ProcWatch

from . import figures
from .console import say

if TYPE_CHECKING:
    from .subjects import Subject
    from .wire import Broker

DAEMON = 'daemon'


@dataclasses.dataclass
class Marks:
    """Monotonic times of the run and the counters read with them."""

    spawn: float = 0.0
    first: float | None = None
    first_seen: dict[str, int] = dataclasses.field(default_factory=dict)
    done: float | None = None
    last_change: float = 0.0
    machine_busy: list[float] = dataclasses.field(default_factory=list)
    bench_cpu: list[float] = dataclasses.field(default_factory=list)


def own_cpu() -> float:
    """CPU seconds of the bench process itself."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def drain_run(args: argparse.Namespace, subject: Subject, broker: Broker,
              servers: dict[str, int], index: int,
              workers: int) -> dict[str, Any]:
    """Everything one run measured (``complete`` False if the drain did
    not finish)."""
    say(f'run {index + 1}: {subject.daemon} with {workers} worker(s)')
    config = subject.prepare(workers, index)
    broker.purge(subject.queues)
    preload_s = broker.preload(subject.messages, subject.bodies,
                               subject.queues)
    say(f'pre-loaded {len(subject.messages):,} messages in '
        f'{preload_s:.1f} s; settling {args.pause:.0f} s')
    time.sleep(args.pause)
    watch = ProcWatch()
    for name, pid in servers.items():
        watch.track(name, pid, baseline=True)
    result: dict[str, Any] = {
        'run': index + 1, 'workers': workers,
        'messages': len(subject.messages), 'expected': subject.expected,
        'preload_s': round(preload_s, 2), 'load_before': loadavg()}
    daemon = Daemon(subject.daemon, config, subject.log_dir)
    subject.running = daemon
    watch.track(DAEMON, daemon.pid)
    marks = Marks(spawn=time.monotonic())
    try:
        seen = watch_drain(args, subject, daemon, watch, marks)
        time.sleep(args.settle)
        after = subject.progress()
        result['left_in_queues'] = broker.ready(subject.queues)
    finally:
        watch.sample()
        result['daemon_exit'] = daemon.stop(args.stop_timeout)
        subject.running = None
        say(f"stopped {daemon.name} (exit {result['daemon_exit']})")
    result['load_after'] = loadavg()
    result['seen'] = seen
    result['extra'] = {k: after[k] - subject.expected[k] for k in after}
    result.update(measured(subject, watch, marks, servers))
    if result['worker_processes'] != workers:
        say(f"WARNING: {result['worker_processes']} worker processes seen "
            f"for workers = {workers}")
    result.update(subject.verify())
    subject.finish_run()
    return result


def watch_drain(args: argparse.Namespace, subject: Subject, daemon: Daemon,
                watch: ProcWatch, marks: Marks) -> dict[str, int]:
    """Poll the daemon's output until all the expected is there (or
    time-out or stall); return the counts last seen."""
    last_proc = last_print = 0.0
    seen = subject.progress()
    while True:
        now = time.monotonic()
        check_alive(daemon)
        previous, seen = seen, subject.progress()
        if seen != previous:
            marks.last_change = now
        if marks.first is None and any(seen.values()):
            mark(watch, marks, 'window_start', now)
            marks.first, marks.first_seen = now, dict(seen)
            show_pids(watch)
        if all(seen[k] >= v for k, v in subject.expected.items()):
            mark(watch, marks, 'window_end', now)
            marks.done = now
            return seen
        if stalled(args, marks, now):
            say(f'WARNING: drain incomplete: {seen} of '
                f'{subject.expected} (see {daemon.log_path.parent})')
            return seen
        if now - last_proc >= args.proc_interval:
            watch.sample()
            last_proc = now
        if now - last_print >= args.progress:
            progress_line(subject, seen, marks, now)
            last_print = now
        time.sleep(subject.poll_interval)


def mark(watch: ProcWatch, marks: Marks, label: str, now: float) -> None:
    """CPU of every tracked process, of the machine and of the bench,
    now."""
    watch.sample()
    watch.mark(label)
    marks.machine_busy.append(machine_cpu()[0])
    marks.bench_cpu.append(own_cpu())


def check_alive(daemon: Daemon) -> None:
    if not daemon.alive():
        raise BenchError(f'{daemon.name} exited with '
                         f'{daemon.process.returncode}; see '
                         f'{daemon.log_path.parent}:\n'
                         + tail(daemon.log_path))


def stalled(args: argparse.Namespace, marks: Marks, now: float) -> bool:
    """No first output within ``--start-timeout``, or no progress for
    ``--stall`` seconds, or longer than ``--timeout`` in all."""
    if now - marks.spawn > args.timeout:
        return True
    if marks.first is None:
        return now - marks.spawn > args.start_timeout
    return now - marks.last_change > args.stall


def show_pids(watch: ProcWatch) -> None:
    """The daemon's processes, for py-spy."""
    say('first output; processes (py-spy record --pid <worker pid> -r 500 '
        '-d 10 -o worker.svg):')
    for record in watch.pids(DAEMON):
        say(f'  {record.role} {record.pid}: {record.label[:70]}')


def progress_line(subject: Subject, seen: dict[str, int], marks: Marks,
                  now: float) -> None:
    counts = ', '.join(f'{k} {seen[k]:,}/{subject.expected[k]:,}'
                       for k in subject.expected)
    if marks.first is None:
        say(f'  waiting for the first output '
            f'({now - marks.spawn:.0f} s since start)')
        return
    say(f'  {counts} ({now - marks.first:.1f} s into the drain)')


def measured(subject: Subject, watch: ProcWatch, marks: Marks,
             servers: dict[str, int]) -> dict[str, Any]:
    """Rates, CPU, RSS and the servers' CPU of a run."""
    summary = watch.summary()
    daemon = summary.get(DAEMON, {})
    result: dict[str, Any] = memory_figures(daemon)
    result['daemon_cpu_total_s'] = daemon.get('cpu_s')
    result['complete'] = marks.done is not None
    if marks.first is None or marks.done is None:
        return result
    drain = marks.done - marks.first
    result.update(figures.drain_rates(
        len(subject.messages), subject.expected, marks.first_seen,
        marks.spawn, marks.first, marks.done))
    cpu = daemon.get('cpu_s_window', 0.0)
    result.update(figures.cpu_figures(cpu, drain,
                                      result['messages_in_window']))
    servers_cpu = {}
    for name in servers:
        servers_cpu[name] = summary.get(name, {}).get('cpu_s_window')
        result[f'{name}_cpu_drain_s'] = servers_cpu[name]
    bench = marks.bench_cpu[1] - marks.bench_cpu[0]
    busy = marks.machine_busy[1] - marks.machine_busy[0]
    result['bench_cpu_drain_s'] = round(bench, 2)
    result['machine_busy_cores'] = round(busy / drain, 2)
    result['other_cores'] = figures.other_cores(
        busy, [cpu, bench, *(v or 0.0 for v in servers_cpu.values())],
        drain)
    return result


def memory_figures(daemon: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS (VmHWM) of each of the daemon's processes."""
    processes = daemon.get('processes', [])
    workers = [p['peak_hwm_mb'] for p in processes if p['role'] == 'worker']
    master = [p['peak_hwm_mb'] for p in processes if p['role'] == 'master']
    return {
        'worker_processes': len(workers),
        'processes': [{'role': p['role'], 'pid': p['pid'],
                       'hwm_mb': round(p['peak_hwm_mb'], 1)}
                      for p in processes],
        'master_hwm_mb': round(master[0], 1) if master else None,
        'max_worker_hwm_mb': round(max(workers), 1) if workers else None,
        'tree_peak_rss_mb': daemon.get('peak_rss_mb_tree'),
    }
