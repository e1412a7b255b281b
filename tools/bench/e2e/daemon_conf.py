"""The daemons' telemeter.conf: written for the run (servers, workers,
secret, ``--conf-extra``), and files that would override the packaged
ones."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import BenchError


def write_config(path: Path, transport_url: str, database_url: str,
                 log_dir: Path, secret: str, agent_workers: int,
                 collector_workers: int, extra: list[str]) -> str:
    """The daemons' telemeter.conf: servers, log dir, workers, secret,
    plus ``section.option=value`` extras.  Returns its text."""
    sections: dict[str, list[tuple[str, str]]] = {
        'DEFAULT': [('transport_url', transport_url),
                    ('log_dir', str(log_dir))],
        'database': [('connection', database_url)],
        'collector': [('udp_address', ''),
                      ('workers', str(collector_workers))],
        'notification': [('workers', str(agent_workers))],
        'publisher': [('telemetry_secret', secret)],
    }
    for item in extra:
        section, option, value = parse_conf_extra(item)
        options = sections.setdefault(section, [])
        options[:] = [(o, v) for o, v in options if o != option]
        options.append((option, value))
    lines = ['# Written by tools/bench/e2e_bench.py: packaged defaults '
             'but for these.']
    for section, options in sections.items():
        lines.append(f'[{section}]')
        lines.extend(f'{option} = {value}' for option, value in options)
    text = '\n'.join(lines) + '\n'
    path.write_text(text)
    return text


def parse_conf_extra(item: str) -> tuple[str, str, str]:
    """``section.option=value`` → (section, option, value)."""
    key, sep, value = item.partition('=')
    section, dot, option = key.strip().rpartition('.')
    if not sep or not dot or not section or not option:
        raise BenchError(f'--conf-extra {item!r}: expected '
                         f'section.option=value, e.g. '
                         f'collector.batch_size=500')
    return section, option, value.strip()


def overriding_files() -> list[str]:
    """Files that would replace the packaged pipeline or definitions."""
    found = []
    for directory in ('/etc/telemeter', os.path.expanduser('~/.telemeter')):
        for name in ('pipeline.yaml', 'event_pipeline.yaml',
                     'event_definitions.yaml', 'meters.d'):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                found.append(path)
    return found
