"""The ``hardware.ipmi.*`` samples against Ceilometer 27's on the same
notifications.

``data/ipmi_ceilometer27.json`` holds notifications and, for each, what
Ceilometer 27.0.0's IPMI endpoints made of it (``tools/ipmi_reference.py``
run in a ceilometer venv wrote those entries). Every field but the id must
be the same here; where Ceilometer failed the notification telemeter makes
the samples of a sibling case with the envelope's timestamp instead.
"""

from __future__ import annotations

import copy
import json
import pathlib

import pytest
from stevedore import extension

from telemeter import utils
from telemeter.cmd import dryrun
from telemeter.notification import meters
from tests.unit.notification.conftest import published_samples

FIXTURE = pathlib.Path(__file__).parent / 'data' / 'ipmi_ceilometer27.json'
FIELDS = ('name', 'type', 'unit', 'volume', 'user_id', 'project_id',
          'resource_id', 'timestamp', 'resource_metadata', 'source')
#: Cases where Ceilometer raised (the notification is requeued for ever)
#: → the case whose samples telemeter makes instead, but stamped with
#: the envelope's timestamp.
DIVERGENCES = {
    'unit-test-payload': 'unit-test-payload-iso-timestamp',
    'no-payload-timestamp': 'bench-corpus',
}

CASES = json.loads(FIXTURE.read_text())['cases']
BY_NAME = {case['name']: case for case in CASES}


def _key(record: dict) -> tuple:
    return record['name'], record['resource_id'], record['timestamp']


def expected(case: dict) -> list[dict]:
    """The samples telemeter must make of a case, sorted."""
    if 'error' not in case['ceilometer']:
        return case['ceilometer']['samples']
    sibling = BY_NAME[DIVERGENCES[case['name']]]
    envelope = utils.parse_isotime(
        case['notification']['metadata']['timestamp']).isoformat()
    return [dict(record, timestamp=envelope)
            for record in sibling['ceilometer']['samples']]


def _handlers(pipelines) -> list:
    return [ext.obj for ext in extension.ExtensionManager(
        'telemeter.notification', invoke_on_load=True,
        invoke_args=(pipelines,))
        if ext.name.startswith('hardware.ipmi.')]


def test_the_fixture_was_made_by_ceilometer_27_and_covers_every_meter():
    fixture = json.loads(FIXTURE.read_text())
    assert fixture['produced_by'].endswith('ceilometer 27.0.0')
    names = {record['name'] for case in CASES
             for record in case['ceilometer']['samples']}
    assert names == {'hardware.ipmi.temperature', 'hardware.ipmi.voltage',
                     'hardware.ipmi.current', 'hardware.ipmi.fan'}
    assert {c['name'] for c in CASES if 'error' in c['ceilometer']} == set(
        DIVERGENCES)


@pytest.mark.parametrize('case', CASES, ids=[c['name'] for c in CASES])
def test_handlers_make_what_ceilometer_makes(sample_pipelines, case):
    notification = copy.deepcopy(case['notification'])
    priority = notification.pop('priority').lower()
    for handler in _handlers(sample_pipelines):
        if handler.filter_rule.match(
                notification['ctxt'], notification['publisher_id'],
                notification['event_type'], notification['metadata'],
                notification['payload']):
            getattr(handler, priority)([notification])
        assert handler.failures == 0
    made = sorted(({f: s.as_dict()[f] for f in FIELDS}
                   for s in published_samples(sample_pipelines)), key=_key)
    assert made == expected(case)
    # The notification is left as it came (Ceilometer adds 'node' to it).
    assert notification['payload'] == case['notification']['payload']


def test_dry_run_makes_what_ceilometer_makes(tmp_path, capsys):
    """The same through ``telemeter-notification-dryrun`` with the
    packaged meter definitions: the IPMI samples are the handlers' only."""
    conf = tmp_path / 'telemeter.conf'
    conf.write_text(f'[meter]\nmeter_definitions_dirs = '
                    f'{meters.PACKAGED_METERS_DIR}\n')
    notifications = tmp_path / 'ipmi.json'
    notifications.write_text(json.dumps([c['notification'] for c in CASES]))
    status = dryrun.main(['telemeter-notification-dryrun', '--config-file',
                          str(conf), str(notifications)])
    records = [json.loads(line)
               for line in capsys.readouterr().out.splitlines()]
    assert status == 0
    made = sorted(({f: r[f] for f in FIELDS} for r in records
                   if r['kind'] == 'sample'
                   and r['name'].startswith('hardware.ipmi.')), key=_key)
    assert made == sorted((r for c in CASES for r in expected(c)), key=_key)
    assert len(made) == 26  # 16 as Ceilometer's, 10 diverging
