"""tools/install-production.sh into a temporary root, then the installed
units checked with ``systemd-analyze verify`` and ``systemd-analyze
security --offline=true`` (exposure at most 5.0 each).

Nothing outside the temporary root is touched: the user goes into its
``etc/passwd`` (systemd-sysusers --root), the directories under it
(systemd-tmpfiles --root). pip needs the package index (or its cache).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'install-production.sh'
PREFIX = '/opt/telemeter'
DAEMONS = ['telemeter-collector', 'telemeter-agent-notification',
           'telemeter-polling']
SERVICES = [*DAEMONS, 'telemeter-expirer']
MAX_EXPOSURE = 5.0
_EXPOSURE = re.compile(r'Overall exposure level for \S+: (\d+\.\d+)')


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f'{name} not found: install the Debian package systemd '
                    '(the test needs it; systemd need not be running)',
                    pytrace=False)
    return path


def _run_install(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)  # the venv must work on its own
    result = subprocess.run(
        ['bash', str(SCRIPT), '--root', str(root), '--python',
         sys.executable, *args],
        capture_output=True, text=True, timeout=900, env=env, check=False)
    assert result.returncode == 0, (
        f'install-production.sh exited {result.returncode}:\n'
        f'{result.stdout[-4000:]}\n{result.stderr[-4000:]}')
    return result


@pytest.fixture(scope='module')
def root(tmp_path_factory) -> Path:
    for tool in ('systemd-sysusers', 'systemd-tmpfiles', 'systemd-analyze'):
        _tool(tool)
    root = tmp_path_factory.mktemp('root')
    _run_install(root)
    return root


def _security(root: Path, unit: str) -> float:
    result = subprocess.run(
        [_tool('systemd-analyze'), 'security', '--offline=true',
         f'--root={root}', '--no-pager', unit],
        capture_output=True, text=True, timeout=120, check=False)
    found = _EXPOSURE.search(result.stdout)
    assert found, f'no exposure level for {unit}:\n{result.stdout}' \
                  f'{result.stderr}'
    return float(found.group(1))


def test_venv_and_scripts(root):
    venv = root / PREFIX.lstrip('/')
    for name in [*DAEMONS, 'telemeter-expirer', 'telemeter-dbsync']:
        path = venv / 'bin' / name
        assert path.stat().st_mode & stat.S_IXUSR, path
        # The #! line names the final location, not the staging root.
        assert path.read_text().splitlines()[0] == f'#!{PREFIX}/bin/python'
    staged = str(venv)
    for path in (venv / 'bin').iterdir():
        if path.is_file() and not path.is_symlink():
            assert staged not in path.read_text(errors='replace'), path
    # The installed code runs from the venv alone.
    result = subprocess.run(
        [str(venv / 'bin' / 'python'), str(venv / 'bin' /
                                           'telemeter-collector'), '--help'],
        capture_output=True, text=True, timeout=120, check=False,
        env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'})
    assert result.returncode == 0, result.stderr
    assert '--config-file' in result.stdout
    assert (venv / 'share/doc/telemeter/production.rst').is_file()


def test_user_and_directories(root):
    passwd = (root / 'etc/passwd').read_text().splitlines()
    entry = next(line.split(':') for line in passwd
                 if line.startswith('telemeter:'))
    uid, gid, home, shell = int(entry[2]), int(entry[3]), entry[5], entry[6]
    assert uid < 1000 and home == '/var/lib/telemeter'
    assert shell == '/usr/sbin/nologin'
    assert any(line.startswith(f'telemeter:x:{gid}:')
               for line in (root / 'etc/group').read_text().splitlines())
    for rel, owner in (('var/lib/telemeter', uid), ('var/log/telemeter', uid),
                       ('etc/telemeter', 0), ('etc/telemeter/meters.d', 0)):
        info = (root / rel).stat()
        assert stat.S_IMODE(info.st_mode) == 0o750, rel
        if os.geteuid() == 0:
            assert (info.st_uid, info.st_gid) == (owner, gid), rel


def test_etc_telemeter(root):
    etc = root / 'etc/telemeter'
    for name in ('pipeline.yaml', 'event_pipeline.yaml',
                 'event_definitions.yaml', 'polling.yaml', 'telemeter.conf'):
        info = (etc / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o640, name
    assert (etc / 'pipeline.yaml').read_text() == (
        REPO / 'etc/telemeter/pipeline.yaml').read_text()
    conf = (etc / 'telemeter.conf').read_text()
    assert re.search(r'^transport_url = rabbit://', conf, re.M)
    assert re.search(
        r'^connection = sqlite:////var/lib/telemeter/telemeter\.db$', conf,
        re.M)
    secret = re.search(r'^telemetry_secret = ([0-9a-f]{64})$', conf, re.M)
    assert secret, 'no generated telemetry_secret'


def test_units_point_at_the_venv(root):
    system = root / 'etc/systemd/system'
    for name in SERVICES:
        text = (system / f'{name}.service').read_text()
        execs = re.findall(r'^ExecStart=(\S+)', text, re.M)
        assert execs == [f'{PREFIX}/bin/{name}'], execs
        assert (root / execs[0].lstrip('/')).is_file()
        assert re.search(r'^User=telemeter$', text, re.M)
        if name in DAEMONS:
            assert re.search(r'^Type=notify$', text, re.M)
            assert re.search(r'^NotifyAccess=all$', text, re.M)
    assert (system / 'telemeter-expirer.timer').is_file()


def test_units_verify(root, tmp_path):
    # verify needs the ExecStart programs and the system's own units
    # (sysinit.target, /bin/kill): check the installed units with their
    # paths moved into the temporary root, against the host's systemd.
    system = root / 'etc/systemd/system'
    units = []
    for path in sorted(system.glob('telemeter-*')):
        target = tmp_path / path.name
        target.write_text(path.read_text().replace(
            f'{PREFIX}/', f'{root}{PREFIX}/'))
        units.append(str(target))
    result = subprocess.run(
        [_tool('systemd-analyze'), 'verify', '--no-pager', *units],
        capture_output=True, text=True, timeout=120, check=False)
    # verify exits 0 on unknown keys and bad values: any output is a fault.
    assert result.returncode == 0 and not (result.stdout + result.stderr), (
        result.stdout + result.stderr)


@pytest.mark.parametrize('unit', SERVICES)
def test_exposure_as_shipped(root, unit):
    exposure = _security(root, f'{unit}.service')
    assert exposure <= MAX_EXPOSURE, f'{unit}: {exposure}'


@pytest.mark.parametrize('drop_in', ['libvirt.conf', 'ipmi.conf'])
def test_exposure_with_polling_drop_in(root, drop_in):
    shared = root / PREFIX.lstrip('/') / 'share/telemeter/systemd' / drop_in
    assert f'{PREFIX}/bin/telemeter-polling' in shared.read_text() or \
        drop_in == 'libvirt.conf'
    target = root / 'etc/systemd/system/telemeter-polling.service.d'
    target.mkdir(exist_ok=True)
    shutil.copy(shared, target / drop_in)
    try:
        exposure = _security(root, 'telemeter-polling.service')
    finally:
        (target / drop_in).unlink()
    assert exposure <= MAX_EXPOSURE, f'{drop_in}: {exposure}'


def test_reinstall_keeps_operator_files(root):
    etc = root / 'etc/telemeter'
    (etc / 'pipeline.yaml').write_text('# the operator\'s pipeline\n')
    conf_before = (etc / 'telemeter.conf').read_text()
    result = _run_install(root)
    assert (etc / 'pipeline.yaml').read_text() == \
        '# the operator\'s pipeline\n'
    assert (etc / 'pipeline.yaml.dist-new').read_text() == (
        REPO / 'etc/telemeter/pipeline.yaml').read_text()
    assert (etc / 'telemeter.conf').read_text() == conf_before
    assert 'kept /etc/telemeter/pipeline.yaml' in result.stdout
