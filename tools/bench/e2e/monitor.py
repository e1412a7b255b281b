"""Watching a run once a second: the daemons ready and alive, /proc, the
table counts, the window marks, the progress lines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .console import fmt_int, say, tail
from .errors import BenchError
from .machine import cpu_pressure, loadavg, machine_cpu
from .packaged import AGENT_QUEUES, COLLECTOR_QUEUES
from .queues import queued
from .rates import recent_rate, steady_window

if TYPE_CHECKING:
    from .run import Run


def wait_ready(run: Run) -> None:
    """Until the broker shows consumers on the daemons' queues and
    each master has its workers."""
    assert run.queues is not None
    wanted = dict.fromkeys(AGENT_QUEUES + COLLECTOR_QUEUES, 1)
    workers = {'telemeter-collector': run.args.collector_workers,
               'telemeter-agent-notification': run.args.agent_workers}
    deadline = time.monotonic() + run.args.start_timeout
    while time.monotonic() < deadline:
        for daemon in run.daemons:
            if not daemon.alive():
                raise BenchError(
                    f'{daemon.name} exited with '
                    f'{daemon.process.returncode} during start-up; see '
                    f'{run.log_dir} ({daemon.name}.log / .stdout):\n'
                    + tail(daemon.log_path))
        snap = run.queues.poll() or {}
        missing = [q for q, n in wanted.items()
                   if q not in snap or snap[q].consumers < n]
        run.procs.sample()
        short = [n for n, w in workers.items()
                 if len(run.procs.pids(n)) < w + 1]
        if not missing and not short:
            return
        time.sleep(1.0)
    raise BenchError(
        f'the daemons did not start consuming within '
        f'{run.args.start_timeout:.0f} s (queues without consumer: '
        f'{missing}; daemons without all workers: {short}); see the '
        f'logs in {run.log_dir}')


def monitor_until(run: Run, done: Callable[[], bool], timeout: float,
                  phase: str) -> bool:
    """Sample /proc and the tables every second, print progress every
    ``--progress`` seconds; True once ``done()``."""
    deadline = time.monotonic() + timeout
    last_print = 0.0
    while time.monotonic() < deadline:
        sample_once(run)
        now = time.time()
        mark_window(run, now)
        if time.monotonic() - last_print >= run.args.progress:
            last_print = time.monotonic()
            print_progress(run, phase)
        if done():
            return True
        check_daemons(run)
        time.sleep(1.0)
    return False


def mark_window(run: Run, now: float) -> None:
    """Note CPU and load when the window starts and ends."""
    first = run.sender.first_time() if run.sender else None
    if first is None:
        return
    start, end = steady_window(first, run.args.warmup, run.args.duration)
    for label, at in (('window_start', start), ('window_end', end)):
        if label not in run.load and now >= at:
            run.procs.mark(label)
            run.load[label] = loadavg() + cpu_pressure()
            run.machine[label] = machine_cpu()


def sample_once(run: Run) -> None:
    assert run.counter is not None
    run.procs.sample()
    try:
        samples, events = run.counter.counts()
    except Exception as err:
        say(f'WARNING: cannot count the tables: {err}')
        return
    run.counts.append((time.time(), samples, events))


def check_daemons(run: Run) -> None:
    for daemon in run.daemons:
        if not daemon.alive():
            raise BenchError(f'{daemon.name} died (exit '
                             f'{daemon.process.returncode}); see '
                             f'{run.log_dir}:\n'
                             + tail(daemon.log_path))


def print_progress(run: Run, phase: str) -> None:
    assert run.queues is not None
    sent = run.sender.latest() if run.sender else (0, 0, 0)
    stored = run.counts[-1] if run.counts else (0, 0, 0)
    rate = recent_rate(run.counts)
    queues = ', '.join(f'{n} {total}' for n, total in sorted(
        queued(run.queues.latest()).items())) or 'all empty'
    unit = 'samples' if run.args.mode == 'polling' else 'notif'
    say(f'{phase}: sent {fmt_int(sent[2])} {unit} | stored '
        f'{fmt_int(stored[1])} samples ({fmt_int(rate)}/s last 10 s), '
        f'{fmt_int(stored[2])} events | queued: {queues}')
