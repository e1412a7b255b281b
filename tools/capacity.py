#!/usr/bin/env python3
"""Capacity model of a telemeter deployment (issue 15).

Given the size of a region, print the message rates per queue, the number
of agents of each kind, the broker and database load and the storage
growth, from per-component rates measured by the project's own benchmarks
on its 2-core development machine (:data:`MEASURED`, with where and when).
The arithmetic is deliberately simple and stated in
``doc/source/admin/capacity.rst``; every rate can be overridden.

    python3 tools/capacity.py --compute-nodes 1000
    python3 tools/capacity.py --compute-nodes 10000 --instances-per-node 40 \\
        --meters-per-instance 12 --polling-interval 300 \\
        --notifications-per-second 200 --retention-days 30
    python3 tools/capacity.py --examples        # 100, 1,000 and 10,000 nodes
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

#: Per-component rates measured here (README "Speed"; 2-core Debian 12
#: VM shared with other jobs). Each is the lower end of what was measured.
MEASURED = {
    # tools/bench/e2e_bench.py --mode polling, 2026-12-02 (README "Speed"):
    # 10,000-12,700 samples/s stored end to end with agent, collector,
    # broker and PostgreSQL on the same 2 cores: one agent worker handles
    # at least this many polled samples per second.
    'agent_polled_samples_per_s': 10000.0,
    # the drain harness, 2026-12-02: 5,173-5,709 OpenStack notifications/s
    # through one agent worker (Ceilometer's definitions).
    'agent_notifications_per_s': 5173.0,
    # tools/bench/drain_bench.py --daemon collector, 2026-12-02:
    # 12,000-13,400 samples/s into PostgreSQL with one worker.
    'collector_samples_per_s': 12000.0,
    # tools/bench/storage_bench.py, 2026-12-02: 39,000-45,000 samples/s
    # into PostgreSQL, batches of 1,000, one client.
    'postgresql_samples_per_s': 39000.0,
    # tests/functional/cluster (tox -e cluster), 2026-12-02: one stored
    # sample row with its index entries, PostgreSQL 15 (see capacity.rst).
    'postgresql_bytes_per_sample': 420.0,
    # a signed metering dict of a compute meter as JSON (telemeter.
    # publisher.utils.meter_message_from_counter), 2026-12-02.
    'bytes_per_sample_on_the_bus': 730.0,
}

#: Samples per message between the daemons (the polling agent's batch, the
#: agent's notifier batch and the pipe queues' batch).
SAMPLES_PER_POLLING_MESSAGE = 50
SAMPLES_PER_PUBLISHED_MESSAGE = 100


@dataclasses.dataclass(frozen=True)
class Region:
    """What the operator knows about the region."""

    compute_nodes: int
    instances_per_node: float = 30
    meters_per_instance: float = 15
    polling_interval: float = 300.0
    #: None: 0.1 per compute node (instance lifecycle, volumes, ports, ...)
    notifications_per_second: float | None = None
    samples_per_notification: float = 1.5
    retention_days: float = 30.0
    partitioning: bool = True
    utilisation: float = 0.5  # the share of a measured rate to plan for

    @property
    def notifications(self) -> float:
        """Notifications/s of the other services."""
        if self.notifications_per_second is None:
            return 0.1 * self.compute_nodes
        return self.notifications_per_second


@dataclasses.dataclass
class Plan:
    """What the model says."""

    polled_samples_per_s: float
    notification_samples_per_s: float
    samples_per_s: float
    queues: dict[str, float]  # messages/s per queue
    polling_agents: int
    notification_agents: int
    collectors: int
    broker_messages_per_s: float
    broker_mb_per_s: float
    database_load: float  # share of one PostgreSQL server's measured rate
    database_servers: int
    samples_per_day: float
    storage_gb_per_day: float
    storage_gb_retained: float


def plan(region: Region, rates: dict[str, float] | None = None) -> Plan:
    """The arithmetic of ``doc/source/admin/capacity.rst``."""
    r = dict(MEASURED, **(rates or {}))
    u = region.utilisation
    instances = region.compute_nodes * region.instances_per_node
    polled = instances * region.meters_per_instance / region.polling_interval
    notifications = region.notifications
    from_notifications = notifications * region.samples_per_notification
    samples = polled + from_notifications
    queues = {
        'notifications.sample (polling agents -> agents)':
            polled / SAMPLES_PER_POLLING_MESSAGE,
        'notifications.info (services -> agents)': notifications,
        'metering.sample (agents -> collectors)':
            samples / SAMPLES_PER_PUBLISHED_MESSAGE,
    }
    if region.partitioning:
        queues['telemeter-pipe-* (agents -> agents), all together'] = (
            samples / SAMPLES_PER_PUBLISHED_MESSAGE)
    agent_load = (polled / r['agent_polled_samples_per_s']
                  + notifications / r['agent_notifications_per_s'])
    if region.partitioning:
        # every sample passes an agent twice: main queue, then pipe queue
        agent_load += samples / r['agent_polled_samples_per_s']
    minimum = 2  # one of each can die (tooz hands its work over)
    notification_agents = max(minimum, math.ceil(agent_load / u))
    collectors = max(minimum, math.ceil(
        samples / (r['collector_samples_per_s'] * u)))
    database_load = samples / r['postgresql_samples_per_s']
    messages = sum(queues.values())
    bus_bytes = 2 * samples * r['bytes_per_sample_on_the_bus'] * (
        1.5 if region.partitioning else 1)
    per_day = samples * 86400
    gb_day = per_day * r['postgresql_bytes_per_sample'] / 1e9
    return Plan(
        polled_samples_per_s=polled,
        notification_samples_per_s=from_notifications,
        samples_per_s=samples, queues=queues,
        polling_agents=region.compute_nodes,
        notification_agents=notification_agents, collectors=collectors,
        broker_messages_per_s=messages,
        broker_mb_per_s=bus_bytes / 1e6,
        database_load=database_load,
        database_servers=max(1, math.ceil(database_load / u)),
        samples_per_day=per_day, storage_gb_per_day=gb_day,
        storage_gb_retained=gb_day * region.retention_days)


def report(region: Region, p: Plan) -> str:
    lines = [
        f'{region.compute_nodes:,} compute nodes x '
        f'{region.instances_per_node:g} instances x '
        f'{region.meters_per_instance:g} meters every '
        f'{region.polling_interval:g} s, '
        f'{region.notifications:g} notifications/s '
        f'({region.samples_per_notification:g} samples each), '
        f'{region.retention_days:g} days kept',
        f'  samples/s: {p.polled_samples_per_s:,.0f} polled + '
        f'{p.notification_samples_per_s:,.0f} from notifications = '
        f'{p.samples_per_s:,.0f}',
        '  messages/s per queue:']
    for name, rate in p.queues.items():
        lines.append(f'    {name}: {rate:,.1f}')
    lines += [
        f'  broker: {p.broker_messages_per_s:,.0f} messages/s, '
        f'{p.broker_mb_per_s:,.1f} MB/s of bodies (x3 on a quorum-queue '
        f'cluster)',
        f'  polling agents: {p.polling_agents:,} (one per compute node)',
        f'  notification agents (one worker each): {p.notification_agents}',
        f'  collectors (one worker each): {p.collectors}',
        f'  PostgreSQL: {100 * p.database_load:,.1f} % of one server\'s '
        f'measured insert rate -> {p.database_servers} server(s) at '
        f'{100 * region.utilisation:.0f} % utilisation',
        f'  storage: {p.samples_per_day:,.0f} samples/day, '
        f'{p.storage_gb_per_day:,.1f} GB/day, '
        f'{p.storage_gb_retained:,.0f} GB for the retention']
    return '\n'.join(lines)


EXAMPLES = (100, 1000, 10000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    defaults = Region(0)
    parser.add_argument('--compute-nodes', type=int)
    parser.add_argument('--examples', action='store_true',
                        help=f'the worked examples: {EXAMPLES} nodes')
    for field in dataclasses.fields(Region)[1:]:
        flag = '--' + field.name.replace('_', '-')
        if field.type == 'bool':
            parser.add_argument(flag, type=lambda v: v.lower() in (
                '1', 'true', 'yes'), default=getattr(defaults, field.name))
        elif field.name == 'notifications_per_second':
            parser.add_argument(flag, type=float, default=None,
                                help='default: 0.1 per compute node')
        else:
            parser.add_argument(flag, type=float,
                                default=getattr(defaults, field.name))
    for name in MEASURED:
        parser.add_argument('--' + name.replace('_', '-'), type=float,
                            help=f'measured: {MEASURED[name]:g}')
    args = parser.parse_args(argv)
    if not args.examples and not args.compute_nodes:
        parser.error('give --compute-nodes N or --examples')
    rates = {n: getattr(args, n) for n in MEASURED
             if getattr(args, n) is not None}
    nodes = EXAMPLES if args.examples else (args.compute_nodes,)
    for i, count in enumerate(nodes):
        region = Region(count, **{
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(Region)[1:]})
        if i:
            print()
        print(report(region, plan(region, rates)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
