"""CPU time of the benchmark's client and of its database server.

On a machine shared with other work the rates move with the load; the CPU
seconds spent per sample by this process and by the PostgreSQL backends
serving its database move much less, so the benchmark prints both.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from sqlalchemy.engine import Engine

_TICKS = os.sysconf('SC_CLK_TCK')
_BACKENDS = ('SELECT pid FROM pg_stat_activity '
             'WHERE datname = current_database()')


def _process_cpu(pid: int) -> float:
    try:
        with open(f'/proc/{pid}/stat') as stat:
            fields = stat.read().rsplit(')', 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CPUMeter:
    """``with CPUMeter(engine) as cpu: ...`` around a run, ``with
    cpu.client_part(): ...`` around what the client time should count
    (not the generation of the data); then ``cpu.client`` and
    ``cpu.server`` seconds (server: the PostgreSQL backends on this
    machine connected to the database, else 0)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.client = 0.0
        self.server = 0.0

    def _server_cpu(self) -> dict[int, float]:
        if self._engine.dialect.name != 'postgresql':
            return {}
        with self._engine.connect() as conn:
            pids = [pid for pid, in conn.exec_driver_sql(_BACKENDS)]
        return {pid: _process_cpu(pid) for pid in pids}

    def __enter__(self) -> CPUMeter:
        self._server = self._server_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self._server_cpu()
        self.server = sum(after[pid] - self._server.get(pid, 0.0)
                          for pid in after)

    @contextlib.contextmanager
    def client_part(self) -> Iterator[None]:
        """Count this process's CPU time inside the block."""
        start = time.process_time()
        try:
            yield
        finally:
            self.client += time.process_time() - start

    def per_sample(self, count: int) -> str:
        """``client X us, server Y us`` CPU per sample."""
        text = f'CPU/sample: client {self.client / count * 1e6:.1f} us'
        if self._engine.dialect.name == 'postgresql':
            text += f', server {self.server / count * 1e6:.1f} us'
        return text
