"""Fixtures of the fault suite (``tox -e faults``; not part of ``pytest
tests/functional``, see ``tests/conftest.py``).

The servers are the session's ones from ``tests/functional/conftest.py``
(``tools/services.sh``, or ``TELEMETER_TEST_*_URL`` when they point at
servers that ``tools/services.sh`` runs - the broker and PostgreSQL are
stopped and started by the scenarios). Each scenario gets a fresh
PostgreSQL database and its own topics.

Every scenario appends an :class:`~.harness.Outcome` to the session's
table, printed at the end of the run and written as JSON to
``TELEMETER_FAULTS_REPORT`` (default ``.faults-report.json`` in the
current directory); ``tools/bench/fault_table.py`` prints it again.
``TELEMETER_FAULTS_KEEP_LOGS=DIR`` copies every scenario's configuration
and daemon logs (and the test sender's oslo.messaging log) to DIR.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path

import pytest

from telemeter import messaging
from tests.functional.faults import harness, runner, table
from tests.functional.fixtures import services

REPO = Path(__file__).resolve().parents[3]


def report_path() -> Path:
    return Path(os.environ.get('TELEMETER_FAULTS_REPORT',
                               '.faults-report.json'))


@pytest.fixture(scope='session', autouse=True)
def _daemons_run_this_tree():
    """The console scripts of the virtualenv import ``telemeter`` from
    wherever it is installed; put this tree first, so a worktree's daemons
    run the worktree's code."""
    with pytest.MonkeyPatch.context() as mp:
        old = os.environ.get('PYTHONPATH')
        mp.setenv('PYTHONPATH', str(REPO) + (os.pathsep + old if old else ''))
        where = subprocess.run(
            [sys.executable, '-c',
             'import telemeter; print(telemeter.__file__)'],
            cwd='/', capture_output=True, text=True, check=True).stdout
        assert where.strip().startswith(str(REPO)), where
        yield


def _managed(url: str, name: str, default_port: int
             ) -> services.ManagedService:
    port = urllib.parse.urlsplit(url).port or default_port
    managed = services.ManagedService(services.SERVICES[name], port)
    if not managed.is_running():
        pytest.fail(f'the fault suite stops and starts {name}, so it needs '
                    f'a server run by tools/services.sh; none runs on port '
                    f'{port} under {services.state_root()}', pytrace=False)
    return managed


@pytest.fixture(scope='session')
def broker(rabbit_url, _rabbit_admin):
    """The session's broker (``RabbitAdmin``: stop/start keep its data)."""
    return _rabbit_admin


@pytest.fixture(scope='session')
def pg_service(postgresql_server_url) -> services.ManagedService:
    return _managed(postgresql_server_url, 'postgresql', 5432)


@pytest.fixture
def scenario(request, tmp_path, rabbit_url, postgresql_function_url, broker,
             pg_service):
    """Build a :class:`Scenario`; whatever it left stopped is started."""
    made: list[runner.Scenario] = []
    # A virtual host per scenario: exchanges and queues of another
    # scenario (a non-durable 'telemeter' exchange, say) cannot clash
    # with this one's durable or quorum declarations.
    vhost = f'faults-{uuid.uuid4().hex[:8]}'
    broker.rabbitmqctl('add_vhost', vhost)
    broker.rabbitmqctl('set_permissions', '-p', vhost, 'guest',
                       '.*', '.*', '.*')
    url = rabbit_url.rstrip('/') + '/' + vhost

    def make(name: str, **kwargs) -> runner.Scenario:
        dep = harness.FaultDeployment(tmp_path / 'deployment', url,
                                      postgresql_function_url, **kwargs)
        scn = runner.Scenario(name, dep, broker, vhost)
        made.append(scn)
        return scn

    yield make
    for scn in made:
        scn.cleanup()
    if runner.OUTCOMES:
        write_report()
    keep = os.environ.get('TELEMETER_FAULTS_KEEP_LOGS')
    if keep and made:
        # pytest keeps only its last 3 base temp dirs: copy the logs.
        shutil.copytree(made[0].dep.workdir,
                        Path(keep) / re.sub(r'\W+', '_', request.node.name),
                        ignore=shutil.ignore_patterns('*.db'),
                        dirs_exist_ok=True)
    if not broker.is_running():
        broker.start()
    if not pg_service.is_running():
        pg_service.start()
    broker.rabbitmqctl('delete_vhost', vhost)
    messaging.cleanup()


def write_report() -> tuple[list[dict], list[str]]:
    """Write the outcomes so far (after every scenario, so that an
    interrupted run leaves its table)."""
    outcomes = [o.as_dict() for o in runner.OUTCOMES]
    try:
        load = Path('/proc/loadavg').read_text().split()[:3]
    except OSError:
        load = []
    report = {'n': harness.N, 'loadavg_at_end': load, 'outcomes': outcomes}
    report_path().write_text(json.dumps(report, indent=1))
    return outcomes, load


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not runner.OUTCOMES:
        return
    outcomes, load = write_report()
    terminalreporter.section('fault table (issue 12)')
    terminalreporter.write_line(table.format_table(outcomes))
    terminalreporter.write_line(
        f'load average at the end: {" ".join(load)}; '
        f'JSON: {report_path()}')
