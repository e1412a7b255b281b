#!/usr/bin/env python3
"""The mypy ratchet of issue 16: the count of mypy errors may only go down.

Runs mypy over ``telemeter/`` with the project's configuration
(``[tool.mypy]`` in pyproject.toml), counts the errors per area - each
package directly under ``telemeter/`` (``telemeter/storage``, ...) and each
top-level module (``telemeter/sample.py``, ...) - and compares the counts
with the committed baseline, ``tools/mypy-ratchet.json``::

    python tools/mypy_ratchet.py            # check (tox -e mypy)
    python tools/mypy_ratchet.py --update   # write today's counts

Exit codes: 0 when no area has more errors than its baseline (fewer is
fine, and the output says how to lower the baseline); 1 when an area went
up (the message names it and lists that area's errors); 2 when mypy is
not installed, stops without finishing (a crash, a syntax error, a bad
configuration) or its output cannot be read, or the baseline is missing or
malformed.

An area that is not in the baseline (a new package) counts as 0 there.
``--update`` rewrites the baseline with the current counts, zeros
included; commit it with the change that lowered them. A cold run takes
25-35 s on the 2-core development machine, 1-2 s with ``.mypy_cache``
warm (measured with mypy 2.4.1, 195 files).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = 'telemeter'
BASELINE = REPO / 'tools' / 'mypy-ratchet.json'
CONFIG = REPO / 'pyproject.toml'
#: The area of errors reported in files outside ``telemeter/``.
OTHER = '(outside telemeter/)'
#: Seconds between two "still running" lines while mypy works.
HEARTBEAT = 10.0

EXIT_OK = 0
EXIT_UP = 1
EXIT_BROKEN = 2

# path:line[:column[:end_line:end_column]]: severity: message
_DIAGNOSTIC = re.compile(
    r'^(?P<path>[^\s:][^:]*):(?P<line>\d+)(?::\d+)*: '
    r'(?P<severity>error|warning|note): ')
_SUMMARY = re.compile(r'^Found (?P<errors>\d+) errors? in \d+ files?\b')
_SUCCESS = re.compile(r'^Success: no issues found\b')
_CODE = re.compile(r'\[(?P<code>[a-z0-9-]+)\]\s*$')


class RatchetError(Exception):
    """mypy or the baseline cannot be used; the ratchet exits with 2."""


@dataclasses.dataclass
class MypyReport:
    """The errors of one mypy run, counted per area."""

    counts: Counter[str]
    #: Per area: its error lines, each followed by its notes.
    lines: dict[str, list[str]]
    #: The count mypy printed in its summary line (0 for "Success"), or
    #: None when there was no summary line.
    summary_total: int | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclasses.dataclass(frozen=True)
class Row:
    """One area's line of the table."""

    area: str
    baseline: int
    now: int

    @property
    def delta(self) -> int:
        return self.now - self.baseline


@dataclasses.dataclass(frozen=True)
class Baseline:
    areas: dict[str, int]
    mypy_version: str | None

    @property
    def total(self) -> int:
        return sum(self.areas.values())


def area_of(path: str, root: Path = REPO) -> str:
    """The area of a file named in mypy's output.

    ``telemeter/storage/impl_sqlalchemy.py`` -> ``telemeter/storage``,
    ``telemeter/sample.py`` -> ``telemeter/sample.py``; a path outside the
    package -> :data:`OTHER`.
    """
    path = path.replace('\\', '/')
    if path.startswith('/'):
        try:
            path = Path(path).relative_to(root).as_posix()
        except ValueError:
            return OTHER
    parts = [p for p in path.split('/') if p not in ('', '.')]
    if len(parts) < 2 or parts[0] != PACKAGE:
        return OTHER
    return '/'.join(parts[:2])


def areas_on_disk(root: Path = REPO) -> list[str]:
    """Every package directly under telemeter/ and every top-level module."""
    package = root / PACKAGE
    areas = [f'{PACKAGE}/{p.name}' for p in package.iterdir()
             if (p.is_dir() and (p / '__init__.py').is_file())
             or (p.is_file() and p.suffix in ('.py', '.pyi'))]
    return sorted(areas)


def parse_output(text: str, root: Path = REPO) -> MypyReport:
    """Count the ``error:`` lines of mypy's output per area.

    A ``note:`` belongs to the error before it (it is kept for display,
    not counted); warnings and lines that are not diagnostics are ignored.
    """
    counts: Counter[str] = Counter()
    lines: dict[str, list[str]] = {}
    summary_total: int | None = None
    last_area: str | None = None
    for line in text.splitlines():
        match = _DIAGNOSTIC.match(line)
        if match:
            severity = match['severity']
            if severity == 'error':
                last_area = area_of(match['path'], root)
                counts[last_area] += 1
                lines.setdefault(last_area, []).append(line)
            elif severity == 'note' and last_area is not None:
                lines[last_area].append(line)
            continue
        summary = _SUMMARY.match(line)
        if summary:
            summary_total = int(summary['errors'])
        elif _SUCCESS.match(line):
            summary_total = 0
    return MypyReport(counts, lines, summary_total)


