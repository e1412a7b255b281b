"""What the bench prints as it goes: progress lines, counts, log tails."""

from __future__ import annotations

import time
from pathlib import Path

from .machine import cpu_pressure, loadavg

_T0 = time.monotonic()


def say(message: str) -> None:
    """A progress line with the time since start and the load average."""
    print(f'[e2e +{time.monotonic() - _T0:6.1f}s load {loadavg()}'
          f'{cpu_pressure()}] {message}', flush=True)


def fmt_int(value: float | None) -> str:
    """``12,345`` (or ``-`` for None)."""
    return '-' if value is None else f'{value:,.0f}'


def tail(path: Path, lines: int = 25) -> str:
    """Last lines of a log file ('' when unreadable)."""
    try:
        text = path.read_text(errors='replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])
