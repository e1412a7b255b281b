"""Daemons refuse a bad configuration at start, and telemeter-validate
agrees with them on every case.

Each case is a deployment with one thing wrong. The daemon (the real
console script) must exit with EX_CONFIG (78) within 10 s, before forking
any worker, naming the file or option and the reason; ``telemeter-validate``
on the same configuration must exit 1 with the same line. Nothing needs a
broker or a database: the checks do not connect.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.functional import daemons

# Nothing listens there; the checks must not try.
TRANSPORT_URL = 'rabbit://guest:guest@127.0.0.1:9/'
GOOD_PIPELINE = ('sources: [{name: s, meters: ["*"], sinks: [k]}]\n'
                 'sinks: [{name: k, publishers: ["test://"]}]\n')
EX_CONFIG = 78


def _pipeline(text: str) -> dict:
    return {'pipeline.yaml': text}


def _event_pipeline(text: str) -> dict:
    return {'event_pipeline.yaml': text}


# (id, daemon, files to write (name -> text), extra conf, expected text)
CASES = [
    ('pipeline-yaml-syntax', 'telemeter-agent-notification',
     _pipeline('sources: [\n  - a\n'), '',
     'pipeline.yaml at line 2, column 3'),
    ('pipeline-dangling-sink', 'telemeter-agent-notification',
     _pipeline('sources: [{name: s, meters: ["*"], sinks: [k, gone]}]\n'
               'sinks: [{name: k, publishers: ["test://"]}]\n'), '',
     'Dangling sink gone from source s'),
    ('pipeline-duplicate-source', 'telemeter-agent-notification',
     _pipeline('sources: [{name: s, meters: ["*"], sinks: [k]},\n'
               '          {name: s, meters: ["a"], sinks: [k]}]\n'
               'sinks: [{name: k, publishers: ["test://"]}]\n'), '',
     'Duplicated source names: s'),
    ('pipeline-unknown-transformer', 'telemeter-agent-notification',
     _pipeline('sources: [{name: s, meters: ["*"], sinks: [k]}]\n'
               'sinks: [{name: k, transformers: [{name: nosuch}],\n'
               '         publishers: ["test://"]}]\n'), '',
     'nosuch'),
    ('pipeline-sink-without-publishers', 'telemeter-agent-notification',
     _pipeline('sources: [{name: s, meters: ["*"], sinks: [k]}]\n'
               'sinks: [{name: k}]\n'), '',
     'No publisher specified'),
    ('pipeline-include-and-exclude', 'telemeter-agent-notification',
     _pipeline('sources: [{name: s, meters: ["a", "!b"], sinks: [k]}]\n'
               'sinks: [{name: k, publishers: ["test://"]}]\n'), '',
     'Both included and excluded meters specified'),
    ('pipeline-unknown-publisher', 'telemeter-agent-notification',
     _pipeline('sources: [{name: s, meters: ["*"], sinks: [k]}]\n'
               'sinks: [{name: k, publishers: ["nosuch://"]}]\n'), '',
     "unknown publisher 'nosuch://': the known publishers "
     '(telemeter.sample.publisher) are database://, direct://, file://'),
    ('event-pipeline-dangling-sink', 'telemeter-agent-notification',
     _event_pipeline('sources: [{name: s, events: ["*"], sinks: [x]}]\n'
                     'sinks: [{name: k, publishers: ["test://"]}]\n'), '',
     'Dangling sink x from source s'),
    ('event-definitions-yaml', 'telemeter-agent-notification',
     {'events.yaml': '- event_type: [a\n'},
     '[event]\ndefinitions_cfg_file = {dir}/events.yaml\n',
     'events.yaml at line: 2, column: 1'),
    ('meter-definition-invalid', 'telemeter-agent-notification',
     {'meters/m.yaml': 'metric:\n  - name: m\n    event_type: e\n'},
     '[meter]\nmeter_definitions_dirs = {dir}/meters\n',
     "m.yaml: entry 1 of metric: MeterDefinitionException {'name': 'm', "
     "'event_type': 'e'}: Required fields ['type', 'unit', 'volume', "
     "'resource_id'] not specified"),
    ('collector-unknown-storage-scheme', 'telemeter-collector', {},
     '[database]\nconnection = foo://bar\n',
     'no storage driver for foo:// (telemeter.metering.storage); the known '
     'schemes are log://, mongodb://, mysql://, postgresql://, sqlite://'),
    ('collector-unknown-dispatcher', 'telemeter-collector', {},
     '[DEFAULT]\nmeter_dispatchers = nosuch\n',
     "unknown dispatcher 'nosuch'; the known ones are database, file, "
     'gnocchi, http'),
    ('collector-missing-dbapi', 'telemeter-collector', {},
     '[database]\nconnection = mysql+mysqldb://u@127.0.0.1/x\n',
     "needs the Python module MySQLdb, which is not installed; install it "
     "(pip install 'telemeter[mysql]' gives mysql+pymysql://)"),
    ('polling-yaml-invalid', 'telemeter-polling',
     {'polling.yaml': 'sources: [{name: s, meters: [a]}]\n'}, '',
     'Missing interval value'),
    ('bad-transport-url', 'telemeter-collector', {},
     '[DEFAULT]\ntransport_url = nosuchdriver://x/\n',
     '[DEFAULT] transport_url: DriverLoadFailure'),
]


@pytest.fixture
def deployment(tmp_path: Path) -> daemons.Deployment:
    return daemons.Deployment(tmp_path, TRANSPORT_URL,
                              pipeline=GOOD_PIPELINE)


def _arrange(deployment: daemons.Deployment, files: dict, extra: str
             ) -> None:
    for name, text in files.items():
        path = deployment.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    deployment.write_config(extra.format(dir=deployment.workdir))


@pytest.mark.parametrize('daemon, files, extra, expected',
                         [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_daemon_refuses_and_validate_agrees(deployment, daemon, files,
                                            extra, expected):
    _arrange(deployment, files, extra)
    started = time.monotonic()
    result = subprocess.run(deployment.command(daemon), capture_output=True,
                            text=True, timeout=30, check=False)
    took = time.monotonic() - started
    assert result.returncode == EX_CONFIG, result.stderr[-2000:]
    assert took < 10, f'{daemon} took {took:.1f}s to refuse'
    assert expected in result.stderr
    assert 'not started: ' in result.stderr
    # The master refused: no worker was forked (cotyledon would log it).
    assert 'Forking' not in result.stderr + result.stdout
    assert 'Traceback' not in result.stderr

    validate = subprocess.run(deployment.command('telemeter-validate'),
                              capture_output=True, text=True, timeout=30,
                              check=False)
    assert validate.returncode == 1, validate.stdout + validate.stderr
    assert expected in validate.stdout
    # The daemon's lines are the validate command's lines for its part.
    refused = [line.split(': ', 1)[1] for line in result.stderr.splitlines()
               if not line.startswith(f'{daemon}: not started')]
    assert set(refused) <= set(validate.stdout.splitlines())


def test_validate_accepts_the_packaged_configuration(deployment):
    result = subprocess.run(deployment.command('telemeter-validate'),
                            capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ('Configuration valid for polling, notification, '
                             'collector\n')


def test_validate_one_daemon_only(deployment):
    deployment.write_config('[database]\nconnection = foo://bar\n')
    notification = subprocess.run(
        deployment.command('telemeter-validate', 'notification'),
        capture_output=True, text=True, timeout=60, check=False)
    assert notification.returncode == 0, notification.stdout
    collector = subprocess.run(
        deployment.command('telemeter-validate', 'collector'),
        capture_output=True, text=True, timeout=60, check=False)
    assert collector.returncode == 1
    assert 'foo://' in collector.stdout

