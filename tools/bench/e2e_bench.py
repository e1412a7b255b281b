#!/usr/bin/env python3
"""End-to-end benchmark: bus → notification agent → collector → SQL.

The entry point of the ``e2e`` package next to this file.  The method
(what runs, the load, what is measured and how) is that package's
docstring: ``tools/bench/e2e/__init__.py``.  The bench runs this file
again for its sender processes (``e2e_bench.py _sender ...``).

Run (from the repository root, after ``tools/install.sh``)::

    .venv/bin/python tools/bench/e2e_bench.py --mode polling
    .venv/bin/python tools/bench/e2e_bench.py --help
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent  # holds the e2e package
REPO = HERE.parents[1]  # telemeter of this checkout before any other
for path in (HERE, REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from e2e.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
