"""The operator page, ``GET /dashboard`` (``GET /`` in a browser):
pick a meter and optionally a resource, see its statistics over time as
a plot and its latest samples in a table.

Rendered on the server as HTML with inline SVG (:mod:`.plot`), so it
needs no script and no build step; it goes through the same auth and
project scoping as the API (send the token in ``X-Auth-Token``, or run
with ``[api] auth_mode = noauth``). The period is chosen from the time
range of the matching samples, about :data:`TARGET_POINTS` points.
"""

from __future__ import annotations

import datetime
import html
import urllib.parse
from typing import Any

import webob

from telemeter import storage
from telemeter.api import context, errors, plot

PERIODS = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
           86400, 7 * 86400, 30 * 86400)
TARGET_POINTS = 60
LATEST = 20
STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
form { margin-bottom: 1em; } select, button { margin-right: .5em; }
table { border-collapse: collapse; margin-top: 1em; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
.empty { color: #a00; }
"""


def choose_period(seconds: float) -> int:
    """The shortest period giving at most :data:`TARGET_POINTS` points."""
    for period in PERIODS:
        if seconds / period <= TARGET_POINTS:
            return period
    return PERIODS[-1]


def _options(name: str, values: list[str], chosen: str | None,
             blank: str | None = None) -> str:
    items = [f'<option value="">{html.escape(blank)}</option>'] \
        if blank is not None else []
    for value in values:
        selected = ' selected' if value == chosen else ''
        items.append(f'<option value="{html.escape(value)}"{selected}>'
                     f'{html.escape(value)}</option>')
    return (f'<select name="{name}" id="{name}">' + ''.join(items)
            + '</select>')


def _statistics(ctx: context.Context, meter: str,
                resource: str | None) -> tuple[int | None, list[dict],
                                               str | None]:
    project = ctx.limited_project
    sample_filter = storage.SampleFilter(meter=meter, resource=resource,
                                         project=project)
    overall = list(ctx.metering.get_meter_statistics(sample_filter))
    if not overall:
        return None, [], None
    first = min(stat.duration_start for stat in overall)
    last = max(stat.duration_end for stat in overall)
    period = choose_period((last - first).total_seconds())
    # Periods are [start, end): one more keeps the last sample in.
    sample_filter = storage.SampleFilter(
        meter=meter, resource=resource, project=project,
        start_timestamp=first,
        end_timestamp=last + datetime.timedelta(seconds=period))
    points = [{'start': stat.period_start, 'avg': stat.avg,
               'min': stat.min, 'max': stat.max, 'count': stat.count}
              for stat in ctx.metering.get_meter_statistics(
                  sample_filter, period)]
    return period, points, overall[0].unit


def _latest_table(ctx: context.Context, meter: str,
                  resource: str | None) -> str:
    sample_filter = storage.SampleFilter(meter=meter, resource=resource,
                                         project=ctx.limited_project)
    rows = []
    for sample in ctx.metering.get_samples(sample_filter, limit=LATEST):
        rows.append('<tr>' + ''.join(
            f'<td>{html.escape(str(cell))}</td>' for cell in (
                sample.timestamp.isoformat(), sample.resource_id,
                sample.counter_volume, sample.counter_unit or '',
                sample.project_id or '')) + '</tr>')
    return ('<table id="latest"><thead><tr><th>Timestamp (UTC)</th>'
            '<th>Resource</th><th>Volume</th><th>Unit</th><th>Project</th>'
            '</tr></thead><tbody>' + ''.join(rows) + '</tbody></table>')


def page(ctx: context.Context) -> webob.Response:
    """``GET /dashboard?meter=<name>&resource_id=<id>``."""
    ctx.enforce('compute_statistics')
    ctx.enforce('get_samples')
    meter = ctx.param('meter') or None
    resource = ctx.param('resource_id') or None
    project = ctx.limited_project
    limit = ctx.conf.api.max_api_return_limit
    names = sorted({m.name for m in ctx.metering.get_meters(
        project=project, unique=True, limit=limit)})
    if meter is None and names:
        meter = names[0]
    if meter is not None and meter not in names:
        raise errors.BadRequest('meter', f'no meter {meter!r}')
    resources = sorted({m.resource_id for m in ctx.metering.get_meters(
        project=project, limit=limit) if m.name == meter})
    body: list[str] = [
        '<h1>telemeter</h1>',
        '<form method="get" action="dashboard">',
        '<label for="meter">Meter</label> ',
        _options('meter', names, meter), ' ',
        '<label for="resource_id">Resource</label> ',
        _options('resource_id', resources, resource, blank='(all)'),
        '<button type="submit">Show</button></form>']
    if meter is not None:
        period, points, unit = _statistics(ctx, meter, resource)
        title = f'{meter} ({resource or "all resources"})'
        body.append(f'<h2 id="title">{html.escape(title)}</h2>')
        if period is not None:
            query = urllib.parse.urlencode(
                {'period': period} | ({'q.field': 'resource_id',
                                       'q.value': resource}
                                      if resource else {}))
            body.append(f'<p id="period" data-period="{period}">Average, '
                        f'min and max per {period} s '
                        f'(<a href="v2/meters/{urllib.parse.quote(meter)}'
                        f'/statistics?{html.escape(query)}">JSON</a>)</p>')
        body.append(plot.svg(points, unit, title))
        body.append(f'<h2>Latest {LATEST} samples</h2>')
        body.append(_latest_table(ctx, meter, resource))
    else:
        body.append('<p class="empty">No meter has samples yet.</p>')
    text = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<title>telemeter</title><style>' + STYLE + '</style></head>'
            '<body>' + '\n'.join(body) + '</body></html>')
    return webob.Response(body=text.encode(), content_type='text/html',
                          charset='UTF-8')


def routes() -> list[tuple[str, str, Any]]:
    """The page's route."""
    return [('/dashboard', 'GET', page)]


ROUTES = routes()
