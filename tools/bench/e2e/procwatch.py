"""RSS and CPU seconds of every process of the daemons, senders and
servers the bench watches, from /proc."""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
from collections.abc import Iterable
from typing import Any

from .machine import CLK_TCK


@dataclasses.dataclass
class ProcSample:
    """One process as /proc shows it."""

    pid: int
    ppid: int
    label: str
    rss_mb: float
    hwm_mb: float
    cpu_s: float


def stat_fields(stat: str) -> list[str]:
    """The fields of a /proc/<pid>/stat line after the command name
    (which may hold spaces and parentheses): state, ppid, ..."""
    return stat[stat.rindex(')') + 2:].split()


def read_proc(pid: int) -> ProcSample | None:
    """RSS, peak RSS (VmHWM), CPU seconds and command line of ``pid``."""
    try:
        with open(f'/proc/{pid}/stat') as stream:
            stat = stream.read()
        with open(f'/proc/{pid}/status') as stream:
            status = stream.read()
        with open(f'/proc/{pid}/cmdline', 'rb') as stream:
            cmdline = stream.read()
    except OSError:
        return None
    fields = stat_fields(stat)
    memory = {}
    for line in status.splitlines():
        if line.startswith(('VmRSS:', 'VmHWM:')):
            name, value = line.split(':', 1)
            memory[name] = int(value.split()[0]) / 1024.0
    label = cmdline.replace(b'\0', b' ').decode(errors='replace').strip()
    return ProcSample(pid=pid, ppid=int(fields[1]), label=label[:90],
                      rss_mb=memory.get('VmRSS', 0.0),
                      hwm_mb=memory.get('VmHWM', 0.0),
                      cpu_s=(int(fields[11]) + int(fields[12])) / CLK_TCK)


def parent_map() -> dict[int, int]:
    """pid → ppid of every process."""
    parents = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as stream:
                stat = stream.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat_fields(stat)[1])
    return parents


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, ppid in parents.items():
        children[ppid].append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in parents or pid == root:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


@dataclasses.dataclass
class ProcRecord:
    """What the bench kept of one daemon process."""

    pid: int
    label: str
    role: str
    peak_rss_mb: float = 0.0
    peak_hwm_mb: float = 0.0
    last_rss_mb: float = 0.0
    cpu_s: float = 0.0
    cpu_base: float = 0.0
    cpu_at: dict[str, float] = dataclasses.field(default_factory=dict)


def masters_first(records: Iterable[ProcRecord]) -> list[ProcRecord]:
    """A daemon's processes, the master first, then by pid."""
    return sorted(records, key=lambda r: (r.role != 'master', r.pid))


class ProcWatch:
    """Samples every process of every daemon the bench started."""

    def __init__(self) -> None:
        self.roots: dict[str, int] = {}
        self.records: dict[str, dict[int, ProcRecord]] = {}
        self.baseline: set[str] = set()
        self.tree_peak: dict[str, float] = {}
        self._lock = threading.Lock()

    def track(self, name: str, root: int, baseline: bool = False) -> None:
        """Watch ``root`` and its descendants as ``name``; with
        ``baseline`` (a server that ran before) CPU counts from the first
        sight of each process."""
        with self._lock:
            self.roots[name] = root
            self.records.setdefault(name, {})
            if baseline:
                self.baseline.add(name)

    def sample(self) -> None:
        """Read /proc for every process of every tracked daemon."""
        parents = parent_map()
        with self._lock:
            for name, root in self.roots.items():
                now = 0.0
                for pid in descendants(root, parents):
                    now += self._update(name, root, pid)
                self.tree_peak[name] = max(self.tree_peak.get(name, 0.0),
                                           now)

    def _update(self, name: str, root: int, pid: int) -> float:
        """Record one process; return its RSS (MB) now."""
        proc = read_proc(pid)
        if proc is None:
            return 0.0
        record = self.records[name].get(pid)
        if record is None:
            record = self.records[name][pid] = ProcRecord(
                pid=pid, label=proc.label,
                role='master' if pid == root else 'worker',
                cpu_base=proc.cpu_s if name in self.baseline else 0.0)
        record.label = proc.label or record.label
        record.peak_rss_mb = max(record.peak_rss_mb, proc.rss_mb)
        record.peak_hwm_mb = max(record.peak_hwm_mb, proc.hwm_mb)
        record.last_rss_mb = proc.rss_mb
        record.cpu_s = proc.cpu_s
        return proc.rss_mb

    def mark(self, label: str) -> None:
        """Remember every process's CPU seconds now (e.g. at the window
        start) to report CPU spent between marks."""
        with self._lock:
            for records in self.records.values():
                for record in records.values():
                    record.cpu_at[label] = record.cpu_s

    def pids(self, name: str) -> list[ProcRecord]:
        with self._lock:
            return masters_first(self.records.get(name, {}).values())

    def summary(self) -> dict[str, Any]:
        """Per daemon: processes, total CPU, summed and largest peaks."""
        result = {}
        with self._lock:
            for name, records in self.records.items():
                procs = masters_first(records.values())
                result[name] = {
                    'processes': [dataclasses.asdict(r) for r in procs],
                    'cpu_s': round(sum(r.cpu_s - r.cpu_base
                                       for r in procs), 2),
                    'cpu_s_window': round(sum(
                        r.cpu_at.get('window_end', r.cpu_s)
                        - r.cpu_at.get('window_start', r.cpu_base)
                        for r in procs), 2),
                    'peak_rss_mb_tree': round(
                        self.tree_peak.get(name, 0.0), 1),
                    'peak_hwm_mb_max': round(max(
                        (r.peak_hwm_mb for r in procs), default=0.0), 1),
                }
        return result
