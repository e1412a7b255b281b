"""A statistics plot as inline SVG, rendered on the server (no script,
no build step): the average per period as a line with points, the
min-max range as a band, time on the x axis, the unit on the y axis."""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 48, 16, 40


def _scale(value: float, low: float, high: float, start: float,
           end: float) -> float:
    if high == low:
        return (start + end) / 2
    return start + (value - low) / (high - low) * (end - start)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high == low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + step * index for index in range(count)]


def _number(value: float) -> str:
    return f'{value:.4g}'


def svg(points: Sequence[dict[str, Any]], unit: str | None,
        title: str) -> str:
    """The SVG of ``points``: dicts with ``start`` (datetime), ``avg``,
    ``min``, ``max`` and ``count``."""
    if not points:
        return ('<p class="empty">No samples match: nothing to plot.</p>')
    times = [point['start'].replace(tzinfo=datetime.UTC).timestamp()
             for point in points]
    lows = [point['min'] for point in points]
    highs = [point['max'] for point in points]
    t0, t1 = min(times), max(times)
    v0, v1 = min(lows), max(highs)
    if v0 == v1:
        v0, v1 = v0 - 1, v1 + 1

    def xy(when: float, value: float) -> tuple[float, float]:
        return (_scale(when, t0, t1, LEFT, WIDTH - RIGHT),
                _scale(value, v0, v1, HEIGHT - BOTTOM, TOP))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="plot" '
             f'width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{html.escape(title)}" '
             f'data-points="{len(points)}">']
    band = [xy(t, high) for t, high in zip(times, highs, strict=True)]
    band += [xy(t, low) for t, low in reversed(list(zip(times, lows,
                                                        strict=True)))]
    parts.append('<polygon class="range" fill="#cfe3f7" points="'
                  + ' '.join(f'{x:.1f},{y:.1f}' for x, y in band) + '"/>')
    line = [xy(t, point['avg']) for t, point in zip(times, points,
                                                    strict=True)]
    parts.append('<polyline class="avg" fill="none" stroke="#1f5fa8" '
                 'stroke-width="2" points="'
                 + ' '.join(f'{x:.1f},{y:.1f}' for x, y in line) + '"/>')
    for (x, y), point in zip(line, points, strict=True):
        parts.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" '
            f'fill="#1f5fa8" data-avg="{point["avg"]!r}" '
            f'data-start="{point["start"].isoformat()}">'
            f'<title>{point["start"].isoformat()}: avg '
            f'{_number(point["avg"])} ({point["count"]} samples)'
            '</title></circle>')
    # Axes and labels.
    parts.append(f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" '
                 f'x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
                 'stroke="#444"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" '
                 f'y2="{HEIGHT - BOTTOM}" stroke="#444"/>')
    for value in _ticks(v0, v1):
        _, y = xy(t0, value)
        parts.append(f'<text class="ytick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end" font-size="11">{_number(value)}'
                     '</text>')
    for when in _ticks(t0, t1, 4 if t1 > t0 else 1):
        x, _ = xy(when, v0)
        label = datetime.datetime.fromtimestamp(
            when, datetime.UTC).strftime('%m-%d %H:%M')
        parts.append(f'<text class="xtick" x="{x:.1f}" '
                     f'y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                     f'font-size="11">{label}</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}" font-size="11">'
                 f'UTC; unit: {html.escape(unit or "")}</text>')
    parts.append('</svg>')
    return '\n'.join(parts)
