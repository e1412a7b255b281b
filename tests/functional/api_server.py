"""Run ``telemeter-api`` as a process and the real ``ceilometer`` CLI
(python-ceilometerclient 2.9.0, in its own venv made by
tools/install.sh) against it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import requests

from tests.functional import daemons

REPO = Path(__file__).resolve().parents[2]
CLIENT_VENV = Path(os.environ.get('TELEMETER_CEILOMETERCLIENT_VENV',
                                  REPO / '.venv-ceilometerclient'))


def ceilometer_cli() -> str:
    """Path of the ``ceilometer`` command; fails the test (never skips)
    when the client's venv is missing."""
    path = CLIENT_VENV / 'bin' / 'ceilometer'
    if not path.exists():
        pytest.fail(f'{path} is missing: tools/install.sh creates the '
                    'python-ceilometerclient venv (or set '
                    'TELEMETER_CEILOMETERCLIENT_VENV)', pytrace=False)
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class ApiServer:
    """``telemeter-api`` over ``database_url`` on a free loopback port."""

    def __init__(self, workdir: Path, database_url: str,
                 extra_conf: str = '', auth_mode: str = 'noauth') -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.config_path = workdir / 'telemeter.conf'
        self.config_path.write_text(textwrap.dedent(f"""\
            [DEFAULT]
            debug = false
            [database]
            connection = {database_url}
            max_retries = 3
            retry_interval = 1
            [api]
            host = 127.0.0.1
            port = {self.port}
            workers = 1
            auth_mode = {auth_mode}
            """) + textwrap.dedent(extra_conf))
        self.daemon = daemons.Daemon(
            'telemeter-api', [daemons.script('telemeter-api'),
                              '--config-file', str(self.config_path)],
            workdir / 'telemeter-api.log')

    def wait_ready(self, timeout: float = 60.0) -> ApiServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.daemon.alive():
                break
            try:
                if requests.get(self.url + '/', timeout=5).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError('telemeter-api did not answer; log:\n'
                             + self.daemon.log()[-4000:])

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
        """One HTTP request; (status, body) whatever the status."""
        response = requests.request(method, self.url + path, data=body,
                                    headers=headers or {}, timeout=60)
        return response.status_code, response.content

    def get_json(self, path: str, headers: dict | None = None):
        status, body = self.request('GET', path, headers=headers)
        assert status == 200, body
        return json.loads(body)

    def cli(self, *args: str, token: str | None = None) -> str:
        """Run ``ceilometer <args>``; its stdout (fails on exit != 0)."""
        result = subprocess.run(
            [ceilometer_cli(), '--os-endpoint', self.url, '--os-token',
             token or 'noauth', *args], capture_output=True, text=True,
            timeout=120, check=False)
        assert result.returncode == 0, (
            f'ceilometer {" ".join(args)} exited {result.returncode}:\n'
            f'{result.stdout}\n{result.stderr}')
        return result.stdout

    def stop(self) -> None:
        self.daemon.stop(timeout=30)


def parse_table(text: str) -> list[dict[str, str]]:
    """The rows of a prettytable printed by the client (one line per
    row)."""
    lines = [line for line in text.splitlines() if line.startswith('|')]
    if not lines:
        return []
    header = [cell.strip() for cell in lines[0].strip('|').split('|')]
    return [dict(zip(header, [cell.strip() for cell in
                              line.strip('|').split('|')], strict=True))
            for line in lines[1:]]


def parse_dict(text: str) -> dict[str, str]:
    """``Property | Value`` output as a dict (wrapped values joined)."""
    result: dict[str, str] = {}
    last = None
    for row in parse_table(text):
        key, value = row['Property'], row['Value']
        if key:
            result[key] = value
            last = key
        elif last is not None:
            result[last] += value
    return result
