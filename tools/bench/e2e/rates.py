"""Rate figures from time series: cumulative counters, event times in a
window, 5 s bins and their variation, queue growth and flatness."""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable, Sequence


def counter_at(series: Sequence[tuple[float, float]], when: float) -> float:
    """A cumulative counter at time ``when``, linearly interpolated from
    ``(time, value)`` points sorted by time (clamped at both ends)."""
    if not series:
        return 0.0
    times = [t for t, _ in series]
    index = bisect.bisect_left(times, when)
    if index == 0:
        return float(series[0][1])
    if index >= len(series):
        return float(series[-1][1])
    (t0, v0), (t1, v1) = series[index - 1], series[index]
    if t1 == t0:
        return float(v1)
    return v0 + (v1 - v0) * (when - t0) / (t1 - t0)


def counter_rate(series: Sequence[tuple[float, float]], start: float,
                 end: float) -> float:
    """Mean rate of a cumulative counter between ``start`` and ``end``."""
    if end <= start:
        return 0.0
    return (counter_at(series, end) - counter_at(series, start)) / (
        end - start)


def count_in_window(times: Iterable[float], start: float,
                    end: float) -> int:
    """How many events happened in ``[start, end)``."""
    return sum(1 for t in times if start <= t < end)


def binned(times: Iterable[float], start: float, end: float,
           width: float = 1.0) -> list[int]:
    """Event counts in consecutive ``width``-second bins of the window
    ``[start, end)`` (a last partial bin is dropped)."""
    bins = [0] * int((end - start) // width)
    for t in times:
        index = int((t - start) // width)
        if 0 <= index < len(bins) and t >= start:
            bins[index] += 1
    return bins


def variation(values: Sequence[float]) -> float | None:
    """Coefficient of variation (stdev / mean), None when undefined."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean == 0:
        return None
    return statistics.stdev(values) / mean


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(x, y)`` points (None for < 2 x values)."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den


def is_flat(growth: float | None, offered_per_s: float) -> bool | None:
    """Whether a queue's growth (messages/s) is small against the
    messages offered per second (±2 % + 1 message/s)."""
    if growth is None:
        return None
    return abs(growth) <= 0.02 * offered_per_s + 1.0


def after_rate(times: Sequence[float], start: float) -> float:
    """Events per second from ``start`` to the last event after it (the
    drain rate; 0 when nothing happened after ``start``)."""
    later = [t for t in times if t >= start]
    if not later or max(later) <= start:
        return 0.0
    return len(later) / (max(later) - start)


def window_rate(times: Iterable[float], start: float, end: float) -> float:
    """Events per second in ``[start, end)``."""
    if end <= start:
        return 0.0
    return count_in_window(times, start, end) / (end - start)


def steady_window(first_sent: float, warmup: float,
                  duration: float) -> tuple[float, float]:
    """The window the figures are taken over: the ``duration`` seconds
    after the ``warmup`` seconds that follow the first notification
    sent."""
    start = first_sent + warmup
    return start, start + duration


def recent_rate(counts: Sequence[tuple[float, int, int]],
                span: float = 10.0) -> float:
    """Stored samples per second over the last ``span`` seconds of the
    ``(time, samples, events)`` table counts."""
    if len(counts) < 2:
        return 0.0
    end = counts[-1]
    start = next((c for c in counts if c[0] >= end[0] - span), counts[0])
    if end[0] <= start[0]:
        return 0.0
    return (end[1] - start[1]) / (end[0] - start[0])


def counts_settled(counts: Sequence[tuple[float, int, int]],
                   settle: float) -> bool:
    """Whether the table counts have not changed for ``settle`` seconds
    (and have been taken for that long)."""
    if not counts:
        return False
    last = counts[-1]
    since = [c for c in counts if c[0] >= last[0] - settle]
    return (last[0] - counts[0][0] >= settle
            and all(c[1:] == last[1:] for c in since))
