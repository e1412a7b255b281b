"""The daemons the bench runs as processes (console scripts of the
virtualenv): start, stop, dbsync."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from .console import say
from .errors import BenchError


def script(name: str) -> str:
    """Path of a console script of this interpreter's virtualenv."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise BenchError(f'{path} is missing: run the bench with the '
                         f'project virtualenv (.venv/bin/python) after '
                         f'tools/install.sh')
    return str(path)


class Daemon:
    """One daemon started by the bench (its own session/process group)."""

    def __init__(self, name: str, config: Path, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f'{name}.stdout'
        self._log = open(self.log_path, 'ab')
        self.process = subprocess.Popen(
            [script(name), '--config-file', str(config)],
            stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        self.exit_code: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float) -> int | None:
        """SIGTERM the master, wait, then SIGKILL its process group."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f'{self.name} did not stop within {timeout:.0f} s of '
                    f'SIGTERM: killing its process group')
        if self.alive() or _group_alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        self.exit_code = self.process.returncode
        if not self._log.closed:
            self._log.close()
        return self.exit_code


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def dbsync(config: Path) -> None:
    """``telemeter-dbsync`` on the scratch database of ``config``."""
    say('telemeter-dbsync')
    result = subprocess.run(
        [script('telemeter-dbsync'), '--config-file', str(config)],
        capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise BenchError(f'telemeter-dbsync exited '
                         f'{result.returncode}:\n{result.stderr[-3000:]}')
