"""The servers: RabbitMQ and PostgreSQL through tools/services.sh, the
scratch database of a run, and the table counter."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from .console import say
from .errors import BenchError

REPO = Path(__file__).resolve().parents[3]


class Services:
    """``tools/services.sh`` with the bench's own ports and state dir."""

    def __init__(self, state_dir: str, rabbit_port: int,
                 pg_port: int) -> None:
        self.script = REPO / 'tools' / 'services.sh'
        self.env = dict(os.environ, TELEMETER_SERVICES_DIR=state_dir,
                        TELEMETER_RABBIT_PORT=str(rabbit_port),
                        TELEMETER_PG_PORT=str(pg_port))
        self.state_dir = Path(state_dir)
        self.ports = {'rabbitmq': rabbit_port, 'postgresql': pg_port}
        self.started: list[str] = []

    def pid(self, service: str) -> int | None:
        """The launcher PID services.sh recorded for ``service``."""
        path = (self.state_dir / f'{service}-{self.ports[service]}'
                / 'launcher.pid')
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _run(self, *args: str, check: bool = True,
             capture: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(['bash', str(self.script), *args],
                              env=self.env, check=check, text=True,
                              capture_output=capture, timeout=300)

    def running(self, service: str) -> bool:
        return self._run('status', service, check=False).returncode == 0

    def ensure(self, service: str) -> None:
        """Start ``service`` unless it runs already (then it is reused
        and left running at the end)."""
        if self.running(service):
            say(f'{service}: reusing the running server')
            return
        say(f'{service}: starting (tools/services.sh up {service})')
        result = self._run('up', service, check=False)
        if result.returncode != 0:
            raise BenchError(
                f'tools/services.sh up {service} failed:\n{result.stderr}'
                f'\nIs the package installed (tools/install.sh)? Is the '
                f'port taken (choose another with --rabbit-port / '
                f'--pg-port)?')
        self.started.append(service)

    def url(self, service: str) -> str:
        out = self._run('env', service).stdout.strip()
        return out.split('=', 1)[1]

    def rabbitmqctl(self, *args: str) -> str:
        return self._run('rabbitmqctl', *args).stdout

    def stop_started(self) -> None:
        """``down`` (stop, delete state) what this run started."""
        for service in reversed(self.started):
            say(f'{service}: stopping (tools/services.sh down {service})')
            self._run('down', service, check=False)
        self.started = []


class ScratchDatabase:
    """A database made for one run on a PostgreSQL or MySQL server."""

    def __init__(self, admin_url: str, name: str) -> None:
        import sqlalchemy as sa
        self.sa = sa
        self.admin_url = sa.engine.make_url(admin_url)
        self.name = name
        self.url = self.admin_url.set(database=name).render_as_string(
            hide_password=False)
        self.created = False

    def _admin(self) -> Any:
        return self.sa.create_engine(self.admin_url,
                                     isolation_level='AUTOCOMMIT')

    def create(self) -> None:
        engine = self._admin()
        try:
            with engine.connect() as conn:
                conn.execute(self.sa.text(f'CREATE DATABASE {self.name}'))
        except Exception as err:
            raise BenchError(
                f'cannot create database {self.name} with '
                f'{self.admin_url.render_as_string()}: {err}\nCheck that '
                f'the server runs and that the account of --database-url '
                f'may CREATE DATABASE (or leave --database-url out: the '
                f'bench then starts PostgreSQL itself)') from err
        finally:
            engine.dispose()
        self.created = True

    def drop(self) -> None:
        if not self.created:
            return
        force = (' WITH (FORCE)'
                 if self.admin_url.get_backend_name() == 'postgresql'
                 else '')
        engine = self._admin()
        try:
            with engine.connect() as conn:
                conn.execute(self.sa.text(
                    f'DROP DATABASE IF EXISTS {self.name}{force}'))
        finally:
            engine.dispose()
        self.created = False


class TableCounter:
    """``SELECT count(*)`` of the sample and event tables (progress and
    drain detection; the figures come from the storage API)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa
        self.sa = sa
        self.engine = sa.create_engine(url, pool_size=1, max_overflow=0)

    def counts(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            samples = conn.execute(self.sa.text(
                'SELECT count(*) FROM sample')).scalar_one()
            events = conn.execute(self.sa.text(
                'SELECT count(*) FROM event')).scalar_one()
        return int(samples), int(events)

    def dispose(self) -> None:
        self.engine.dispose()
