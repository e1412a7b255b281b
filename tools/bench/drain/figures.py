"""The figures of a drain run and of a whole bench: rates, CPU per
message, medians per worker count, and the ratios between worker counts.
Pure functions of numbers the runs measured."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Figures whose median per worker count is reported and compared.
RATE_KEYS = ('messages_per_s', 'samples_per_s', 'events_per_s')
MEDIAN_KEYS = (*RATE_KEYS, 'drain_s', 'startup_s', 'daemon_cpu_drain_s',
               'daemon_cores', 'cpu_ms_per_message', 'max_worker_hwm_mb',
               'master_hwm_mb', 'tree_peak_rss_mb', 'broker_cpu_drain_s',
               'database_cpu_drain_s', 'bench_cpu_drain_s',
               'other_cores')


def per_second(count: float, seconds: float) -> float | None:
    """``count / seconds`` (None for a drain of no length)."""
    if seconds <= 0:
        return None
    return count / seconds


def window_outputs(expected: Mapping[str, int],
                   first_seen: Mapping[str, int]) -> dict[str, int]:
    """Outputs made during the drain window: the expected ones but those
    already there at the first look (the batch that made the first
    output was handled before the window opened)."""
    return {k: v - first_seen.get(k, 0) for k, v in expected.items()}


def window_messages(messages: int, expected: Mapping[str, int],
                    first_seen: Mapping[str, int]) -> float:
    """Messages handled during the window, in proportion to the outputs
    made in it."""
    total = sum(expected.values())
    if not total:
        return float(messages)
    made = sum(window_outputs(expected, first_seen).values())
    return messages * made / total


def drain_rates(messages: int, expected: Mapping[str, int],
                first_seen: Mapping[str, int], t_spawn: float,
                t_first: float, t_done: float) -> dict[str, Any]:
    """Start-up (spawn → first output), drain (first → last expected
    output) and the rates over the drain: ``messages_per_s`` and one
    ``<kind>_per_s`` per output kind (samples, events), counting what was
    made after the first look."""
    drain = t_done - t_first
    figures: dict[str, Any] = {
        'startup_s': round(t_first - t_spawn, 3),
        'drain_s': round(drain, 3),
        'messages_in_window': round(
            window_messages(messages, expected, first_seen), 1),
        'outputs_at_first_look': dict(first_seen),
    }
    figures['messages_per_s'] = _round(per_second(
        figures['messages_in_window'], drain))
    for kind, count in window_outputs(expected, first_seen).items():
        figures[f'{kind}_per_s'] = _round(per_second(count, drain))
    return figures


def cpu_figures(cpu_drain_s: float, drain_s: float,
                messages: float) -> dict[str, Any]:
    """The daemon's CPU over the drain: seconds, cores busy on average
    and milliseconds per message."""
    cores = per_second(cpu_drain_s, drain_s)
    return {
        'daemon_cpu_drain_s': round(cpu_drain_s, 2),
        'daemon_cores': None if cores is None else round(cores, 2),
        'cpu_ms_per_message': (round(1000 * cpu_drain_s / messages, 3)
                               if messages else None),
    }


def other_cores(machine_busy_s: float, ours_s: Iterable[float],
                drain_s: float) -> float | None:
    """Cores that processes other than those the bench accounts for
    (daemon, servers, the bench itself) kept busy during the drain: the
    machine is shared."""
    rest = per_second(machine_busy_s - sum(ours_s), drain_s)
    return None if rest is None else round(max(rest, 0.0), 2)


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None (None if none are)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def medians_by_workers(runs: Sequence[Mapping[str, Any]],
                       keys: Sequence[str] = MEDIAN_KEYS
                       ) -> dict[int, dict[str, float | None]]:
    """Per worker count, the median of each figure over its complete
    runs."""
    counts = sorted({int(r['workers']) for r in runs})
    result = {}
    for workers in counts:
        done = [r for r in runs
                if int(r['workers']) == workers and r.get('complete')]
        result[workers] = {k: _round(median(r.get(k) for r in done), 3)
                           for k in keys}
    return result


def ratio(numerator: float | None,
          denominator: float | None) -> float | None:
    """``numerator / denominator`` to 3 places (None if either is
    missing or the denominator is 0)."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def scaling_ratios(medians: Mapping[int, Mapping[str, float | None]],
                   keys: Sequence[str] = (*RATE_KEYS, 'cpu_ms_per_message',
                                          'daemon_cores')
                   ) -> dict[str, dict[str, float | None]]:
    """The median figures of every worker count over those of the
    smallest one: ``{"2/1": {"messages_per_s": 1.8, ...}}``."""
    if not medians:
        return {}
    base = min(medians)
    return {f'{workers}/{base}': {k: ratio(medians[workers].get(k),
                                           medians[base].get(k))
                                  for k in keys}
            for workers in sorted(medians) if workers != base}


def run_order(workers: Sequence[int], rounds: int) -> list[int]:
    """The worker count of each run: every count in turn, ``rounds``
    times (1, 2, 1, 2, ...), so that drift on a shared machine hits
    them alike."""
    return [w for _ in range(rounds) for w in workers]


def _round(value: float | None, places: int = 1) -> float | None:
    return None if value is None else round(value, places)
