"""PostgreSQL stopped for 30 s while the stream flows: the collector's
batches fail, are held and requeued, and are stored once it is back."""

from __future__ import annotations

import pytest

from tests.functional.faults import runner

pytestmark = pytest.mark.timeout(900)


def test_postgresql_stopped_30s(scenario, pg_service):
    scn = scenario('postgresql stopped 30s')

    def faults(s):
        s.wait_sent(0.2)
        s.mark('first fault')
        runner.stop_for(pg_service, 30, s, 'postgresql')

    # 400/s: the stream (50 s) outlasts the outage.
    out = scn.run(rate=400, faults=faults)
    normal = scn.normal_rate()
    out.recover_s = scn.counter.recovery(scn.marks['postgresql up'], normal,
                                         done=out.n)
    scn.assert_nothing_lost_or_doubled()
