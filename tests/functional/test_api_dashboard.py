"""The operator page in a real browser: headless Chromium (Debian's
``chromium``, installed by tools/install.sh) loads ``/dashboard`` from a
running telemeter-api with known data; the DOM it built holds the plot
of the statistics asked for, and its screenshot shows it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.functional import api_server, png
from tests.functional.test_api_cli import _store

LINE = (0x1F, 0x5F, 0xA8)   # the average line (plot.py)


def chromium() -> str:
    path = shutil.which('chromium') or shutil.which('chromium-browser')
    if path is None:
        pytest.fail('chromium is not installed: tools/install.sh installs '
                    "Debian's chromium package", pytrace=False)
    return path


def _browse(url: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [chromium(), '--headless', '--no-sandbox', '--disable-gpu',
         '--disable-dev-shm-usage', '--hide-scrollbars',
         f'--user-data-dir={cwd / "profile"}', *args, url],
        capture_output=True, text=True, timeout=120, cwd=cwd, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope='module')
def api(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('api-dashboard')
    url = f'sqlite:///{workdir / "telemeter.db"}'
    _store(workdir, url)
    server = api_server.ApiServer(workdir, url)
    server.workdir = workdir
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_page_shows_the_plot_of_the_statistics(api):
    dom = _browse(f'{api.url}/dashboard?meter=cpu_util&resource_id=r-a',
                  '--dump-dom', cwd=api.workdir)
    assert '<h2 id="title">cpu_util (r-a)</h2>' in dom
    # r-a: 10, 20, 30, 40 at 0, 30, 60, 90 min; 5-minute periods.
    assert 'data-period="300"' in dom
    assert re.findall(r'data-avg="([^"]+)"', dom) == ['10.0', '20.0',
                                                       '30.0', '40.0']
    assert re.search(r'<svg[^>]+id="plot"[^>]+data-points="4"', dom)
    assert re.findall(r'<td>(2024-03-01T[0-9:]+)</td><td>r-a</td>', dom) \
        == ['2024-03-01T01:30:00', '2024-03-01T01:00:00',
            '2024-03-01T00:30:00', '2024-03-01T00:00:00']


def test_screenshot_shows_the_plot(api):
    shot = api.workdir / 'dashboard.png'
    _browse(f'{api.url}/dashboard?meter=cpu_util', f'--screenshot={shot}',
            '--window-size=820,760', cwd=api.workdir)
    width, height, pixels = png.pixels(shot)
    assert (width, height) == (820, 760)

    def near(pixel, colour):
        return all(abs(a - b) <= 24 for a, b in zip(pixel, colour,
                                                    strict=True))
    line = sum(1 for pixel in pixels if near(pixel, LINE))
    # The average line (~700 px long, 2 px wide) and its points were
    # drawn: a page without the plot has none of its colour.
    assert line > 500, line
