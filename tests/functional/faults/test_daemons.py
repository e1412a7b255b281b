"""SIGKILL of the notification agent and of the collector mid-stream (the
whole process group: no graceful anything), each started again.

Whatever was delivered and not acknowledged is redelivered to the new
process: the polled samples keep their ids, samples from meter definitions
get ids derived from the notification's message id, so storage keeps each
once.
"""

from __future__ import annotations

import time

import pytest

from tests.functional.faults import runner

pytestmark = pytest.mark.timeout(900)


@pytest.mark.parametrize('daemon', [runner.Scenario.AGENT,
                                    runner.Scenario.COLLECTOR])
def test_sigkill_mid_stream(scenario, daemon):
    scn = scenario(f'SIGKILL {daemon.removeprefix("telemeter-")}')

    def faults(s):
        s.wait_sent(0.3)
        # Mid-batch: samples are flowing into the database right now.
        before = s.counter.total() or 0
        s.wait_stored(before + 1)
        s.mark('first fault')
        time.sleep(0.2)
        s.kill_and_restart(daemon)
        s.mark(f'{daemon} up')

    out = scn.run(rate=600, faults=faults)
    out.recover_s = scn.counter.recovery(scn.marks[f'{daemon} up'],
                                         scn.normal_rate(), done=out.n)
    assert len([d for d in scn.dep.daemons if d.name == daemon]) == 2
    scn.assert_nothing_lost_or_doubled()
