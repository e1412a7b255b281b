"""Control run: the stream with no fault at all.

If this fails, the harness or the plain path is broken and no other row of
the fault table means anything.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(900)


def test_no_fault(scenario):
    scn = scenario('control: no fault')
    scn.run(rate=2000)
    scn.assert_nothing_lost_or_doubled()
