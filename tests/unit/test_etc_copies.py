"""The YAML files shipped in etc/telemeter/ that copy a packaged file.

Operators start from the etc/ copies and the daemons fall back to the
packaged ones, so the two must not drift apart: every copy is checked
here, byte for byte.
"""

import filecmp
import pathlib

import pytest

from telemeter.pipeline import base

REPO = pathlib.Path(__file__).resolve().parents[2]
ETC = REPO / 'etc' / 'telemeter'
PACKAGED = pathlib.Path(base.DATA_DIR)

#: etc/ files with no packaged counterpart (examples only).
ETC_ONLY = {'polling_all.yaml'}
COPIES = sorted(p.name for p in ETC.glob('*.yaml') if p.name not in ETC_ONLY)


def test_the_copies_are_the_four_pipeline_files():
    assert COPIES == ['event_definitions.yaml', 'event_pipeline.yaml',
                      'pipeline.yaml', 'polling.yaml']


@pytest.mark.parametrize('name', COPIES)
def test_etc_copy_equals_the_packaged_file(name):
    assert filecmp.cmp(ETC / name, PACKAGED / name, shallow=False), (
        f'etc/telemeter/{name} differs from the packaged '
        f'{PACKAGED.relative_to(REPO)}/{name}: copy the packaged file')