def compare(baseline: Mapping[str, int], now: Mapping[str, int],
            areas: Iterable[str] = ()) -> list[Row]:
    """One row per area named in either mapping or in ``areas``, sorted.

    An area missing from one side counts as 0 there.
    """
    names = set(baseline) | set(now) | set(areas)
    return [Row(name, baseline.get(name, 0), now.get(name, 0))
            for name in sorted(names)]


def went_up(rows: Iterable[Row]) -> list[Row]:
    return [row for row in rows if row.delta > 0]


def went_down(rows: Iterable[Row]) -> list[Row]:
    return [row for row in rows if row.delta < 0]


def format_table(rows: Sequence[Row]) -> str:
    """The table of areas and the total: area, baseline, now, delta."""
    total = Row('total', sum(r.baseline for r in rows),
                sum(r.now for r in rows))
    width = max(len('area'), *(len(r.area) for r in rows), len(total.area))
    head = f'{"area":<{width}}  {"baseline":>8}  {"now":>5}  {"delta":>5}'
    out = [head, '-' * len(head)]
    for row in [*rows, None, total]:
        if row is None:
            out.append('-' * len(head))
            continue
        delta = f'{row.delta:+d}' if row.delta else '0'
        mark = '  UP' if row.delta > 0 else '  down' if row.delta < 0 else ''
        out.append(f'{row.area:<{width}}  {row.baseline:>8}  {row.now:>5}'
                   f'  {delta:>5}{mark}')
    return '\n'.join(out)


def load_baseline(path: Path) -> Baseline:
    """Read the baseline file; :class:`RatchetError` if absent or bad."""
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise RatchetError(
            f'no baseline at {path}: create it with '
            f'`python tools/mypy_ratchet.py --update` and commit it'
        ) from None
    except (OSError, ValueError) as exc:
        raise RatchetError(f'cannot read the baseline {path}: {exc}') from exc
    areas = data.get('areas') if isinstance(data, dict) else None
    if not isinstance(areas, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0
            for k, v in areas.items()):
        raise RatchetError(
            f'malformed baseline {path}: "areas" must map each area to a '
            f'count >= 0; rewrite it with --update')
    baseline = Baseline(dict(areas), data.get('mypy'))
    if data.get('total') != baseline.total:
        raise RatchetError(
            f'malformed baseline {path}: "total" is {data.get("total")!r} '
            f'but the areas add up to {baseline.total}; rewrite it with '
            f'--update')
    return baseline


def write_baseline(path: Path, counts: Mapping[str, int],
                   areas: Iterable[str], mypy_version: str | None) -> None:
    """Write the counts of every area (zeros included) and their total."""
    all_areas = dict.fromkeys(areas, 0)
    all_areas.update(counts)
    data = {
        'comment': 'mypy errors per area of telemeter/; the counts may '
                   'only go down. Checked by tools/mypy_ratchet.py, '
                   'rewritten by tools/mypy_ratchet.py --update.',
        'mypy': mypy_version,
        'total': sum(all_areas.values()),
        'areas': dict(sorted(all_areas.items())),
    }
    path.write_text(json.dumps(data, indent=2) + '\n', encoding='utf-8')


def mypy_version() -> str:
    """The installed mypy's version; :class:`RatchetError` if none."""
    if importlib.util.find_spec('mypy') is None:
        raise RatchetError(
            f'mypy is not installed in {sys.prefix} ({sys.executable}): '
            f'pip install -r test-requirements.txt (tools/install.sh and '
            f'`tox -e mypy` install it)')
    from mypy import version
    return version.__version__


def run_mypy(root: Path = REPO) -> tuple[str, float]:
    """Run mypy as configured; its stdout and the seconds it took.

    Prints a line every :data:`HEARTBEAT` seconds while it runs.
    :class:`RatchetError` when it does not finish its check.
    """
    cmd = [sys.executable, '-m', 'mypy', '--config-file', str(CONFIG),
           '--no-pretty', '--no-color-output', '--show-error-codes',
           '--error-summary']
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    while True:
        try:
            out, err = proc.communicate(timeout=HEARTBEAT)
            break
        except subprocess.TimeoutExpired:
            print(f'    ... mypy still running '
                  f'({time.monotonic() - start:.0f} s)', flush=True)
    seconds = time.monotonic() - start
    if proc.returncode not in (0, 1) or 'INTERNAL ERROR' in out + err:
        raise RatchetError(
            f'mypy did not finish its check (exit code {proc.returncode}; '
            f'a crash, a syntax error or a bad configuration):\n'
            f'{out}{err}'.rstrip())
    if err.strip():
        print(err.rstrip(), file=sys.stderr)
    return out, seconds


