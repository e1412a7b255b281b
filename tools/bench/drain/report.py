"""What the bench prints: one line per run, then the table, the medians
per worker count and the ratios."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: (heading, key, width, format spec) of the table's columns.
COLUMNS = (
    ('run', 'run', 3, ''), ('W', 'workers', 2, ''),
    ('msg/s', 'messages_per_s', 9, ',.1f'),
    ('samples/s', 'samples_per_s', 10, ',.1f'),
    ('events/s', 'events_per_s', 9, ',.1f'),
    ('drain s', 'drain_s', 8, '.2f'), ('start s', 'startup_s', 7, '.2f'),
    ('cpu s', 'daemon_cpu_drain_s', 7, '.2f'),
    ('cores', 'daemon_cores', 5, '.2f'),
    ('ms/msg', 'cpu_ms_per_message', 7, '.3f'),
    ('master MB', 'master_hwm_mb', 9, '.1f'),
    ('worker MB', 'max_worker_hwm_mb', 9, '.1f'),
    ('broker s', 'broker_cpu_drain_s', 8, '.2f'),
    ('db s', 'database_cpu_drain_s', 6, '.2f'),
    ('bench s', 'bench_cpu_drain_s', 7, '.2f'),
    ('others', 'other_cores', 6, '.2f'),
)


def cell(value: Any, width: int, spec: str) -> str:
    """``value`` right-aligned in its column ('-' when absent)."""
    text = '-' if value is None else format(value, spec)
    return text.rjust(width)


def run_line(run: Mapping[str, Any]) -> str:
    """One run in a line (printed as the runs go)."""
    if not run.get('complete'):
        return (f"run {run['run']} ({run['workers']} worker(s)) "
                f"INCOMPLETE: seen {run.get('seen')} of {run['expected']}")
    rates = ', '.join(f'{run[k]:,.1f} {k[:-6]}/s' for k in
                      ('messages_per_s', 'samples_per_s', 'events_per_s')
                      if run.get(k) is not None)
    return (f"run {run['run']} ({run['workers']} worker(s)): {rates}; "
            f"drain {run['drain_s']:.2f} s; daemon CPU "
            f"{run['daemon_cpu_drain_s']:.2f} s ({run['daemon_cores']:.2f} "
            f"cores); broker CPU {run.get('broker_cpu_drain_s')} s; "
            f"extra {run['extra']}; left in queues "
            f"{run['left_in_queues']}; load {run['load_before']} → "
            f"{run['load_after']}")


def table(rows: list[Mapping[str, Any]]) -> list[str]:
    """The runs (or medians) as fixed-width lines."""
    lines = ['  '.join(title.rjust(width)
                       for title, _, width, _ in COLUMNS)]
    for row in rows:
        lines.append('  '.join(cell(row.get(key), width, spec)
                               for _, key, width, spec in COLUMNS))
    return lines


def shared_with(result: Mapping[str, Any]) -> str:
    """Who else uses the cores the daemon runs on."""
    servers = ('the broker and PostgreSQL' if result['daemon'] == 'collector'
               else 'the broker')
    return (f"{result['cores']} cores shared with {servers} (same box) and "
            f"whatever else runs here")


def print_result(result: Mapping[str, Any]) -> None:
    """The whole result, for people."""
    load = result['load_average']
    per = (f" of {result['per_message']} samples"
           if result.get('per_message') else '')
    print(f"\n== drain bench {result['tag']}: {result['daemon']}, "
          f"{result['n']:,} messages{per} per run, expected "
          f"{result['expected']}; {shared_with(result)} [load "
          f"{load['start']} → {load.get('end')}]")
    for line in table(result['runs']):
        print(line)
    for run in result['runs']:
        checks = {k: run.get(k) for k in ('extra', 'left_in_queues',
                                          'lost', 'duplicated',
                                          'bad_json_lines')
                  if k in run}
        print(f"  run {run['run']}: load {run['load_before']} → "
              f"{run['load_after']}; {checks}; processes "
              f"{[(p['role'], p['hwm_mb']) for p in run['processes']]}")
    print('medians per worker count:')
    medians = [dict(m, run='med', workers=w)
               for w, m in result['medians'].items()]
    for line in table(medians)[1:]:
        print(line)
    for name, ratios in result['ratios'].items():
        shown = ', '.join(f'{k} {v}' for k, v in ratios.items())
        print(f'ratio {name} workers (medians): {shown}')
    for note in result.get('notes', []):
        print(f'note: {note}')
