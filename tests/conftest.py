"""Suite-wide pytest hooks.

Tests are marked by where they live, so a subset can be chosen without
naming directories: ``pytest -m unit`` or ``pytest -m 'not functional'``.
"""

from __future__ import annotations

import pytest

_MARK_BY_DIR = {'unit': pytest.mark.unit, 'functional': pytest.mark.functional}


def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    for item in items:
        try:
            parts = item.path.relative_to(root).parts
        except ValueError:
            continue
        if len(parts) > 1 and parts[0] == 'tests' and parts[1] in _MARK_BY_DIR:
            item.add_marker(_MARK_BY_DIR[parts[1]])
