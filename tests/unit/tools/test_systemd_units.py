"""The systemd units in etc/systemd/ as shipped: sandbox exposure at most
5.0 (``systemd-analyze security --offline=true``) and readiness settings.

The install test (tests/functional/test_install_production.py) checks
the same units once installed, with ``systemd-analyze verify``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[3] / 'etc' / 'systemd'
SERVICES = sorted(p.name for p in UNITS.glob('*.service'))
DAEMONS = ['telemeter-agent-notification.service',
           'telemeter-collector.service', 'telemeter-polling.service']


def test_every_unit_is_listed():
    assert set(DAEMONS) < set(SERVICES)
    assert 'telemeter-expirer.service' in SERVICES


@pytest.mark.parametrize('unit', SERVICES)
def test_exposure_at_most_5(unit):
    analyze = shutil.which('systemd-analyze')
    if analyze is None:
        pytest.fail('systemd-analyze not found: install the Debian package '
                    'systemd (it need not be running)', pytrace=False)
    result = subprocess.run(
        [analyze, 'security', '--offline=true', '--no-pager',
         str(UNITS / unit)],
        capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'Overall exposure level for \S+: (\d+\.\d+)',
                      result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= 5.0


@pytest.mark.parametrize('unit', DAEMONS)
def test_daemons_notify_readiness(unit):
    text = (UNITS / unit).read_text()
    for line in ('Type=notify', 'NotifyAccess=all', 'User=telemeter',
                 'KillMode=mixed'):
        assert re.search(f'^{line}$', text, re.M), line
    assert re.search(r'^ExecStart=/opt/telemeter/bin/', text, re.M)


@pytest.mark.parametrize('unit', DAEMONS)
def test_a_refused_configuration_is_not_restarted(unit):
    from telemeter import preflight

    text = (UNITS / unit).read_text()
    assert re.search(r'^Restart=on-failure$', text, re.M)
    assert re.search(rf'^RestartPreventExitStatus={preflight.EX_CONFIG}$',
                     text, re.M)
