"""Progress lines: the time since start and the load average on each."""

from __future__ import annotations

import time

from tools.bench.e2e.machine import cpu_pressure, loadavg

_T0 = time.monotonic()


def say(message: str) -> None:
    """One progress line, with the load average (the 2 cores are
    shared: every figure is printed with it)."""
    print(f'[drain +{time.monotonic() - _T0:6.1f}s load {loadavg()}'
          f'{cpu_pressure()}] {message}', flush=True)
