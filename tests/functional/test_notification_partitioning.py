"""Workload partitioning proof with real agents, RabbitMQ and Redis.

Cumulative ``cpu`` samples of many resources are fed cycle by cycle (one
polling-style notification per cycle, every resource interleaved in it) to
notification agents whose sink computes ``rate_of_change``. Each agent
publishes its rates on its own metering topic, so the test knows who
computed what.

* One agent alone gives the reference rates (checked against arithmetic).
* Two partitioned agents, then a third joining while samples keep coming:
  every rate any of them computes is exactly the reference rate for that
  resource and time, no rate is computed twice, and the only rates not
  computed are the first sample of a resource on the agent that just took
  its queue over (it has no predecessor there). Outside the hand-over the
  rates are exactly the reference.
* Control: two agents *without* partitioning split each resource's samples
  between them and compute rates the reference does not have.

Increments grow every cycle, so a rate computed over any interval but the
last one differs from the reference value.
"""

from __future__ import annotations

import datetime
import re
import time
import urllib.parse
import uuid

import kombu
import oslo_messaging
import pytest
from tooz import hashring

from telemeter import messaging
from telemeter.notification import pipe
from tests.functional import daemons
from tests.functional.fixtures import redis as redis_client

RESOURCES = [f'res-{i:02d}' for i in range(40)]
QUEUES = 24
STEP = 10  # seconds between the samples of one resource
START = datetime.datetime(2031, 3, 1)

PIPELINE = """\
sources:
  - name: {source}
    meters: [cpu]
    sinks: [rate_sink]
sinks:
  - name: rate_sink
    transformers:
      - name: rate_of_change
        parameters:
          target: {{name: cpu_rate, unit: ns/s, type: gauge}}
    publishers: ["notifier://"]
"""


def _volume(resource: int, cycle: int) -> int:
    """Cumulative value: base 10**6 * (resource + 1), then the increment
    of cycle k (k >= 1) is k * 1000 + resource + 1."""
    return 10**6 * (resource + 1) + sum(k * 1000 + resource + 1
                                        for k in range(1, cycle + 1))


def expected_rate(resource: int, cycle: int) -> float:
    """(V_k - V_(k-1)) / 10 s = (k * 1000 + resource + 1) / 10."""
    return (cycle * 1000 + resource + 1) / STEP


def _timestamp(cycle: int) -> str:
    return (START + datetime.timedelta(seconds=STEP * cycle)).isoformat()


CYCLE_OF = {_timestamp(k): k for k in range(200)}


def _cycle_payload(cycle: int) -> dict:
    return {'samples': [
        {'counter_name': 'cpu', 'counter_type': 'cumulative',
         'counter_unit': 'ns', 'counter_volume': _volume(i, cycle),
         'user_id': 'u', 'project_id': 'p', 'resource_id': name,
         'timestamp': _timestamp(cycle), 'resource_metadata': {},
         'source': 'openstack', 'message_id': str(uuid.uuid4())}
        for i, name in enumerate(RESOURCES)]}


