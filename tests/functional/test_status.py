"""``telemeter-status upgrade check`` against a real PostgreSQL and
RabbitMQ: Failure for an unreachable database, a schema behind the latest
migration, an unreachable broker and an invalid pipeline; Warning for the
default signing secret; Success on a good deployment."""

from __future__ import annotations

import json
import subprocess

import pytest
import sqlalchemy as sa
from alembic import command

from telemeter.storage.sqlalchemy import migration
from tests.functional import daemons

SUCCESS, WARNING, FAILURE = 0, 1, 2


def _check(deployment: daemons.Deployment) -> tuple[int, dict[str, dict]]:
    result = subprocess.run(
        deployment.command('telemeter-status', 'upgrade', 'check', '--json'),
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode in (SUCCESS, WARNING, FAILURE), (
        result.stdout + result.stderr)
    report = json.loads(result.stdout)
    checks = {c['check']: c for c in report['checks']}
    return result.returncode, checks


@pytest.fixture
def deployment(tmp_path, rabbit_url, postgresql_function_url):
    deployment = daemons.Deployment(tmp_path, rabbit_url,
                                    database_url=postgresql_function_url)
    deployment.run('telemeter-dbsync')
    return deployment


def test_a_good_deployment_succeeds(deployment):
    code, checks = _check(deployment)
    assert code == SUCCESS, checks
    assert {name: c['result'] for name, c in checks.items()} == {
        'Configuration': SUCCESS, 'Databases': SUCCESS,
        'Message broker': SUCCESS, 'Signing secret': SUCCESS}
    head = migration.head_revision(migration.METERING)
    assert f'metering: schema at the latest ({head})' in (
        checks['Databases']['details'])


def test_default_secret_is_a_warning(deployment):
    deployment.write_config('[publisher]\n'
                            'telemetry_secret = change this for valid '
                            'signing\n')
    code, checks = _check(deployment)
    assert code == WARNING
    assert checks['Signing secret']['result'] == WARNING
    assert 'default' in checks['Signing secret']['details']


def test_unreachable_database_fails(deployment):
    deployment.write_config('[database]\nconnection = '
                            'postgresql://postgres@127.0.0.1:9/none\n')
    code, checks = _check(deployment)
    assert code == FAILURE
    assert checks['Databases']['result'] == FAILURE
    assert 'metering: cannot connect (OperationalError' in (
        checks['Databases']['details'])


def test_schema_not_at_head_fails(deployment, postgresql_function_url):
    engine = sa.create_engine(
        postgresql_function_url.replace('postgresql://',
                                        'postgresql+psycopg://'))
    previous = migration.ScriptDirectory.from_config(
        migration.alembic_config(migration.METERING)).get_revision(
        migration.head_revision(migration.METERING)).down_revision
    with engine.begin() as conn:
        command.stamp(migration.alembic_config(migration.METERING, conn),
                      previous)
    engine.dispose()
    code, checks = _check(deployment)
    assert code == FAILURE
    assert (f'metering: schema at {previous}, the latest is '
            f'{migration.head_revision(migration.METERING)}: run '
            'telemeter-dbsync') in checks['Databases']['details']
    # The event schema was not touched.
    assert 'event: schema at the latest' in checks['Databases']['details']


def test_no_schema_fails(tmp_path, rabbit_url, postgresql_function_url):
    deployment = daemons.Deployment(tmp_path, rabbit_url,
                                    database_url=postgresql_function_url)
    code, checks = _check(deployment)
    assert code == FAILURE
    assert 'metering: no telemeter schema: run telemeter-dbsync' in (
        checks['Databases']['details'])


def test_unreachable_broker_fails(deployment):
    deployment.write_config('[DEFAULT]\n'
                            'transport_url = rabbit://guest:guest@'
                            '127.0.0.1:9/\n')
    code, checks = _check(deployment)
    assert code == FAILURE
    assert checks['Message broker']['result'] == FAILURE
    assert '127.0.0.1:9: unreachable' in checks['Message broker']['details']


def test_invalid_pipeline_fails(deployment):
    deployment.pipeline_path.write_text(
        'sources: [{name: s, meters: ["*"], sinks: [gone]}]\n'
        'sinks: [{name: k, publishers: ["test://"]}]\n')
    code, checks = _check(deployment)
    assert code == FAILURE
    assert checks['Configuration']['result'] == FAILURE
    assert 'Dangling sink gone from source s' in (
        checks['Configuration']['details'])
    assert str(deployment.pipeline_path) in checks['Configuration']['details']
