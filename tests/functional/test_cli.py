"""Every console script as an operator meets it: --help says what it does,
a missing config file is one line, telemeter-send-sample takes decimal
volumes, logs once and gives up on an unreachable broker."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.functional import daemons


def _console_scripts() -> list[str]:
    from importlib import metadata

    return sorted(ep.name for ep in metadata.entry_points(
        group='console_scripts') if ep.value.startswith('telemeter.'))


@pytest.mark.parametrize('name', _console_scripts())
def test_every_command_says_what_it_does(name):
    result = subprocess.run([daemons.script(name), '--help'],
                            capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    # argparse: the usage, a blank line, then the description.
    lines = result.stdout.splitlines()
    blank = lines.index('')
    description = lines[blank + 1]
    assert description[:1].isupper() and not description.startswith(
        ('options:', 'positional arguments:')), result.stdout[:400]


def test_missing_config_file_is_one_line(tmp_path):
    missing = tmp_path / 'nope.conf'
    for name, *args in (('telemeter-collector',), ('telemeter-dbsync',),
                        ('telemeter-status', 'upgrade', 'check')):
        result = subprocess.run(
            [daemons.script(name), '--config-file', str(missing), *args],
            capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2
        assert result.stderr == (f'{name}: Failed to find some config '
                                 f'files: {missing}\n')



def test_send_sample_gives_up_on_an_unreachable_broker(tmp_path):
    deployment = daemons.Deployment(tmp_path,
                                    'rabbit://guest:guest@127.0.0.1:9/')
    started = time.monotonic()
    result = subprocess.run(
        deployment.command('telemeter-send-sample', '-n', 'm', '-r', 'r',
                           '-l', '42.5', '--timeout', '3'),
        capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert result.stdout == ''
    lines = result.stderr.splitlines()
    assert lines[-1].startswith('telemeter-send-sample: the sample was not '
                                'sent within 3 s: is the message bus of '
                                '[DEFAULT] transport_url reachable?')
    # Each log line once (it was printed twice).
    logged = [line.split(' [-] ', 1)[1] for line in lines if ' [-] ' in line]
    assert logged and len(logged) == len(set(logged)), logged


def test_send_sample_takes_a_decimal_volume(tmp_path):
    deployment = daemons.Deployment(
        tmp_path, 'rabbit://guest:guest@127.0.0.1:9/',
        pipeline='sources: [{name: s, meters: ["*"], sinks: [k]}]\n'
                 'sinks: [{name: k, publishers: '
                 f'["file://{tmp_path}/out.json?json"]}}]\n')
    deployment.run('telemeter-send-sample', '-n', 'm', '-r', 'r',
                   '-l', '42.5')
    [line] = (tmp_path / 'out.json').read_text().splitlines()
    assert json.loads(line)['volume'] == 42.5
