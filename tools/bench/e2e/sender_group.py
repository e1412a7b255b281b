"""The bench's side of the sender processes: started, their JSON lines
read, several seen as one."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .accounting import merge_ranges
from .console import tail
from .rates import counter_at

# The entry point the sender processes run (``e2e_bench.py _sender``).
BENCH_SCRIPT = Path(__file__).resolve().parents[1] / 'e2e_bench.py'


class SenderProcess:
    """The load process and what it reports (one JSON line a second)."""

    def __init__(self, args: argparse.Namespace, config: Path,
                 id_prefix: str, seconds: float, log_dir: Path,
                 index: int = 0) -> None:
        command = [sys.executable, '-W', 'ignore', str(BENCH_SCRIPT),
                   '_sender', '--mode', args.mode, '--config-file',
                   str(config), '--seconds', str(seconds),
                   '--id-prefix', id_prefix,
                   '--instances', str(args.instances),
                   '--batch', str(args.batch),
                   '--peer-dir', str(args.peer_dir),
                   '--resources', str(args.instances),
                   '--index', str(index), '--senders', str(args.senders)]
        if args.rate:
            command += ['--rate', str(args.rate / args.senders)]
        self.stderr_path = log_dir / f'sender-{index}.stderr'
        self._stderr = open(self.stderr_path, 'wb')
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr,
            stdin=subprocess.DEVNULL, text=True)
        self.series: list[tuple[float, float, float]] = []
        self.final: dict[str, Any] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                status = json.loads(line)
            except ValueError:
                continue
            self.series.append((status['t'], status['notifications'],
                                status['samples']))
            if status.get('done'):
                self.final = status

    def running(self) -> bool:
        return self.process.poll() is None

    def first_time(self) -> float | None:
        return self.series[0][0] if self.series else None

    def latest(self) -> tuple[float, float, float]:
        return self.series[-1] if self.series else (time.time(), 0, 0)

    def wait(self, timeout: float) -> None:
        self.process.wait(timeout)
        self._reader.join(10)

    def stop(self) -> None:
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if not self._stderr.closed:
            self._stderr.close()

    def stderr_tail(self, lines: int = 20) -> str:
        return tail(self.stderr_path, lines)


def merge_series(all_series: Sequence[Sequence[tuple[float, ...]]]
                 ) -> list[tuple[float, ...]]:
    """Sum of several senders' cumulative counters, at every time any
    of them reported."""
    times = sorted({point[0] for series in all_series for point in series})
    width = max((len(p) for series in all_series for p in series), default=1)
    merged = []
    for when in times:
        values = [sum(counter_at([(p[0], p[i]) for p in series], when)
                      for series in all_series if series)
                  for i in range(1, width)]
        merged.append((when, *values))
    return merged


def merge_finals(finals: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One final report from several senders' (counts summed, id ranges
    joined; their instances are disjoint, so resources add up)."""
    merged: dict[str, Any] = {'sent_ranges': []}
    for final in finals:
        for key, value in final.items():
            if key in ('notifications', 'samples', 'errors'):
                merged[key] = merged.get(key, 0) + value
            elif key == 'sent_ranges':
                merged[key].extend(tuple(r) for r in value)
            elif isinstance(value, dict):
                counter = merged.setdefault(key, {})
                for name, count in value.items():
                    counter[name] = counter.get(name, 0) + count
    merged['sent_ranges'] = merge_ranges(merged['sent_ranges'])
    return merged


class SenderGroup:
    """``--senders`` sender processes, seen as one."""

    def __init__(self, args: argparse.Namespace, config: Path,
                 id_prefix: str, seconds: float, log_dir: Path) -> None:
        self.members = [SenderProcess(args, config, id_prefix, seconds,
                                      log_dir, index)
                        for index in range(args.senders)]
        self.stderr_path = self.members[0].stderr_path

    def running(self) -> bool:
        return any(m.running() for m in self.members)

    def wait(self, timeout: float) -> None:
        for member in self.members:
            member.wait(timeout)

    @property
    def final(self) -> dict[str, Any] | None:
        finals = [m.final for m in self.members]
        if any(f is None for f in finals):
            return None
        return merge_finals(finals)

    @property
    def series(self) -> list[tuple[float, ...]]:
        return merge_series([list(m.series) for m in self.members])

    def first_time(self) -> float | None:
        firsts = [m.first_time() for m in self.members]
        known = [f for f in firsts if f is not None]
        return min(known) if known else None

    def latest(self) -> tuple[float, ...]:
        latest = [m.latest() for m in self.members]
        return (max(p[0] for p in latest),
                *(sum(p[i] for p in latest) for i in (1, 2)))

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def stderr_tail(self) -> str:
        return '\n'.join(m.stderr_tail() for m in self.members)
