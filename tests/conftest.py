"""Suite-wide pytest hooks.

Tests are marked by where they live, so a subset can be chosen without
naming directories: ``pytest -m unit`` or ``pytest -m 'not functional'``.
"""

from __future__ import annotations

from pathlib import Path

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


_OPT_IN_DIRS = (('tests', 'functional', 'faults'),
                ('tests', 'functional', 'cluster'))


def pytest_ignore_collect(collection_path, config):
    """The fault suite (tests/functional/faults, minutes per scenario) and
    the scale-out suite on a 3-node broker cluster (tests/functional/
    cluster) run only when named: ``pytest tests/functional/faults``, ``tox
    -e faults`` or ``tox -e cluster``, never as part of ``pytest
    tests/functional``."""
    try:
        parts = collection_path.relative_to(config.rootpath).parts
    except ValueError:
        return None
    if parts[:3] not in _OPT_IN_DIRS:
        return None
    for arg in config.args:
        target = Path(arg.split('::')[0]).resolve()
        try:
            named = target.relative_to(config.rootpath).parts
        except ValueError:
            continue
        if named[:3] == parts[:3]:
            return None
    return True
