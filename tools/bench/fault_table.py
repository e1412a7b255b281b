#!/usr/bin/env python3
"""Print the fault table of issue 12 from one run of the fault suite.

    tools/bench/fault_table.py                 # table of the last run
    tools/bench/fault_table.py --run [-- PYTEST_ARGS]
                                               # run tox -e faults' tests
                                               # first, then print
    tools/bench/fault_table.py --report FILE   # another JSON report

The suite (tests/functional/faults) writes its report to
``TELEMETER_FAULTS_REPORT`` (default ``.faults-report.json``; in
``tools/run-tests.sh`` ``var/faults-report.json``). Columns: scenario,
samples stored of N (each counted once), not stored, duplicated rows,
seconds until the storing rate was back to 80 % of the pre-fault rate
after the last fault ended (or everything was stored), run time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.functional.faults import table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--report', type=Path, default=Path(
        os.environ.get('TELEMETER_FAULTS_REPORT', '.faults-report.json')))
    parser.add_argument('--run', action='store_true',
                        help='run the fault suite first')
    parser.add_argument('pytest_args', nargs='*',
                        help='after --: extra pytest arguments (with --run)')
    args = parser.parse_args(argv)
    rc = 0
    if args.run:
        env = dict(os.environ,
                   TELEMETER_FAULTS_REPORT=str(args.report.resolve()))
        rc = subprocess.run(
            [sys.executable, '-m', 'pytest', 'tests/functional/faults',
             '-m', 'not faults_slow', *args.pytest_args],
            cwd=REPO, env=env, check=False).returncode
    if not args.report.exists():
        print(f'no report at {args.report}: run the fault suite '
              f'(tox -e faults) or use --run', file=sys.stderr)
        return rc or 1
    report = json.loads(args.report.read_text())
    print(f'N = {report["n"]} samples per scenario; load average at the '
          f'end: {" ".join(report.get("loadavg_at_end", []))}')
    print(table.format_table(report['outcomes']))
    return rc


if __name__ == '__main__':
    sys.exit(main())
