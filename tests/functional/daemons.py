"""Run telemeter's real console scripts as processes for functional tests.

A :class:`Deployment` owns one directory holding ``telemeter.conf``, the
pipeline and polling files, a SQLite database and one log file per daemon.
Every deployment uses its own notification and metering topics, so tests
sharing one broker never consume each other's messages.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from oslo_config import cfg

from telemeter import service, storage

BIN_DIR = Path(sys.executable).parent
SECRET = 'functional-secret'

DEFAULT_PIPELINE = """\
sources:
  - name: meter_source
    meters: ["*"]
    sinks: [meter_sink]
sinks:
  - name: meter_sink
    publishers: ["notifier://"]
"""

DEFAULT_POLLING = """\
sources:
  - name: host
    interval: 2
    meters: ["host.*"]
"""


def script(name: str) -> str:
    """Path of an installed console script of this virtualenv."""
    path = BIN_DIR / name
    if not path.exists():
        raise RuntimeError(f'{path} is missing: install telemeter into '
                           f'this virtualenv (tools/install.sh)')
    return str(path)


class Daemon:
    """One daemon process and its log file."""

    def __init__(self, name: str, args: list[str], log_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, 'ab')
        self.process = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def wait_for_log(self, pattern: str, timeout: float = 60.0,
                     count: int = 1) -> str:
        """Wait until ``pattern`` (a regex) appears ``count`` times."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if len(re.findall(pattern, text)) >= count:
                return text
            if not self.alive():
                break
            time.sleep(0.2)
        raise AssertionError(
            f'{self.name}: {pattern!r} not logged {count} time(s) within '
            f'{timeout}s (alive={self.alive()}); log tail:\n'
            + '\n'.join(self.log().splitlines()[-40:]))

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 70.0
             ) -> tuple[int, float]:
        """Signal the daemon and wait; return (exit code, seconds)."""
        started = time.monotonic()
        if self.alive():
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f'{self.name} did not exit within '
                                 f'{timeout}s of signal {signum}') from None
        self._log.close()
        return code, time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the whole process group (the cotyledon children too)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        if not self._log.closed:
            self._log.close()


class Deployment:
    """A telemeter configuration plus the daemons started from it."""

    def __init__(self, workdir: Path, transport_url: str,
                 database_url: str | None = None,
                 pipeline: str = DEFAULT_PIPELINE,
                 polling: str = DEFAULT_POLLING,
                 extra_conf: str = '') -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.transport_url = transport_url
        self.database_url = database_url or (
            f'sqlite:///{workdir / "telemeter.db"}')
        tag = uuid.uuid4().hex[:8]
        self.notification_topic = f'notifications-{tag}'
        self.metering_topic = f'metering-{tag}'
        self.event_topic = f'event-{tag}'
        self.host = f'functional-{tag}'
        self.quarantine_queue = f'quarantine-{tag}'
        self.pipeline_path = workdir / 'pipeline.yaml'
        self.pipeline_path.write_text(pipeline)
        self.event_pipeline_path = workdir / 'event_pipeline.yaml'
        self.event_pipeline_path.write_text(
            'sources: [{name: s, events: ["*"], sinks: [k]}]\n'
            'sinks: [{name: k, publishers: ["notifier://"]}]\n')
        self.polling_path = workdir / 'polling.yaml'
        self.polling_path.write_text(polling)
        self.config_path = workdir / 'telemeter.conf'
        # The file dispatcher runs before the database one and records
        # every batch exactly as the collector received it.
        self.received_path = workdir / 'collector-received.log'
        self.write_config(extra_conf)
        self.daemons: list[Daemon] = []
        self._storage = None

    def write_config(self, extra_conf: str = '') -> None:
        self.config_path.write_text(textwrap.dedent(f"""\
            [DEFAULT]
            transport_url = {self.transport_url}
            host = {self.host}
            debug = true
            graceful_shutdown_timeout = 15
            pipeline_cfg_file = {self.pipeline_path}
            meter_dispatchers = file
            meter_dispatchers = database
            event_pipeline_cfg_file = {self.event_pipeline_path}
            [oslo_messaging_notifications]
            topics = {self.notification_topic}
            [publisher_notifier]
            metering_topic = {self.metering_topic}
            event_topic = {self.event_topic}
            [publisher]
            telemetry_secret = {SECRET}
            [database]
            connection = {self.database_url}
            max_retries = 3
            retry_interval = 1
            [polling]
            cfg_file = {self.polling_path}
            [collector]
            udp_address =
            [dispatcher_file]
            file_path = {self.received_path}
            [delivery]
            quarantine_queue = {self.quarantine_queue}
            requeue_backoff = 0.2
            """) + textwrap.dedent(extra_conf))

    def command(self, name: str, *args: str) -> list[str]:
        return [script(name), '--config-file', str(self.config_path), *args]

    def run(self, name: str, *args: str, timeout: float = 120.0
            ) -> subprocess.CompletedProcess:
        """Run a one-shot command; fail the test with its output if it
        exits non-zero."""
        result = subprocess.run(self.command(name, *args),
                                capture_output=True, text=True,
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise AssertionError(
                f'{name} exited {result.returncode}:\n{result.stdout}\n'
                f'{result.stderr}')
        return result

    def start(self, name: str, *args: str) -> Daemon:
        index = sum(1 for d in self.daemons if d.name == name)
        log_path = self.workdir / f'{name}-{index}.log'
        daemon = Daemon(name, self.command(name, *args), log_path)
        self.daemons.append(daemon)
        return daemon

    def conf(self) -> cfg.ConfigOpts:
        """The deployment's configuration, loaded in the test process."""
        return service.prepare_service(
            argv=['functional-test'], config_files=[str(self.config_path)],
            conf=cfg.ConfigOpts())

    def received(self) -> dict[str, dict]:
        """Metering dicts the collector dispatched, by message_id."""
        if not self.received_path.exists():
            return {}
        received = {}
        for line in self.received_path.read_text().splitlines():
            for message in ast.literal_eval(line):
                received[message['message_id']] = message
        return received

    def storage(self):
        """The deployment's metering storage, opened once and closed by
        :meth:`cleanup`."""
        if self._storage is None:
            self._storage = storage.get_connection(self.conf(),
                                                   self.database_url)
        return self._storage

    def cleanup(self) -> None:
        for daemon in self.daemons:
            daemon.kill()
        if self._storage is not None:
            self._storage.dispose()
