"""Several agents of each kind on the 3-node cluster, driven by the fault
suite's harness (issue 15).

A :class:`ScaleScenario` is a :class:`~tests.functional.faults.runner.
Scenario` whose deployment runs two polling agents, two notification
agents partitioned through tooz (Redis) and the ``telemeter-pipe-*``
queues, and two collectors writing to PostgreSQL, every queue a quorum
queue on the cluster. Beside the fault suite's stream of uniquely numbered
samples (counted by payload: lost, duplicated), :class:`CpuStream` sends
cumulative ``cpu`` samples of :data:`CPU_RESOURCES` resources, one cycle
every :data:`CPU_PERIOD` s, whose ``cpu_util`` (rate_of_change) is known
exactly: the increment of resource i in cycle k is
``(10 + (i + k) % 50) * 10**8`` ns over 10 s, i.e. ``10 + (i + k) % 50`` %.
That is what one agent alone computes (``tests/functional/
test_notification_partitioning.py`` checks a single agent against this
arithmetic).

Cycles are :data:`CPU_PERIOD` s apart, longer than the agents' batch
timeout: both agents consume the notification queue and forward to the
pipeline queues, so two cycles sent closer than a batch can reach a
pipeline queue in either order (measured: at 0.5 s, with ``batch_timeout =
1``, cycles arrived swapped and the rate was taken over the wrong interval
or dropped as "out of time order"). Real polling cycles are minutes apart.
"""

from __future__ import annotations

import datetime
import itertools
import re
import threading
import time
import urllib.parse
import uuid

import sqlalchemy

from telemeter import messaging
from tests.functional.faults import harness, runner

CPU_RESOURCES = 20
CPU_STEP = 10  # seconds between two samples of a resource (timestamps)
CPU_PERIOD = 3.0  # wall seconds between two cycles (> batch_timeout: see
# the module docstring)
CPU_START = datetime.datetime(2032, 1, 1)
POLL_RESOURCES = [f'snmp-{i:02d}' for i in range(8)]
POLL_INTERVAL = 5
# [notification] pipeline_processing_queues: the default (10). With 6, the
# hash ring of two agents with random member ids gave one agent every
# queue in 5.0 % of starts (5,000 simulated pairs of tooz rings, 32
# partitions each), and the scenarios, which need both agents busy, failed
# on it (2 of 6 in one tier run); with 10, 0.3 %.
QUEUES = 10

PIPELINE = """\
sources:
  - name: faults
    meters: ["faults.*", "hardware.*"]
    sinks: [store]
  - name: cpu
    meters: [cpu]
    sinks: [cpu_sink]
sinks:
  - name: store
    publishers: ["notifier://"]
  - name: cpu_sink
    transformers:
      - name: rate_of_change
        parameters:
          target:
            name: cpu_util
            unit: "%"
            type: gauge
            max: 100
            scale: "100.0 / (10**9 * (resource_metadata.cpu_number or 1))"
    publishers: ["notifier://"]
"""


def cpu_increment(resource: int, cycle: int) -> int:
    return (10 + (resource + cycle) % 50) * 10**8


def cpu_volume(resource: int, cycle: int) -> int:
    return 10**12 * (resource + 1) + sum(
        cpu_increment(resource, k) for k in range(1, cycle + 1))


def expected_cpu_util(resource: int, cycle: int) -> float:
    return float(10 + (resource + cycle) % 50)


def cpu_timestamp(cycle: int) -> str:
    return (CPU_START + datetime.timedelta(seconds=CPU_STEP * cycle)
            ).isoformat()


CYCLE_OF = {cpu_timestamp(k): k for k in range(5000)}


def _iso(stamp) -> str:
    if isinstance(stamp, datetime.datetime):
        return stamp.replace(tzinfo=None).isoformat()
    return datetime.datetime.utcfromtimestamp(float(stamp)).isoformat()


def _seconds(stamp) -> float:
    if isinstance(stamp, datetime.datetime):
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.UTC)
        return stamp.timestamp()
    return float(stamp)


def polling_yaml(snmpd_target: str) -> str:
    lines = ['sources:', '  - name: shared', f'    interval: {POLL_INTERVAL}',
             '    meters: [hardware.memory.total]', '    resources:']
    lines += [f'      - {{resource_id: {r}, resource_url: "{snmpd_target}"}}'
              for r in POLL_RESOURCES]
    return '\n'.join(lines) + '\n'


def extra_conf(redis_url: str, namespace: str) -> str:
    query = urllib.parse.urlencode({
        'namespace': namespace, 'timeout': 5, 'lock_timeout': 5,
        'membership_timeout': 6})
    return f"""
        [notification]
        workload_partitioning = true
        pipeline_processing_queues = {QUEUES}
        batch_size = 100
        batch_timeout = 1
        [coordination]
        backend_url = {redis_url.rstrip('/')}/?{query}
        check_watchers = 1.0
        [polling]
        partitioning_group_prefix = {namespace}
        """