def check_report(report: MypyReport, output: str) -> None:
    """:class:`RatchetError` if the counted errors are not mypy's own."""
    if report.summary_total is None:
        raise RatchetError(
            'no summary line ("Found N errors" / "Success") in mypy\'s '
            'output, so it cannot be trusted:\n' + output.rstrip())
    if report.summary_total != report.total:
        raise RatchetError(
            f'mypy reported {report.summary_total} errors but '
            f'{report.total} error lines were read from its output; the '
            f'parser of tools/mypy_ratchet.py needs fixing:\n'
            + output.rstrip())


def verdict(rows: Sequence[Row], report: MypyReport,
            baseline: Baseline, version: str | None) -> tuple[int, str]:
    """The exit code and the closing message of a check."""
    up = went_up(rows)
    down = went_down(rows)
    if up:
        names = ', '.join(f'{r.area} ({r.baseline} -> {r.now})' for r in up)
        msg = [f'mypy ratchet FAILED: more errors than the baseline in '
               f'{names}.']
        for row in up:
            msg.append(f'\nThe {row.now} errors of {row.area} (the new ones '
                       f'are among them):')
            msg.extend(f'    {line}'
                       for line in report.lines.get(row.area, []))
        codes = {m['code'] for row in up
                 for line in report.lines.get(row.area, [])
                 if (m := _CODE.search(line))}
        if codes & {'import-not-found', 'import-untyped'}:
            msg.append('\nSome are about imports: is a dependency missing '
                       'from the venv? (pip install -r requirements.txt '
                       '-r test-requirements.txt)')
        if baseline.mypy_version and version and \
                baseline.mypy_version != version:
            msg.append(f'\nThe baseline was written with mypy '
                       f'{baseline.mypy_version}; this is mypy {version}, '
                       f'which may find more.')
        msg.append('\nFix the new errors. Only if raising the count is '
                   'deliberate: `python tools/mypy_ratchet.py --update` '
                   'and commit tools/mypy-ratchet.json with the reason.')
        return EXIT_UP, '\n'.join(msg)
    if down:
        names = ', '.join(f'{r.area} ({r.baseline} -> {r.now})'
                          for r in down)
        return EXIT_OK, (
            f'mypy ratchet passed; fewer errors than the baseline in '
            f'{names}. Lower the baseline so they stay fixed: '
            f'`python tools/mypy_ratchet.py --update` and commit '
            f'tools/mypy-ratchet.json.')
    return EXIT_OK, (f'mypy ratchet passed: {report.total} errors, as in '
                     f'the baseline.')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description='Fail when mypy finds more errors in an area of '
                    'telemeter/ than tools/mypy-ratchet.json allows.')
    parser.add_argument('--update', action='store_true',
                        help='write the current counts to the baseline')
    parser.add_argument('--baseline', type=Path, default=BASELINE,
                        help='the baseline file (default: %(default)s)')
    parser.add_argument('--mypy-output', type=Path, metavar='FILE',
                        help='read this saved mypy output instead of '
                             'running mypy')
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except RatchetError as exc:
        print(f'mypy ratchet: ERROR: {exc}', file=sys.stderr)
        return EXIT_BROKEN


def _run(args: argparse.Namespace) -> int:
    baseline = None if args.update else load_baseline(args.baseline)
    version: str | None
    if args.mypy_output is not None:
        version = None
        print(f'mypy ratchet: reading mypy output from {args.mypy_output}')
        output = args.mypy_output.read_text(encoding='utf-8')
    else:
        version = mypy_version()
        print(f'mypy ratchet: running mypy {version} over {PACKAGE}/ '
              f'([tool.mypy] of pyproject.toml): 25-35 s cold, 1-2 s with '
              f'.mypy_cache warm', flush=True)
        output, seconds = run_mypy()
        print(f'mypy ratchet: mypy finished in {seconds:.1f} s', flush=True)
    report = parse_output(output)
    check_report(report, output)
    areas = areas_on_disk()

    if args.update:
        # The old counts only for the table; a broken file is replaced.
        try:
            old: Baseline | None = load_baseline(args.baseline)
        except RatchetError:
            old = None
        rows = compare(old.areas if old else {}, report.counts, areas)
        print(format_table(rows))
        write_baseline(args.baseline, report.counts, areas, version)
        print(f'\nmypy ratchet: wrote {args.baseline} '
              f'({report.total} errors).')
        for row in went_up(rows) if old else []:
            print(f'mypy ratchet: warning: this RAISES {row.area} from '
                  f'{row.baseline} to {row.now}', file=sys.stderr)
        return EXIT_OK

    assert baseline is not None
    rows = compare(baseline.areas, report.counts, areas)
    print(format_table(rows), flush=True)
    code, message = verdict(rows, report, baseline, version)
    print('\n' + message, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == '__main__':
    sys.exit(main())