class Rates:
    """Collects the rates every agent publishes on its metering topic."""

    def __init__(self, transport):
        self.transport = transport
        self.received: list[tuple[str, str, int, float]] = []
        self.listeners = []

    def listen(self, agent: str, topic: str) -> None:
        received = self.received

        class Endpoint:
            def sample(self, messages):
                for message in messages:
                    for item in message['payload']:
                        received.append((
                            agent, item['resource_id'],
                            CYCLE_OF[item['timestamp']],
                            item['counter_volume']))

        listener = messaging.get_batch_notification_listener(
            self.transport, [oslo_messaging.Target(topic=topic)],
            [Endpoint()], batch_size=100, batch_timeout=0.2)
        listener.start()
        self.listeners.append(listener)

    def stop(self) -> None:
        messaging.stop_listeners(self.listeners)

    def by_key(self) -> dict[tuple[str, int], list[tuple[str, float]]]:
        found: dict = {}
        for agent, resource, cycle, value in list(self.received):
            found.setdefault((resource, cycle), []).append((agent, value))
        return found

    def wait_for(self, keys: set, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if keys <= set(self.by_key()):
                return
            time.sleep(0.2)
        missing = keys - set(self.by_key())
        raise AssertionError(f'{len(missing)} rates never came, e.g. '
                             f'{sorted(missing)[:5]}')

    def settle(self, quiet: float = 2.5, timeout: float = 60.0) -> None:
        """Wait until nothing new arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        count, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if len(self.received) != count:
                count, since = len(self.received), time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.1)


class Cluster:
    """Agents sharing one notification topic (and pipeline queues)."""

    def __init__(self, tmp_path, rabbit_url, redis_url, partitioned: bool,
                 parallel: int = 64):
        tag = uuid.uuid4().hex[:8]
        self.tmp_path = tmp_path
        self.rabbit_url = rabbit_url
        self.source = f'cpu_{tag}'
        self.pipeline_name = f'{self.source}:rate_sink'
        self.event_pipeline_name = f'event:ev_{tag}:k'
        self.topic = f'notifications-{tag}'
        self.namespace = f'telemeter-test-{tag}'
        query = urllib.parse.urlencode({
            'namespace': self.namespace, 'timeout': 5, 'lock_timeout': 5,
            'membership_timeout': 5})
        self.redis_url = redis_url
        self.extra = f"""
            [DEFAULT]
            max_parallel_requests = {parallel}
            [notification]
            workload_partitioning = {str(partitioned).lower()}
            pipeline_processing_queues = {QUEUES}
            batch_size = 100
            batch_timeout = 1
            [coordination]
            backend_url = {redis_url.rstrip('/')}/?{query}
            check_watchers = 1.0
            """
        self.deployments: list[daemons.Deployment] = []
        self.agents: dict[str, daemons.Daemon] = {}
        self.rates: Rates | None = None
        self.notifier = None
        self.cleaned = False

    def deployment(self, name: str) -> daemons.Deployment:
        dep = daemons.Deployment(
            self.tmp_path / name, self.rabbit_url,
            pipeline=PIPELINE.format(source=self.source))
        dep.notification_topic = self.topic
        dep.event_pipeline_path.write_text(
            f'sources: [{{name: ev_{self.topic[-8:]}, events: ["*"], '
            f'sinks: [k]}}]\n'
            f'sinks: [{{name: k, publishers: ["notifier://"]}}]\n')
        dep.write_config(self.extra)
        self.deployments.append(dep)
        if self.rates is None:
            transport = messaging.get_transport(dep.conf(),
                                                dep.transport_url)
            self.rates = Rates(transport)
            self.notifier = messaging.get_notifier(
                transport, 'telemeter.polling', driver='messagingv2',
                topics=[self.topic])
        return dep

    def start(self, name: str) -> daemons.Daemon:
        dep = self.deployment(name)
        # Listen before the agent can publish anything.
        self.rates.listen(name, dep.metering_topic)
        agent = dep.start('telemeter-agent-notification')
        agent.wait_for_log('Notification agent listening')
        self.agents[name] = agent
        return agent

    def send_cycle(self, cycle: int) -> None:
        self.notifier.sample({}, 'telemetry.polling', _cycle_payload(cycle))

    def feed(self, cycles, pause: float = 0.5) -> None:
        """One notification per cycle; the next goes once the agents took
        the previous one off the main queue (and routed it: ``pause``).
        Cumulative samples must reach the pipeline queues in time order,
        as they do when a polling agent sends a cycle every interval."""
        for cycle in cycles:
            self.send_cycle(cycle)
            self.wait_main_queue_empty()
            time.sleep(pause)

    def wait_main_queue_empty(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _queue_depth(self.rabbit_url, f'{self.topic}.sample') == 0:
                return
            time.sleep(0.05)
        raise AssertionError('the agents stopped consuming the main queue')

    # -- ownership as the agents report it --------------------------------

    def member_ids(self) -> dict[str, bytes]:
        ids = {}
        for name, agent in self.agents.items():
            found = re.findall(r'Coordination backend started as member '
                               r'(\S+)', agent.log())
            if found:
                ids[name] = found[-1].encode()
        return ids

    def consuming(self) -> dict[str, set[int]]:
        result = {}
        for name, agent in self.agents.items():
            found = re.findall(r'Consuming pipeline queues \[([\d, ]*)\]',
                               agent.log())
            result[name] = ({int(i) for i in found[-1].split(',') if
                             i.strip()} if found else set())
        return result

    def expected_owners(self) -> dict[str, set[int]]:
        """What tooz's hash ring gives each member once all know of all."""
        ids = self.member_ids()
        ring = hashring.HashRing(list(ids.values()), partitions=32)
        by_id = {member: name for name, member in ids.items()}
        owners: dict[str, set[int]] = {name: set() for name in ids}
        for index in range(QUEUES):
            [member] = ring.get_nodes(str(index).encode())
            owners[by_id[member]].add(index)
        return owners

    def settled(self) -> dict[str, set[int]] | None:
        """The ownership if every agent consumes what the ring gives it."""
        if len(self.member_ids()) == len(self.agents):
            expected = self.expected_owners()
            if self.consuming() == expected:
                return expected
        return None

    def wait_settled(self, timeout: float = 60.0) -> dict[str, set[int]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owners = self.settled()
            if owners is not None:
                return owners
            time.sleep(0.2)
        raise AssertionError(f'ownership did not settle: consuming '
                             f'{self.consuming()}, ring '
                             f'{self.expected_owners()}')

    def cleanup(self) -> None:
        if self.cleaned:
            return
        self.cleaned = True
        if self.rates is not None:
            self.rates.stop()
        for dep in self.deployments:
            dep.cleanup()
        queues = [f'{self.topic}.{p}' for p in ('sample', 'info', 'error')]
        queues += [f'{dep.metering_topic}.sample'
                   for dep in self.deployments]
        queues += [f'telemeter-pipe-{name}-{i}.sample'
                   for name in (self.pipeline_name,
                                self.event_pipeline_name)
                   for i in range(QUEUES)]
        _delete_queues(self.rabbit_url, queues)
        for key in redis_client.command(self.redis_url, 'KEYS',
                                        f'{self.namespace}*') or []:
            redis_client.command(self.redis_url, 'DEL', key)
        messaging.cleanup()


def _amqp(url: str) -> str:
    return url.replace('rabbit://', 'amqp://')


def _queue_depth(url: str, name: str) -> int:
    with kombu.Connection(_amqp(url)) as conn:
        _q, count, _consumers = conn.channel().queue_declare(name,
                                                             passive=True)
        return count


def _delete_queues(url: str, names: list[str]) -> None:
    with kombu.Connection(_amqp(url)) as conn:
        for name in names:
            channel = conn.channel()
            try:
                channel.queue_delete(name)
            except Exception:  # noqa: S110  (already gone)
                pass
            finally:
                try:
                    channel.close()
                except Exception:  # noqa: S110
                    pass


@pytest.fixture
def cluster_factory(tmp_path, rabbit_url, redis_url):
    clusters = []

    def make(name: str, partitioned: bool, parallel: int = 64) -> Cluster:
        cluster = Cluster(tmp_path / name, rabbit_url, redis_url,
                          partitioned, parallel)
        clusters.append(cluster)
        return cluster
    yield make
    for cluster in clusters:
        cluster.cleanup()


def _reference(cluster_factory, cycles: int) -> dict[tuple[str, int], float]:
    """One agent, sequential: the rates one agent computes."""
    single = cluster_factory('single', partitioned=False, parallel=1)
    single.start('alone')
    for cycle in range(cycles):
        single.send_cycle(cycle)
    keys = {(r, k) for r in RESOURCES for k in range(1, cycles)}
    single.rates.wait_for(keys)
    single.rates.settle(quiet=1.5)
    found = single.rates.by_key()
    assert set(found) == keys
    reference = {}
    for (resource, cycle), values in found.items():
        assert len(values) == 1, (resource, cycle, values)
        reference[(resource, cycle)] = values[0][1]
    # And those are the rates arithmetic gives.
    assert reference == {(r, k): expected_rate(i, k)
                         for i, r in enumerate(RESOURCES)
                         for k in range(1, cycles)}
    single.cleanup()
    return reference


def _queue_of(resource: str) -> int:
    return pipe.queue_index({'resource_id': resource}, ['resource_id'],
                            QUEUES)


def _feed_until_settled(cluster: Cluster, cycle: int
                        ) -> tuple[int, dict[str, set[int]]]:
    """Send a cycle after another until every agent consumes exactly what
    the ring gives it; return the next cycle and the ownership."""
    owners = None
    while owners is None:
        assert cycle < 300, f'ownership never settled: {cluster.consuming()}'
        cluster.feed([cycle])
        cycle += 1
        owners = cluster.settled()
    return cycle, owners


@pytest.mark.timeout(900)
def test_partitioned_agents_compute_the_rates_one_agent_would(
        cluster_factory):
    cluster = cluster_factory('partitioned', partitioned=True)
    cluster.start('agent-a')
    cluster.start('agent-b')
    two = cluster.wait_settled()
    assert two['agent-a'] and two['agent-b']

    # Two agents.
    cluster.feed(range(0, 8))
    # A third agent starts; samples keep coming while it joins.
    dep_c = cluster.deployment('agent-c')
    cluster.rates.listen('agent-c', dep_c.metering_topic)
    agent_c = dep_c.start('telemeter-agent-notification')
    cluster.agents['agent-c'] = agent_c
    cycle, three = _feed_until_settled(cluster, 8)
    joined = (8, cycle)
    assert three['agent-c'], 'the third agent got no queue to take over'
    cluster.feed(range(cycle, cycle + 6))
    cycle += 6
    # It leaves (SIGTERM); samples keep coming while the others take its
    # queues back.
    del cluster.agents['agent-c']
    assert agent_c.stop()[0] == 0
    left_from = cycle
    cycle, after = _feed_until_settled(cluster, cycle)
    left = (left_from, cycle)
    assert after == two
    cluster.feed(range(cycle, cycle + 6))
    total = cycle + 6

    reference = _reference(cluster_factory, total)
    cluster.rates.wait_for({(r, k) for r in RESOURCES
                            for k in range(total - 5, total)})
    cluster.rates.settle()
    found = cluster.rates.by_key()

    # 1. Every rate computed is the rate one agent computes, and is
    #    computed once: no rate comes from samples split between agents
    #    (nor from a sample an agent kept from before it lost a queue).
    for key, values in found.items():
        assert len(values) == 1, f'{key} computed by {values}'
        [(agent, value)] = values
        assert value == reference[key], (
            f'{key}: {agent} computed {value}, one agent computes '
            f'{reference[key]}: samples split between agents?')

    # 2. Per resource: its queue's owner computes every rate; when the
    #    queue changes hands, exactly one rate is not computed: the first
    #    sample the new owner gets (it has no predecessor there).
    owner_of = {q: a for a, qs in two.items() for q in qs}
    moved = three['agent-c']
    lost = 0
    for resource in RESOURCES:
        queue = _queue_of(resource)
        cycles = sorted(k for (r, k) in found if r == resource)
        agents = [found[(resource, k)][0][0] for k in cycles]
        gaps = sorted(set(range(1, total)) - set(cycles))
        if queue not in moved:
            assert gaps == [], (resource, gaps)
            assert set(agents) == {owner_of[queue]}, resource
            continue
        # To the new agent while it joined, back when it left.
        assert len(gaps) == 2, (resource, gaps)
        assert joined[0] <= gaps[0] <= joined[1], (resource, gaps, joined)
        assert left[0] <= gaps[1] <= left[1], (resource, gaps, left)
        expected_agents = ([owner_of[queue]] * (gaps[0] - 1)
                           + ['agent-c'] * (gaps[1] - gaps[0] - 1)
                           + [owner_of[queue]] * (total - 1 - gaps[1]))
        assert agents == expected_agents, resource
        lost += 2
    assert lost, 'no resource of the moved queues: the test proves nothing'
    assert len(found) == len(reference) - lost
    for name, agent in [*cluster.agents.items(), ('agent-c', agent_c)]:
        log = agent.log()
        assert 'dropping out of time order sample' not in log, name
    assert all(agent.alive() for agent in cluster.agents.values())


@pytest.mark.timeout(300)
def test_control_without_partitioning_rates_come_from_split_samples(
        cluster_factory):
    cycles = 10
    reference = {(r, k): expected_rate(i, k)
                 for i, r in enumerate(RESOURCES) for k in range(1, cycles)}
    cluster = cluster_factory('unpartitioned', partitioned=False)
    cluster.start('agent-a')
    cluster.start('agent-b')
    cluster.feed(range(cycles))
    cluster.rates.settle()
    found = cluster.rates.by_key()
    agents = {v[0][0] for v in found.values()}
    wrong = {key for key, values in found.items()
             if any(value != reference.get(key) for _a, value in values)}
    assert agents == {'agent-a', 'agent-b'}
    # Each agent saw only some cycles of each resource: its rates span
    # several cycles and differ from the reference.
    assert wrong, 'two unpartitioned agents happened to agree: no proof'


def test_rate_arithmetic_of_the_feed():
    # Resource 0, cycle 1: V_0 = 1_000_000, V_1 = 1_000_000 + (1000 + 1)
    # = 1_001_001, rate = 1001 / 10 = 100.1
    assert _volume(0, 0) == 1_000_000 and _volume(0, 1) == 1_001_001
    assert expected_rate(0, 1) == 100.1
    # A rate over two cycles (a split) differs: (V_2 - V_0) / 20 =
    # (1001 + 2001) / 20 = 150.1, not V_2 - V_1 over 10 s = 200.1.
    assert (_volume(0, 2) - _volume(0, 0)) / 20 == 150.1
    assert expected_rate(0, 2) == 200.1
    # Resource 3, cycle 7: (7 * 1000 + 3 + 1) / 10 = 700.4
    assert expected_rate(3, 7) == 700.4