class CpuStream:
    """One ``telemetry.polling`` notification per cycle carrying the
    cumulative ``cpu`` sample of every resource, from a thread."""

    def __init__(self, dep: harness.FaultDeployment) -> None:
        self.dep = dep
        self.cycles = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='cpu-stream')

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)

    def _run(self) -> None:
        transport = harness.sender_transport(self.dep)
        notifier = messaging.get_notifier(
            transport, 'telemeter.polling', driver='messagingv2',
            topics=[self.dep.notification_topic])
        try:
            while not self._stop.is_set():
                cycle = self.cycles
                notifier.sample({}, 'telemetry.polling', {'samples': [
                    {'counter_name': 'cpu', 'counter_type': 'cumulative',
                     'counter_unit': 'ns',
                     'counter_volume': cpu_volume(i, cycle),
                     'user_id': 'u', 'project_id': 'p',
                     'resource_id': f'vm-{i:02d}',
                     'timestamp': cpu_timestamp(cycle),
                     'resource_metadata': {'cpu_number': 1},
                     'source': 'openstack',
                     'message_id': str(uuid.uuid5(
                         uuid.NAMESPACE_URL, f'cpu/{i}/{cycle}'))}
                    for i in range(CPU_RESOURCES)]})
                self.cycles = cycle + 1
                self._stop.wait(CPU_PERIOD)
        except BaseException as exc:
            self.error = exc
        finally:
            transport.cleanup()


class ScaleScenario(runner.Scenario):
    """Two of each daemon on one configuration; the cluster as broker."""

    POLLING = 'telemeter-polling'
    COPIES = 2

    def __init__(self, *args, poll: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.poll = poll
        self.cpu: CpuStream | None = None
        self.pollers_settled = 0.0

    def start_collector(self):
        first = None
        for _ in range(self.COPIES - self._running(self.COLLECTOR)):
            daemon = self.dep.start(self.COLLECTOR)
            first = first or daemon
        for daemon in self._alive(self.COLLECTOR):
            daemon.wait_for_log('Collector listening on topic', timeout=120)
        return first

    def start_agent(self):
        first = None
        for _ in range(self.COPIES - self._running(self.AGENT)):
            daemon = self.dep.start(self.AGENT)
            first = first or daemon
        for daemon in self._alive(self.AGENT):
            daemon.wait_for_log('Notification agent listening', timeout=120)
        if self.cpu is None:
            # the agents share the pipeline queues: start the cpu cycles
            # (a queue moving between agents would cost a cpu_util)
            self.wait_queues_split()
            self.cpu = CpuStream(self.dep)
            self.cpu.start()
            if self.poll:
                # the second poller joins the group a moment after the
                # first has polled everything: judge what follows
                self.pollers_settled = time.time() + 3 * POLL_INTERVAL
                for _ in range(self.COPIES):
                    self.dep.start(self.POLLING, '--polling-namespaces',
                                   'central')
        return first

    def owned_queues(self) -> list[set[int]]:
        """The pipeline queues each live agent last said it consumes."""
        owned = []
        for daemon in self._alive(self.AGENT):
            found = re.findall(r'Consuming pipeline queues \[([0-9, ]*)\]',
                               daemon.log())
            owned.append({int(i) for i in found[-1].split(',') if i.strip()}
                         if found else set())
        return owned

    def wait_queues_split(self, timeout: float = 90) -> None:
        """Until the live agents consume disjoint, non-empty shares of
        the :data:`QUEUES` pipeline queues, stable for 3 s."""
        deadline, stable_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            owned = self.owned_queues()
            split = (all(owned) and sum(map(len, owned)) == QUEUES
                     and set().union(*owned) == set(range(QUEUES)))
            if not split:
                stable_since = None
            elif stable_since is None:
                stable_since = time.monotonic()
            elif time.monotonic() - stable_since > 3:
                return
            time.sleep(0.5)
        raise AssertionError(f'pipeline queues not split: '
                             f'{self.owned_queues()}')

    def kill_one(self, name: str) -> None:
        """SIGKILL the first live ``name`` and start a new one."""
        self._alive(name)[0].kill()
        self.mark(f'killed {name}')
        if name == self.COLLECTOR:
            self.start_collector()
        else:
            self.start_agent()

    def _alive(self, name: str) -> list:
        return [d for d in self.dep.daemons if d.name == name and d.alive()]

    def _running(self, name: str) -> int:
        return len(self._alive(name))

    def run(self, *args, **kwargs) -> harness.Outcome:
        try:
            return super().run(*args, **kwargs)
        finally:
            if self.cpu is not None:
                self.cpu.stop()
            dead = [f'{d.name} ({d.log_path.name})' for d in self.dep.daemons
                    if not d.alive() and d.process.returncode != -9]
            self.outcome.dead.extend(dead)

    # -- what the database holds besides the stream

    def cpu_util_rows(self) -> dict[tuple[str, int], list[float]]:
        query = sqlalchemy.text(
            'SELECT r.resource_id, s.timestamp, s.volume FROM sample s '
            'JOIN meter m ON m.id = s.meter_id '
            'JOIN resource r ON r.internal_id = s.resource_id '
            'WHERE m.name = :n')
        found: dict = {}
        with self.counter.engine.connect() as conn:
            for resource, stamp, volume in conn.execute(query,
                                                        {'n': 'cpu_util'}):
                key = (resource, CYCLE_OF[_iso(stamp)])
                found.setdefault(key, []).append(float(volume))
        return found

    def wait_cpu_settled(self, timeout: float = 90) -> None:
        """Until the cpu_util rows stop growing (every cycle handled)."""
        deadline, last, since = time.monotonic() + timeout, -1, 0.0
        while time.monotonic() < deadline:
            n = sum(len(v) for v in self.cpu_util_rows().values())
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since > 8:
                return
            time.sleep(2)

    def check_cpu_util(self, takeovers: int = 0) -> dict:
        """cpu_util as one agent computes it: every value exact, none
        doubled; missing only the first cycle of a resource on an agent
        that took its queue over (at most ``takeovers`` per resource)."""
        assert self.cpu is not None and self.cpu.error is None, self.cpu
        cycles = self.cpu.cycles
        rows = self.cpu_util_rows()
        wrong = {k: v for k, v in rows.items()
                 if any(x != expected_cpu_util(int(k[0][3:]), k[1])
                        for x in v)}
        doubled = {k: v for k, v in rows.items() if len(v) > 1}
        missing = [(f'vm-{i:02d}', k) for i in range(CPU_RESOURCES)
                   for k in range(1, cycles) if (f'vm-{i:02d}', k) not in rows]
        per_resource: dict[str, int] = {}
        for resource, _ in missing:
            per_resource[resource] = per_resource.get(resource, 0) + 1
        result = {'cycles': cycles, 'expected': CPU_RESOURCES * (cycles - 1),
                  'stored': len(rows), 'wrong': len(wrong),
                  'doubled': len(doubled), 'missing': len(missing)}
        self.outcome.notes += f'cpu_util {result} '
        assert not wrong, f'cpu_util values differ: {list(wrong.items())[:5]}'
        assert not doubled, f'cpu_util doubled: {list(doubled.items())[:5]}'
        too_many = {r: n for r, n in per_resource.items() if n > takeovers}
        assert not too_many, (f'cpu_util missing beyond {takeovers} '
                              f'hand-over(s) per resource: {too_many} '
                              f'(first: {missing[:8]})')
        return result

    def check_polled(self, twice: int = 0) -> dict:
        """Both pollers' share: every resource polled, never twice in one
        interval (no resource polled by both agents) but ``twice`` times
        per resource."""
        if not self.poll:
            return {}
        query = sqlalchemy.text(
            'SELECT r.resource_id, s.timestamp FROM sample s JOIN meter m '
            'ON m.id = s.meter_id JOIN resource r ON r.internal_id = '
            's.resource_id WHERE m.name = :n ORDER BY 1, 2')
        stamps: dict[str, list] = {}
        with self.counter.engine.connect() as conn:
            for resource, stamp in conn.execute(
                    query, {'n': 'hardware.memory.total'}):
                if _seconds(stamp) >= self.pollers_settled:
                    stamps.setdefault(resource, []).append(stamp)
        close = {r: sum(1 for a, b in itertools.pairwise(s)
                        if _seconds(b) - _seconds(a) < POLL_INTERVAL / 2)
                 for r, s in stamps.items()}
        result = {'resources': len(stamps),
                  'rows': sum(len(s) for s in stamps.values()),
                  'doubled': sum(close.values())}
        self.outcome.notes += f'polled {result} '
        assert set(stamps) == set(POLL_RESOURCES), sorted(stamps)
        assert all(n <= twice for n in close.values()), close
        return result


def make_deployment(workdir, url: str, database_url: str, redis_url: str,
                    snmpd_target: str, broker: str = 'quorum'
                    ) -> harness.FaultDeployment:
    namespace = f'scale-{uuid.uuid4().hex[:8]}'
    # Two daemons of each kind share the configuration file, so no health
    # ports (they would collide); the fault suite checks the ledgers.
    dep = harness.FaultDeployment(workdir, url, database_url, broker=broker,
                                  extra_conf=extra_conf(redis_url, namespace),
                                  health=False)
    dep.pipeline_path.write_text(PIPELINE)
    dep.polling_path.write_text(polling_yaml(snmpd_target))
    return dep


class Cluster3:
    """The fault runner's broker interface (rabbitmqctl, is_running) on
    the cluster, plus the node faults."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster

    def rabbitmqctl(self, *args: str) -> str:
        return self.cluster.rabbitmqctl(*args)

    def is_running(self) -> bool:
        return self.cluster.is_running()
