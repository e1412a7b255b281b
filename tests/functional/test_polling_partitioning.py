"""Two real polling agents share 100 static resources through tooz over a
real Redis: each resource is polled by exactly one of them per cycle, and
when one agent is killed the other polls all 100 within two cycles.

The resources are hardware resources ``{resource_id: res-N, resource_url:
<snmpd>}`` of the ``hardware.memory.total`` meter, so every polled resource
yields exactly one sample whose resource id names it. Each agent sends on
its own notification topic; a listener per topic in the test records which
agent polled what, and a cycle is one pollster call (one timestamp).
"""

from __future__ import annotations

import collections
import signal
import threading
import time
import uuid

import oslo_messaging
import pytest

from telemeter import messaging
from tests.functional import daemons

RESOURCES = [f'res-{i:03d}' for i in range(100)]
INTERVAL = 8


class Recorder:
    """Samples received per agent: {agent: {timestamp: set(resource ids)}}.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cycles: dict[str, dict[str, set[str]]] = collections.defaultdict(
            lambda: collections.defaultdict(set))

    def endpoint(self, agent: str):
        recorder = self

        class Endpoint:
            def sample(self, messages):
                with recorder.lock:
                    for message in messages:
                        for s in message['payload']['samples']:
                            recorder.cycles[agent][s['timestamp']].add(
                                s['resource_id'])

        return Endpoint()

    def last_cycles(self, agent: str, count: int) -> list[set[str]]:
        """The ``count`` latest complete cycles of ``agent`` (the newest one
        may still be arriving, so it is left out)."""
        with self.lock:
            stamps = sorted(self.cycles[agent])
            return [set(self.cycles[agent][t])
                    for t in stamps[-count - 1:-1]]

    def cycle_count(self, agent: str) -> int:
        with self.lock:
            return len(self.cycles[agent])


def _polling_yaml(snmpd_target: str) -> str:
    lines = ['sources:', '  - name: shared', f'    interval: {INTERVAL}',
             '    meters: [hardware.memory.total]', '    resources:']
    lines += [f'      - {{resource_id: {r}, resource_url: "{snmpd_target}"}}'
              for r in RESOURCES]
    return '\n'.join(lines) + '\n'


@pytest.fixture
def agents(tmp_path, rabbit_url, redis_url, snmpd_target):
    prefix = f'partition-test-{uuid.uuid4().hex[:8]}'
    # Heartbeat every 1 s (lock_timeout), membership expires 6 s after the
    # last one (room for a heartbeat delayed on a loaded machine); hash
    # rings follow membership every second.
    backend = f'{redis_url}?membership_timeout=6&lock_timeout=1'
    extra = (f'[coordination]\nbackend_url = {backend}\n'
             f'check_watchers = 1\n'
             f'[polling]\npartitioning_group_prefix = {prefix}\n')
    recorder = Recorder()
    deployments, listeners = {}, []
    try:
        for name in ('a', 'b'):
            dep = daemons.Deployment(tmp_path / name, rabbit_url,
                                     polling=_polling_yaml(snmpd_target),
                                     extra_conf=extra)
            deployments[name] = dep
            transport = messaging.get_transport(dep.conf(), rabbit_url)
            listener = messaging.get_batch_notification_listener(
                transport, [oslo_messaging.Target(
                    topic=dep.notification_topic)],
                [recorder.endpoint(name)], batch_size=100, batch_timeout=1)
            listener.start()
            listeners.append(listener)
        for dep in deployments.values():
            dep.agent = dep.start('telemeter-polling',
                                  '--polling-namespaces', 'central')
        yield deployments, recorder
    finally:
        for dep in deployments.values():
            dep.cleanup()
        messaging.stop_listeners(listeners)
        messaging.cleanup()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f'{what} not reached within {timeout}s')


def _split(recorder: Recorder, cycles: int = 2) -> bool:
    """The last ``cycles`` cycles of both agents partition the 100."""
    a, b = (recorder.last_cycles(n, cycles) for n in ('a', 'b'))
    if len(a) < cycles or len(b) < cycles:
        return False
    return all(x and y and x.isdisjoint(y) and x | y == set(RESOURCES)
               for x, y in zip(a, b, strict=True))


@pytest.mark.timeout(240)
def test_two_agents_poll_each_resource_once_and_take_over(agents):
    deployments, recorder = agents
    for dep in deployments.values():
        dep.agent.wait_for_log('Joined partitioned group', timeout=60)

    # Steady state: for two consecutive cycles each, the agents' shares
    # are disjoint, both non-empty, and together exactly the 100.
    _wait(lambda: _split(recorder, 2), 10 * INTERVAL,
          'a stable split of the 100 resources')
    share_a = recorder.last_cycles('a', 1)[0]
    share_b = recorder.last_cycles('b', 1)[0]
    assert len(share_a) + len(share_b) == 100
    # The split stays the same while both live (no resource moves).
    seen = recorder.cycle_count('a')
    _wait(lambda: recorder.cycle_count('a') >= seen + 1, 3 * INTERVAL,
          'one more cycle of agent a')
    assert recorder.last_cycles('a', 1)[0] == share_a
    for name in ('a', 'b'):
        for cycle in recorder.last_cycles(name, 2):
            assert len(cycle) < 100, f'agent {name} polled everything'

    # SIGKILL agent b (no goodbye): its tooz membership expires after 6 s,
    # agent a's ring follows within 1 s more; so within two cycles of a
    # (2 x 8 s), a polls all 100.
    deployments['b'].agent.kill()
    killed_at = time.monotonic()
    start = recorder.cycle_count('a')
    _wait(lambda: any(c == set(RESOURCES)
                      for c in recorder.last_cycles('a', 1)),
          3 * INTERVAL + 5, 'agent a polling all 100 after b was killed')
    cycles_needed = recorder.cycle_count('a') - 1 - start
    assert cycles_needed <= 2, (
        f'agent a needed {cycles_needed} cycles '
        f'({time.monotonic() - killed_at:.1f}s) to take over')
    assert deployments['a'].agent.alive()


@pytest.mark.timeout(240)
def test_a_stopped_agent_leaves_at_once(agents):
    deployments, recorder = agents
    _wait(lambda: _split(recorder, 1), 10 * INTERVAL,
          'a split of the 100 resources')
    code, _ = deployments['b'].agent.stop(signal.SIGTERM)
    assert code == 0
    assert 'Coordination backend stopped' in deployments['b'].agent.log()
    start = recorder.cycle_count('a')
    _wait(lambda: any(c == set(RESOURCES)
                      for c in recorder.last_cycles('a', 1)),
          3 * INTERVAL, 'agent a polling all 100 after b stopped')
    assert recorder.cycle_count('a') - 1 - start <= 2
