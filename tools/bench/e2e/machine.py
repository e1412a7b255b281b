"""The whole machine from /proc: load average, CPU pressure, CPU
seconds."""

from __future__ import annotations

import os

CLK_TCK = os.sysconf('SC_CLK_TCK')


def loadavg() -> str:
    """The three load averages, as /proc/loadavg prints them."""
    with open('/proc/loadavg') as stream:
        return ' '.join(stream.read().split()[:3])


def cpu_pressure() -> str:
    """``psi N%``: share of the last 10 s some task waited for a CPU
    (empty where the kernel has no /proc/pressure)."""
    try:
        with open('/proc/pressure/cpu') as stream:
            first = stream.readline().split()
    except OSError:
        return ''
    fields = dict(f.split('=', 1) for f in first[1:] if '=' in f)
    return f" psi {float(fields.get('avg10', 0)):.0f}%"


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open('/proc/stat') as stream:
        values = [int(v) for v in stream.readline().split()[1:9]]
    total = sum(values)
    idle = values[3] + values[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK
