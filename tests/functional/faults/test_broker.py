"""The broker stopped three times for 12 s while the stream flows.

``close``: the outages 5 s apart (each outage is ~22 s from stop to ready:
~2 s to stop, 12 s down, ~8 s for ``tools/services.sh start``).
``spaced``: 40 s apart, so that a backlog builds up in the queues between
outages; about 3.5 min per option, so it is the opt-in slow tier
(``-m faults_slow``, ``tox -e faults-slow``).

Each with telemeter's default options (durable queues),
``amqp_durable_queues = false`` (oslo.messaging's default) and
``rabbit_quorum_queue = true`` on both the daemons and the sender (the
sender is an oslo.messaging Notifier built from the deployment's
configuration, i.e. an OpenStack service configured like telemeter). The
storing rate must be back to 80 % of the pre-fault rate within 30 s of the
last restart, and nothing may be lost or doubled.
"""

from __future__ import annotations

import time

import pytest

from tests.functional.faults import runner

pytestmark = pytest.mark.timeout(900)

OUTAGE_S = 12
RECOVERY_LIMIT_S = 30


def _broker_outages(scn, broker, gap: float) -> None:
    scn.wait_sent(0.1)
    scn.mark('first fault')
    for i in range(3):
        if i:
            time.sleep(gap)
        runner.stop_for(broker, OUTAGE_S, scn, f'broker {i}')


def _run(scenario, broker, options: str, gap: float, rate: float):
    scn = scenario(f'broker 3x{OUTAGE_S}s {gap:.0f}s apart, {options}',
                   broker=options)
    out = scn.run(rate=rate,
                  faults=lambda s: _broker_outages(s, broker, gap))
    normal = scn.normal_rate()
    out.recover_s = scn.counter.recovery(
        scn.marks['broker 2 up'], normal, done=out.n)
    out.notes += f'normal {normal:.0f}/s '
    scn.assert_nothing_lost_or_doubled()
    # Found by the outside run (782-2,215 per run); not seen since.
    assert scn.log_count(scn.AGENT, 'Connection pool limit exceeded') == 0
    assert out.recover_s is not None and out.recover_s <= RECOVERY_LIMIT_S, (
        f'storing rate not back to 80 % of {normal:.0f}/s within '
        f'{RECOVERY_LIMIT_S}s of the last broker restart: {out.recover_s}')


# Measured 2026-12-02 (4 runs: 1,140, 20, 275 and 20 of 20,000 lost, 0
# duplicated). Kept to show what telemeter's durable default prevents.
TRANSIENT_QUEUES = pytest.mark.xfail(strict=True, reason=(
    'amqp_durable_queues = false (oslo.messaging\'s default, not '
    'telemeter\'s): every queue is declared transient, so stopping the '
    'broker deletes <topic>.info, <topic>.sample and metering.sample with '
    'their ready and unacknowledged messages (README, "Delivery")'))
# Quorum queues once (2 of 6 runs on 2026-12-02) left already-stored
# messages counted in metering.sample / <topic>.sample after the drain.
# Since the listener releases deliveries it holds neither handled nor
# settled (messaging/settlement.py) and restarts consumers the driver lost
# (messaging/rabbit_consumers.py), no run has (every local and CI run
# since, 2026-12-02 to 2026-12-03), so the scenario is held to the same
# rule as the others;
# the runner reports ready/unacknowledged per queue if it happens again.
OPTIONS = ['defaults',
           pytest.param('transient', marks=TRANSIENT_QUEUES),
           'quorum']


@pytest.mark.parametrize('options', OPTIONS)
def test_broker_stopped_three_times_close_together(scenario, broker,
                                                   options):
    # ~80 s of faults after 10 % of the stream, the sender waiting for
    # the broker ~65 s of them: at 400 samples/s the stream ends ~20 s
    # after the last restart.
    _run(scenario, broker, options, gap=5, rate=400)


@pytest.mark.faults_slow
@pytest.mark.parametrize('options', OPTIONS)
def test_broker_stopped_three_times_40s_apart(scenario, broker, options):
    # ~155 s of faults, ~65 s of them without broker: 180 samples/s.
    _run(scenario, broker, options, gap=40, rate=180)
