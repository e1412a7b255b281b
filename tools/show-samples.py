#!/usr/bin/env python3
"""Print the newest samples stored by a telemeter deployment.

    tools/show-samples.py --config-file var/local/telemeter.conf [--limit N]
        [--meter NAME] [--resource ID]

It reads ``[database] metering_connection`` (or ``connection``) of the
configuration through the storage API, exactly as the collector writes it.
"""

from __future__ import annotations

import sys

from oslo_config import cfg

import telemeter.cmd  # noqa: F401  (quiets library warnings)
from telemeter import service, storage

CLI_OPTS = [
    # Own destinations: ``meter`` is also the name of the [meter] group.
    cfg.IntOpt('limit', default=20, min=1, dest='show_limit',
               help='How many of the newest samples to print.'),
    cfg.StrOpt('meter', dest='show_meter',
               help='Only samples of this meter.'),
    cfg.StrOpt('resource', dest='show_resource',
               help='Only samples of this resource.'),
]


def _row(values: list[str], widths: list[int]) -> str:
    return '  '.join(v.ljust(w) for v, w in zip(values, widths, strict=True))


def _volume(value: float) -> str:
    return f'{value:.0f}' if float(value).is_integer() else f'{value:.3f}'


def main() -> int:
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(CLI_OPTS)
    service.prepare_service(sys.argv, conf=conf)
    conn = storage.get_connection_from_config(conf)
    samples = list(conn.get_samples(
        storage.SampleFilter(meter=conf.show_meter,
                             resource=conf.show_resource),
        limit=conf.show_limit))
    if not samples and (conf.show_meter or conf.show_resource):
        wanted = ', '.join(f'{what} {value!r}' for what, value in (
            ('meter', conf.show_meter), ('resource', conf.show_resource))
            if value)
        meters = sorted({m.name for m in conn.get_meters()})
        known = ', '.join(meters[:30]) + (', ...' if len(meters) > 30 else '')
        print(f'No samples of {wanted}. Stored meters: {known or "none"}.',
              file=sys.stderr)
        return 1
    if not samples:
        print('No samples stored yet. The polling agent sends its first '
              'samples right after it starts; check the logs if none '
              'arrive within a minute.', file=sys.stderr)
        return 1
    header = ['timestamp (UTC)', 'meter', 'type', 'volume', 'unit',
              'resource']
    rows = [[s.timestamp.isoformat(timespec='seconds'), s.counter_name,
             s.counter_type, _volume(s.counter_volume), s.counter_unit or '',
             s.resource_id] for s in samples]
    widths = [max(len(r[i]) for r in [header, *rows])
              for i in range(len(header))]
    print(_row(header, widths))
    for row in rows:
        print(_row(row, widths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
