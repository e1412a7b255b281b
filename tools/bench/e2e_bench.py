#!/usr/bin/env python3
"""End-to-end benchmark: bus → notification agent → collector → SQL.

What runs
---------
RabbitMQ and PostgreSQL from ``tools/services.sh`` on the bench's own
ports and state directory (or the servers of ``--transport-url`` /
``--database-url``), a scratch database made for the run and
``telemeter-dbsync``, then ``telemeter-collector`` and
``telemeter-agent-notification`` as processes with the **packaged
configuration**: the packaged ``pipeline.yaml`` / ``event_pipeline.yaml``
(every sample and event goes to ``notifier://``, cpu/disk/network samples
also through the packaged transformers), the collector's ``database``
dispatcher, default batch sizes.  The configuration file sets only
``transport_url``, ``[database] connection``, ``log_dir``, ``[collector]
udp_address =`` (the bench sends nothing over UDP, and must not bind
0.0.0.0:4952 on a shared box), a random ``[publisher] telemetry_secret``
and the worker counts (``--agent-workers`` / ``--collector-workers``);
``--conf-extra section.option=value`` adds options for experiments.  The
polling agent is not run: the bench plays its role.

Load (a sender process, so that it does not share the bench's interpreter)
--------------------------------------------------------------------------
``--mode polling``: ``telemetry.polling`` notifications exactly as the
polling agent sends them: ``sample`` priority, publisher
``telemeter.polling``, topic ``notifications`` on the ``telemeter``
exchange, payload ``{"samples": [...]}`` of ``--batch`` (50, the agent's
``[polling] batch_size``) metering dicts built by
``telemeter.publisher.utils.meter_message_from_counter`` and signed with
the configured secret.  Meters are the packaged compute ones (cpu,
memory.usage, disk.read/write.bytes/requests, network.incoming/outgoing.
bytes/packets) of ``--instances`` instances (1,000), with the resource ids
and metadata the libvirt pollsters produce; each pass goes meter by meter
over every instance, as a polling cycle does.  Message ids are UUIDs
whose last group is a sequence number, so the database tells which sent
sample is missing.

``--mode notifications``: the weighted mix of OpenStack notifications of
``--peer-dir`` (``/work/shared/bench/notification-peer``: ``corpus.json``,
``mix.json``), sent with that directory's ``send.py`` functions (its
``Sender``, ``mix_sequence`` and ``vary_id``).  Two changes, so that the
counts mean something against telemeter's packaged configuration: the
``telemetry.polling`` entry goes on the ``telemeter`` exchange (the one the
packaged agent listens to for polled samples; the corpus names
Ceilometer's), and its samples get fresh, bench-numbered message ids,
re-signed (the corpus repeats three fixed ids, which storage would
de-duplicate).  Expected samples and events: ``expected-counts.json``
(what Ceilometer makes of each entry) and ``telemeter-notification-dryrun``
run on one copy of each mix entry (what telemeter's packaged definitions
make of it); the stored counts are compared with the latter.

Either mode offers load for ``--warmup`` + ``--duration`` seconds, as fast
as the sender can, or paced with ``--rate`` (samples/s in polling mode,
notifications/s in notifications mode).  ``--senders N`` runs N sender
processes (in polling mode N compute nodes, each with its share of the
instances and its own range of id numbers) with the rate split between
them.  Then it waits for the queues to drain (``--drain-timeout``), stops
the daemons and reads the database.  On a busy 2-core box the sender is
CPU-starved like everything else: its CPU seconds are reported, and the
stored rate after the send (the drain of what queued up, with the sender
gone) is the better hint of what the daemons can do.

What is measured, and how
-------------------------
* offered rate: the sender's own per-second counters;
* stored rate: every second ``SELECT count(*)`` of the ``sample`` and
  ``event`` tables (progress, events/s, drain detection); at the end every
  stored sample through the public storage API (``get_meters`` /
  ``get_samples``) with its ``recorded_at``, binned per second;
* the **sustained stored samples/s** is the number of samples whose
  ``recorded_at`` falls in the steady window divided by its length.  The
  window is not detected: it is the ``--duration`` seconds that follow the
  ``--warmup`` seconds after the first notification was sent, i.e. the
  part of the run where the sender offers load and start-up transients
  (connections, first meters/resources created) are over.  Its coefficient
  of variation (5 s bins) is printed so that an unsteady window shows;
* queue depth of every queue of the packaged configuration
  (notifications.*, metering.sample, event.sample) every
  ``--queue-interval`` (2) seconds by AMQP passive declare: messages
  ready for delivery (the daemons hold at most their prefetch, 100 per
  consumer, unacknowledged on top).  On a broker the bench started,
  ``rabbitmqctl list_queues`` (ready and unacknowledged, every queue) at
  the start and after the drain; it is too slow (1-15 s an Erlang VM
  start, CPU taken from the daemons) to sample with.  "flat" means the
  least-squares slope over the window (at least 3 samples) is within
  ±(2 % of the notifications offered per second + 1) messages/s;
* sent / stored / lost / duplicated after the drain: in polling mode from
  the message ids (lost = sent ids not stored; duplicated = rows beyond
  one per id; samples the transformers derive have ids of their own and
  are counted apart, against the number the packaged pipeline should
  derive); in notifications mode from the expected counts;
* RSS (peak per process, its VmHWM, and the peak of the sum over all of
  a daemon's processes at one moment) and CPU seconds (utime + stime,
  whole run and window) of every process of each daemon (cotyledon master
  and workers), of the sender(s) and of the servers services.sh runs,
  from /proc every second (RSS counts shared memory in every process:
  PostgreSQL's shared buffers make its sum an overstatement);
* the load average (and CPU pressure, PSI avg10) on every progress line
  and with every figure, and the cores the whole machine, the bench's
  processes and everything else used in the window (from /proc/stat):
  the box is shared, so the "others" figure says how much the run was
  disturbed.

Profiling a daemon during a run: the worker PIDs are printed once the
daemons are up; ``py-spy record --pid <worker pid> -d 30 -o worker.svg``
(or ``py-spy top --pid <worker pid>``) from another shell.

Run (from the repository root, after ``tools/install.sh``)::

    .venv/bin/python tools/bench/e2e_bench.py --mode polling
    .venv/bin/python tools/bench/e2e_bench.py --mode polling --rate 1000
    .venv/bin/python tools/bench/e2e_bench.py --mode notifications \\
        --agent-workers 2 --collector-workers 2
    .venv/bin/python tools/bench/e2e_bench.py --mode polling \\
        --conf-extra collector.batch_size=500

Results: printed, and written as JSON (``--out``, default
``<workdir>/result.json``); logs and configuration stay in ``--workdir``.
Every process and server the bench started is stopped on exit, Ctrl-C or
error; the scratch database is dropped unless ``--keep-db``.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import copy
import dataclasses
import datetime
import importlib.util
import json
import logging
import math
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from telemeter import sample as sample_mod  # noqa: E402
from telemeter.publisher import utils as publisher_utils  # noqa: E402

# -------------------------------------------------------------- constants

# What the polling agent puts on the bus (telemeter/polling/manager.py).
POLLING_PUBLISHER_ID = 'telemeter.polling'
POLLING_EVENT_TYPE = 'telemetry.polling'
POLLING_BATCH = 50  # [polling] batch_size default

# (meter, type, unit, resource kind) of the packaged compute pollsters
# that the packaged polling.yaml polls.
POLLED_METERS: tuple[tuple[str, str, str, str], ...] = (
    ('cpu', 'cumulative', 'ns', 'instance'),
    ('memory.usage', 'gauge', 'MB', 'instance'),
    ('disk.read.bytes', 'cumulative', 'B', 'instance'),
    ('disk.read.requests', 'cumulative', 'request', 'instance'),
    ('disk.write.bytes', 'cumulative', 'B', 'instance'),
    ('disk.write.requests', 'cumulative', 'request', 'instance'),
    ('network.incoming.bytes', 'cumulative', 'B', 'vnic'),
    ('network.incoming.packets', 'cumulative', 'packet', 'vnic'),
    ('network.outgoing.bytes', 'cumulative', 'B', 'vnic'),
    ('network.outgoing.packets', 'cumulative', 'packet', 'vnic'),
)

# Samples the packaged pipeline.yaml derives from one sample of a meter
# once the transformer has seen the resource before: cpu → cpu_util
# (rate_of_change) and cpu.delta (delta); disk and network → *.rate.
DERIVED_PER_SAMPLE = {
    'cpu': 2,
    'disk.read.bytes': 1, 'disk.read.requests': 1,
    'disk.write.bytes': 1, 'disk.write.requests': 1,
    'network.incoming.bytes': 1, 'network.incoming.packets': 1,
    'network.outgoing.bytes': 1, 'network.outgoing.packets': 1,
}


def is_derived_meter(name: str) -> bool:
    """Whether a meter is one the packaged transformers make."""
    return name in ('cpu_util', 'cpu.delta') or name.endswith('.rate')


# Exchanges of corpus entries that the packaged agent does not listen to,
# and where telemeter's own sender would put them.
EXCHANGE_MAP = {'ceilometer': 'telemeter'}

# Queues that exist with the packaged configuration (the AMQP probe can
# only ask for queues by name).
KNOWN_QUEUES = tuple(
    [f'notifications.{p}' for p in ('audit', 'critical', 'debug', 'error',
                                    'info', 'sample', 'warn')]
    + ['metering.sample', 'event.sample'])
AGENT_QUEUES = ('notifications.info', 'notifications.sample')
COLLECTOR_QUEUES = ('metering.sample', 'event.sample')

DEFAULT_PEER_DIR = Path('/work/shared/bench/notification-peer')
CLK_TCK = os.sysconf('SC_CLK_TCK')

# ----------------------------------------------------------- small helpers


def loadavg() -> str:
    """The three load averages, as /proc/loadavg prints them."""
    with open('/proc/loadavg') as stream:
        return ' '.join(stream.read().split()[:3])


def cpu_pressure() -> str:
    """``psi N%``: share of the last 10 s some task waited for a CPU
    (empty where the kernel has no /proc/pressure)."""
    try:
        with open('/proc/pressure/cpu') as stream:
            first = stream.readline().split()
    except OSError:
        return ''
    fields = dict(f.split('=', 1) for f in first[1:] if '=' in f)
    return f" psi {float(fields.get('avg10', 0)):.0f}%"


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open('/proc/stat') as stream:
        values = [int(v) for v in stream.readline().split()[1:9]]
    total = sum(values)
    idle = values[3] + values[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK


def utc_epoch(value: datetime.datetime) -> float:
    """Epoch seconds of a naive-UTC (or aware) datetime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


def fmt_int(value: float | None) -> str:
    """``12,345`` (or ``-`` for None)."""
    return '-' if value is None else f'{value:,.0f}'


class BenchError(Exception):
    """A failure that the bench explains; the message says what to do."""


# ------------------------------------------------------ message id scheme


def make_id_prefix(rng: random.Random) -> str:
    """A random UUID prefix (the first four groups, version 4 layout)."""
    value = rng.getrandbits(64)
    text = f'{value:016x}'
    return (f'{text[:8]}-{text[8:12]}-4{text[12:15]}-'
            f'8{rng.getrandbits(12):03x}-')


def make_message_id(prefix: str, seq: int) -> str:
    """The UUID-shaped message id of sent sample number ``seq``."""
    return f'{prefix}{seq:012x}'


def parse_message_id(prefix: str, message_id: str | None) -> int | None:
    """The sequence number of one of our ids, None for any other id."""
    if not message_id or not message_id.startswith(prefix):
        return None
    tail = message_id[len(prefix):]
    if len(tail) != 12:
        return None
    try:
        return int(tail, 16)
    except ValueError:
        return None


# ----------------------------------------------------- delivery accounting


@dataclasses.dataclass
class Delivery:
    """What became of the samples the bench numbered and sent."""

    sent: int
    stored_rows: int
    stored_distinct: int
    lost: int
    duplicated: int
    unexpected: int
    lost_examples: list[int]


def count_sent(ranges: Sequence[tuple[int, int]]) -> int:
    """Number of ids in half-open ``[start, end)`` ranges."""
    return sum(end - start for start, end in ranges)


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping union of half-open ranges."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def in_ranges(ranges: Sequence[tuple[int, int]], value: int) -> bool:
    """Whether ``value`` is in one of the merged, sorted ``ranges``."""
    index = bisect.bisect_right(ranges, (value, math.inf)) - 1
    return index >= 0 and ranges[index][0] <= value < ranges[index][1]


def count_delivery(sent_ranges: Iterable[tuple[int, int]],
                   stored_seqs: Iterable[int],
                   examples: int = 5) -> Delivery:
    """Lost and duplicated samples from the ids sent and the ids stored.

    ``stored_seqs`` has one entry per stored row (a duplicate row repeats
    its number).  Lost: sent and never stored.  Duplicated: rows beyond
    the first of a number.  Unexpected: stored numbers never sent.
    """
    ranges = merge_ranges(sent_ranges)
    rows = 0
    distinct: set[int] = set()
    for seq in stored_seqs:
        rows += 1
        distinct.add(seq)
    sent = count_sent(ranges)
    stored_sent = sum(1 for seq in distinct if in_ranges(ranges, seq))
    lost_examples: list[int] = []
    if stored_sent < sent:
        for start, end in ranges:
            for seq in range(start, end):
                if seq not in distinct:
                    lost_examples.append(seq)
                    if len(lost_examples) >= examples:
                        break
            if len(lost_examples) >= examples:
                break
    return Delivery(sent=sent, stored_rows=rows,
                    stored_distinct=len(distinct), lost=sent - stored_sent,
                    duplicated=rows - len(distinct),
                    unexpected=len(distinct) - stored_sent,
                    lost_examples=lost_examples)


def expected_derived(meter_counts: dict[str, int],
                     meter_resources: dict[str, int]) -> int:
    """Samples the packaged transformers derive from what was sent, when
    one agent worker sees every sample of a resource in order: every
    sample of a transformed meter but the first of each resource."""
    total = 0
    for meter, per_sample in DERIVED_PER_SAMPLE.items():
        count = meter_counts.get(meter, 0)
        total += per_sample * max(count - meter_resources.get(meter, 0), 0)
    return total


# ------------------------------------------------------------ rate figures


def counter_at(series: Sequence[tuple[float, float]], when: float) -> float:
    """A cumulative counter at time ``when``, linearly interpolated from
    ``(time, value)`` points sorted by time (clamped at both ends)."""
    if not series:
        return 0.0
    times = [t for t, _ in series]
    index = bisect.bisect_left(times, when)
    if index == 0:
        return float(series[0][1])
    if index >= len(series):
        return float(series[-1][1])
    (t0, v0), (t1, v1) = series[index - 1], series[index]
    if t1 == t0:
        return float(v1)
    return v0 + (v1 - v0) * (when - t0) / (t1 - t0)


def counter_rate(series: Sequence[tuple[float, float]], start: float,
                 end: float) -> float:
    """Mean rate of a cumulative counter between ``start`` and ``end``."""
    if end <= start:
        return 0.0
    return (counter_at(series, end) - counter_at(series, start)) / (
        end - start)


def count_in_window(times: Iterable[float], start: float,
                    end: float) -> int:
    """How many events happened in ``[start, end)``."""
    return sum(1 for t in times if start <= t < end)


def binned(times: Iterable[float], start: float, end: float,
           width: float = 1.0) -> list[int]:
    """Event counts in consecutive ``width``-second bins of the window
    ``[start, end)`` (a last partial bin is dropped)."""
    bins = [0] * int((end - start) // width)
    for t in times:
        index = int((t - start) // width)
        if 0 <= index < len(bins) and t >= start:
            bins[index] += 1
    return bins


def variation(values: Sequence[float]) -> float | None:
    """Coefficient of variation (stdev / mean), None when undefined."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean == 0:
        return None
    return statistics.stdev(values) / mean


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(x, y)`` points (None for < 2 x values)."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den


def is_flat(growth: float | None, offered_per_s: float) -> bool | None:
    """Whether a queue's growth (messages/s) is small against the
    messages offered per second (±2 % + 1 message/s)."""
    if growth is None:
        return None
    return abs(growth) <= 0.02 * offered_per_s + 1.0


def after_rate(times: Sequence[float], start: float) -> float:
    """Events per second from ``start`` to the last event after it (the
    drain rate; 0 when nothing happened after ``start``)."""
    later = [t for t in times if t >= start]
    if not later or max(later) <= start:
        return 0.0
    return len(later) / (max(later) - start)


def window_rate(times: Iterable[float], start: float, end: float) -> float:
    """Events per second in ``[start, end)``."""
    if end <= start:
        return 0.0
    return count_in_window(times, start, end) / (end - start)


# --------------------------------------------------- polling-mode messages


@dataclasses.dataclass
class Instance:
    """One simulated Nova instance and the metadata its samples carry."""

    index: int
    id: str
    user_id: str
    project_id: str
    metadata: dict[str, Any]
    vnic_id: str
    vnic_metadata: dict[str, Any]
    speed: float  # scales the cumulative counters


FLAVORS = (
    {'id': '1', 'name': 'm1.tiny', 'vcpus': 1, 'ram': 512, 'disk': 1,
     'ephemeral': 0, 'swap': 0},
    {'id': '2', 'name': 'm1.small', 'vcpus': 1, 'ram': 2048, 'disk': 20,
     'ephemeral': 0, 'swap': 0},
    {'id': '3', 'name': 'm1.medium', 'vcpus': 2, 'ram': 4096, 'disk': 40,
     'ephemeral': 0, 'swap': 0},
    {'id': '4', 'name': 'm1.large', 'vcpus': 4, 'ram': 8192, 'disk': 80,
     'ephemeral': 0, 'swap': 0},
)


def make_instances(count: int, seed: int = 1) -> list[Instance]:
    """``count`` instances spread over 50 projects, 200 users, 20 hosts
    and 4 flavors, with the metadata ``instance_metadata`` builds."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    namespace = uuid.UUID(int=rng.getrandbits(128))
    projects = [uuid.uuid5(namespace, f'project-{i}').hex for i in range(50)]
    users = [uuid.uuid5(namespace, f'user-{i}').hex for i in range(200)]
    images = [str(uuid.uuid5(namespace, f'image-{i}')) for i in range(5)]
    instances = []
    for index in range(count):
        instance_id = str(uuid.uuid5(namespace, f'instance-{index}'))
        flavor = dict(FLAVORS[index % len(FLAVORS)])
        image = images[index % len(images)]
        name = f'instance-{index + 1:08x}'
        host_index = index % 20
        metadata = {
            'display_name': f'vm-{index:04d}', 'name': name,
            'instance_id': instance_id, 'instance_type': flavor['name'],
            'host': uuid.uuid5(namespace, f'host-{host_index}').hex,
            'instance_host': f'compute-{host_index:02d}', 'flavor': flavor,
            'status': 'active', 'state': 'active', 'task_state': None,
            'image': {'id': image}, 'image_ref': image,
            'image_ref_url': None, 'vcpus': flavor['vcpus'],
            'memory_mb': flavor['ram'], 'disk_gb': flavor['disk'],
            'ephemeral_gb': flavor['ephemeral'], 'root_gb': flavor['disk'],
            'architecture': 'x86_64', 'availability_zone': 'nova',
            'os_type': 'hvm',
        }
        tap = f'tap{instance_id[:11]}'
        vnic_metadata = dict(
            metadata, name=tap, mac=f'fa:16:3e:{index >> 16 & 255:02x}:'
            f'{index >> 8 & 255:02x}:{index & 255:02x}', fref=None,
            parameters={'projmask': None, 'ip': f'10.{index >> 16 & 255}.'
                        f'{index >> 8 & 255}.{index & 255}'},
            vnic_name=tap, instance_id=instance_id)
        instances.append(Instance(
            index=index, id=instance_id,
            user_id=users[index % len(users)],
            project_id=projects[index % len(projects)],
            metadata=metadata, vnic_id=f'{name}-{instance_id}-{tap}',
            vnic_metadata=vnic_metadata,
            speed=0.5 + rng.random()))
    return instances


def meter_volume(meter: str, instance: Instance, elapsed: float) -> float:
    """A plausible value of ``meter`` ``elapsed`` seconds into the run:
    cumulative meters only grow, gauges wander."""
    speed = instance.speed
    vcpus = instance.metadata['vcpus']
    if meter == 'cpu':
        return int(3.6e12 * speed + elapsed * 0.3e9 * vcpus * speed)
    if meter == 'memory.usage':
        ram = instance.metadata['memory_mb']
        return round(ram * (0.3 + 0.2 * speed) + (elapsed % 60), 1)
    per_second = {'bytes': 250_000.0, 'requests': 30.0, 'packets': 400.0}
    unit_rate = per_second[meter.rsplit('.', 1)[1]]
    return int(unit_rate * speed * (100_000 + elapsed))


class PollingLoad:
    """Builds the ``telemetry.polling`` batches of a polling cycle after
    another: meter by meter, every instance, ``batch`` samples a batch,
    signed as the polling agent signs them."""

    def __init__(self, instances: list[Instance], secret: str,
                 id_prefix: str, batch: int = POLLING_BATCH,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 start_seq: int = 0) -> None:
        self.instances = instances
        self.secret = secret
        self.id_prefix = id_prefix
        self.batch = batch
        self.clock = clock
        self.monotonic = monotonic
        self.started = clock()
        self.next_seq = start_seq
        self._meter_index = 0
        self._instance_index = 0
        self.meter_counts: collections.Counter[str] = collections.Counter()
        self._seen: dict[str, set[str]] = collections.defaultdict(set)

    def meter_resources(self) -> dict[str, int]:
        """Distinct resources sent per meter."""
        return {meter: len(ids) for meter, ids in self._seen.items()}

    def make_sample(self, meter_def: tuple[str, str, str, str],
                    instance: Instance, seq: int,
                    now: float, monotonic: float) -> sample_mod.Sample:
        """The Sample a compute pollster yields for one instance."""
        name, type_, unit, kind = meter_def
        if kind == 'vnic':
            resource_id, metadata = instance.vnic_id, instance.vnic_metadata
        else:
            resource_id, metadata = instance.id, instance.metadata
            if name == 'cpu':
                metadata = dict(metadata, cpu_number=metadata['vcpus'])
            elif name.startswith('disk.'):
                metadata = dict(metadata, device=['vda'])
        return sample_mod.Sample(
            name=name, type=type_, unit=unit,
            volume=meter_volume(name, instance, now - self.started),
            user_id=instance.user_id, project_id=instance.project_id,
            resource_id=resource_id, resource_metadata=metadata,
            id=make_message_id(self.id_prefix, seq),
            monotonic_time=monotonic)

    def next_samples(self) -> list[sample_mod.Sample]:
        """The next batch's Samples (one meter, consecutive instances)."""
        meter_def = POLLED_METERS[self._meter_index]
        now, monotonic = self.clock(), self.monotonic()
        chosen = self.instances[self._instance_index:
                                self._instance_index + self.batch]
        samples = []
        for instance in chosen:
            samples.append(self.make_sample(meter_def, instance,
                                            self.next_seq, now, monotonic))
            self.next_seq += 1
            self._seen[meter_def[0]].add(samples[-1].resource_id)
        self.meter_counts[meter_def[0]] += len(samples)
        self._instance_index += len(chosen)
        if self._instance_index >= len(self.instances):
            self._instance_index = 0
            self._meter_index = (self._meter_index + 1) % len(POLLED_METERS)
        return samples

    def sign(self, samples: list[sample_mod.Sample]) -> list[dict]:
        """Stamp and sign as ``PollingTask`` does: one ISO timestamp
        (naive UTC) for the call, one metering dict per Sample."""
        timestamp = datetime.datetime.fromtimestamp(
            self.clock(), datetime.UTC).replace(tzinfo=None).isoformat()
        messages = []
        for one in samples:
            one.set_timestamp(timestamp)
            messages.append(publisher_utils.meter_message_from_counter(
                one, self.secret))
        return messages

    def next_batch(self) -> list[dict]:
        """The next signed batch: the payload's ``samples`` list."""
        return self.sign(self.next_samples())


def polling_payload(batch: list[dict]) -> dict[str, Any]:
    """The payload of one ``telemetry.polling`` notification."""
    return {'samples': batch}


# ------------------------------------------------- notifications-mode plan


def load_peer_send(peer_dir: Path) -> Any:
    """The peer directory's ``send.py`` as a module."""
    path = peer_dir / 'send.py'
    if not path.exists():
        raise BenchError(f'{path} not found: give --peer-dir the directory '
                         f'of the notification peer bench')
    spec = importlib.util.spec_from_file_location('peer_send', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mix_entries(peer_dir: Path, send_mod: Any) -> list[dict]:
    """The weighted, interleaved sequence of corpus entries of the mix."""
    with open(peer_dir / 'corpus.json') as stream:
        corpus = json.load(stream)
    with open(peer_dir / 'mix.json') as stream:
        mix = json.load(stream)
    by_key = {entry['key']: entry for entry in corpus}
    missing = [m['key'] for m in mix if m['key'] not in by_key]
    if missing:
        raise BenchError(f'mix.json names entries missing from corpus.json: '
                         f'{missing}')
    return send_mod.mix_sequence(mix, by_key)


def routed_entry(entry: dict) -> dict:
    """The entry with its exchange mapped to one the packaged agent
    listens to (see EXCHANGE_MAP)."""
    exchange = EXCHANGE_MAP.get(entry['exchange'], entry['exchange'])
    return entry if exchange == entry['exchange'] else dict(
        entry, exchange=exchange)


def renumber_polled(payload: dict, id_prefix: str, first_seq: int,
                    secret: str) -> int:
    """Give the samples of a ``telemetry.polling`` payload our numbered
    ids and re-sign them; return the next free sequence number."""
    seq = first_seq
    for data in payload.get('samples', []):
        data['message_id'] = make_message_id(id_prefix, seq)
        data.pop('message_signature', None)
        data['message_signature'] = publisher_utils.compute_signature(
            data, secret)
        seq += 1
    return seq


def vary_payload(send_mod: Any, entry: dict, copy_index: int,
                 resources: int) -> dict:
    """A copy of the entry's payload with its "vary" paths rewritten to
    resource number ``copy_index % resources`` (send.py's scheme)."""
    payload = copy.deepcopy(entry['payload'])
    k = copy_index % resources
    for path in entry.get('vary', []):
        send_mod._set_path(payload, path,
                           lambda v, k=k: send_mod.vary_id(v, k))
    return payload


def expected_totals(sent_by_key: dict[str, int],
                    per_key: dict[str, dict[str, int]]
                    ) -> tuple[int, int, list[str]]:
    """Expected (samples, events) for the notifications sent per key,
    and the keys without an expectation."""
    samples = events = 0
    unknown = []
    for key, count in sent_by_key.items():
        per = per_key.get(key)
        if per is None:
            unknown.append(key)
            continue
        samples += count * per.get('samples', 0)
        events += count * per.get('events', 0)
    return samples, events, sorted(unknown)


def parse_dryrun(lines: Iterable[str], markers: dict[str, str]
                 ) -> dict[str, dict[str, int]]:
    """Samples and events per key from ``telemeter-notification-dryrun``
    output of ``[marker, entry, marker, entry, ...]``.

    ``markers`` maps each marker's message id to the key of the entry
    that follows it; a marker produces one event and no sample, so every
    record between two marker events belongs to the entry in between.
    """
    counts: dict[str, dict[str, int]] = {}
    key = None
    for line in lines:
        line = line.strip()
        if not line:
            continue
        record = json.loads(line)
        if record.get('kind') == 'event' and record.get(
                'message_id') in markers:
            key = markers[record['message_id']]
            counts[key] = {'samples': 0, 'events': 0}
            continue
        if key is None:
            continue
        kind = 'samples' if record.get('kind') == 'sample' else 'events'
        counts[key][kind] += 1
    return counts


def dryrun_input(entries: dict[str, dict], send_mod: Any,
                 secret: str) -> tuple[list[dict], dict[str, str]]:
    """Notifications for the dry run (a marker before each entry) and the
    marker ids → entry keys."""
    notifications = []
    markers = {}
    for index, (key, entry) in enumerate(sorted(entries.items())):
        marker_id = str(uuid.uuid4())
        markers[marker_id] = key
        notifications.append({
            'event_type': 'e2e.bench.marker', 'priority': 'info',
            'publisher_id': 'e2e-bench', 'payload': {'index': index},
            'metadata': {'message_id': marker_id}})
        payload = vary_payload(send_mod, entry, 0, 1)
        if entry['event_type'] == POLLING_EVENT_TYPE:
            renumber_polled(payload, 'dryrun-', 0, secret)
        notifications.append({
            'event_type': entry['event_type'],
            'priority': entry['priority'].lower(),
            'publisher_id': entry['publisher_id'], 'payload': payload,
            'ctxt': entry.get('ctxt') or {},
            'metadata': {'message_id': str(uuid.uuid4())}})
    return notifications, markers


# ---------------------------------------------------------- the sender


class SendErrors(logging.Handler):
    """Counts the errors oslo.messaging's Notifier logs (it never raises
    on a failed send)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class Pacer:
    """Waits for the next slot of a steady rate (None: no waiting)."""

    def __init__(self, per_second: float | None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.clock = clock
        self.sleep = sleep
        self.next_at = clock()

    def wait(self) -> None:
        """Sleep until the next slot; a late sender does not catch up by
        bursting more than one slot."""
        if not self.interval:
            return
        now = self.clock()
        if self.next_at > now:
            self.sleep(self.next_at - now)
            self.next_at += self.interval
        else:
            self.next_at = now + self.interval


SEQ_SPAN = 1 << 40  # message id numbers of one sender process


def first_seq(index: int) -> int:
    """The first message id number of sender process ``index``."""
    return index * SEQ_SPAN


def sender_conf(config_file: str) -> Any:
    """The daemons' configuration, loaded as the polling agent loads it."""
    from oslo_config import cfg

    from telemeter import service
    return service.prepare_service(argv=['e2e-bench-sender'],
                                   config_files=[config_file],
                                   conf=cfg.ConfigOpts())


def polling_notifier(conf: Any) -> Any:
    """A Notifier set up as ``AgentManager`` sets up its own."""
    from telemeter import messaging
    transport = messaging.get_transport(conf)
    return messaging.get_notifier(
        transport, POLLING_PUBLISHER_ID,
        driver=conf.publisher_notifier.telemetry_driver)


def send_polling_batch(notifier: Any, batch: list[dict]) -> None:
    """One ``telemetry.polling`` notification, as ``AgentManager``
    sends it (sample priority, empty context)."""
    notifier.sample({}, POLLING_EVENT_TYPE, polling_payload(batch))


class StatusWriter:
    """One JSON line per second on stdout for the bench process."""

    def __init__(self) -> None:
        self.last = 0.0

    def maybe(self, **fields: Any) -> None:
        now = time.time()
        if now - self.last >= 1.0:
            self.emit(**fields)

    def emit(self, **fields: Any) -> None:
        self.last = time.time()
        print(json.dumps(dict(fields, t=self.last)), flush=True)


def run_polling_sender(args: argparse.Namespace) -> int:
    """The sender process of ``--mode polling``."""
    conf = sender_conf(args.config_file)
    errors = SendErrors()
    logging.getLogger('oslo_messaging').addHandler(errors)
    notifier = polling_notifier(conf)
    instances = make_instances(args.instances)[args.index::args.senders]
    load = PollingLoad(instances, conf.publisher.telemetry_secret,
                       args.id_prefix, batch=args.batch,
                       start_seq=first_seq(args.index))
    pacer = Pacer(args.rate / args.batch if args.rate else None)
    status = StatusWriter()
    sent_ranges: list[tuple[int, int]] = []
    notifications = samples = 0
    deadline = time.time() + args.seconds
    status.emit(notifications=0, samples=0, errors=0)
    while time.time() < deadline:
        pacer.wait()
        first = load.next_seq
        batch = load.next_batch()
        before = errors.count
        send_polling_batch(notifier, batch)
        if errors.count == before:
            sent_ranges.append((first, load.next_seq))
            notifications += 1
            samples += len(batch)
        status.maybe(notifications=notifications, samples=samples,
                     errors=errors.count)
    status.emit(notifications=notifications, samples=samples,
                errors=errors.count, done=True,
                sent_ranges=merge_ranges(sent_ranges),
                meter_counts=dict(load.meter_counts),
                meter_resources=load.meter_resources())
    notifier.transport.cleanup()
    return 0


def run_notification_sender(args: argparse.Namespace) -> int:
    """The sender process of ``--mode notifications``."""
    conf = sender_conf(args.config_file)
    secret = conf.publisher.telemetry_secret
    peer_dir = Path(args.peer_dir)
    send_mod = load_peer_send(peer_dir)
    sequence = mix_entries(peer_dir, send_mod)
    errors = SendErrors()
    logging.getLogger('oslo_messaging').addHandler(errors)
    url = conf.transport_url
    sender = send_mod.Sender(url)
    pacer = Pacer(args.rate)
    status = StatusWriter()
    by_key: collections.Counter[str] = collections.Counter()
    sent_ranges: list[tuple[int, int]] = []
    next_seq = first_seq(args.index)
    notifications = 0
    deadline = time.time() + args.seconds
    status.emit(notifications=0, samples=0, errors=0)
    try:
        while time.time() < deadline:
            pacer.wait()
            copy_index = notifications * args.senders + args.index
            entry = routed_entry(sequence[copy_index % len(sequence)])
            payload = vary_payload(send_mod, entry, copy_index,
                                   args.resources)
            first = next_seq
            if entry['event_type'] == POLLING_EVENT_TYPE:
                next_seq = renumber_polled(payload, args.id_prefix,
                                           next_seq, secret)
            before = errors.count
            sender.send(entry, payload)
            notifications += 1
            if errors.count == before:
                by_key[entry['key']] += 1
                sent_ranges.append((first, next_seq))
            status.maybe(notifications=notifications,
                         samples=sum(by_key.values()), errors=errors.count)
    finally:
        sender.close()
    status.emit(notifications=sum(by_key.values()),
                samples=sum(by_key.values()), errors=errors.count,
                done=True, sent_ranges=merge_ranges(sent_ranges),
                by_key=dict(by_key))
    return 0


def sender_main(argv: list[str]) -> int:
    """``e2e_bench.py _sender ...``: the load process (internal)."""
    parser = argparse.ArgumentParser(prog='e2e_bench.py _sender')
    parser.add_argument('--mode', choices=('polling', 'notifications'),
                        required=True)
    parser.add_argument('--config-file', required=True)
    parser.add_argument('--seconds', type=float, required=True)
    parser.add_argument('--rate', type=float, default=None)
    parser.add_argument('--id-prefix', required=True)
    parser.add_argument('--instances', type=int, default=1000)
    parser.add_argument('--batch', type=int, default=POLLING_BATCH)
    parser.add_argument('--peer-dir', default=str(DEFAULT_PEER_DIR))
    parser.add_argument('--resources', type=int, default=1000)
    parser.add_argument('--index', type=int, default=0)
    parser.add_argument('--senders', type=int, default=1)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.mode == 'polling':
        return run_polling_sender(args)
    return run_notification_sender(args)


# ------------------------------------------------------- /proc sampling


@dataclasses.dataclass
class ProcSample:
    """One process as /proc shows it."""

    pid: int
    ppid: int
    label: str
    rss_mb: float
    hwm_mb: float
    cpu_s: float


def read_proc(pid: int) -> ProcSample | None:
    """RSS, peak RSS (VmHWM), CPU seconds and command line of ``pid``."""
    try:
        with open(f'/proc/{pid}/stat') as stream:
            stat = stream.read()
        with open(f'/proc/{pid}/status') as stream:
            status = stream.read()
        with open(f'/proc/{pid}/cmdline', 'rb') as stream:
            cmdline = stream.read()
    except OSError:
        return None
    fields = stat[stat.rindex(')') + 2:].split()
    memory = {}
    for line in status.splitlines():
        if line.startswith(('VmRSS:', 'VmHWM:')):
            name, value = line.split(':', 1)
            memory[name] = int(value.split()[0]) / 1024.0
    label = cmdline.replace(b'\0', b' ').decode(errors='replace').strip()
    return ProcSample(pid=pid, ppid=int(fields[1]), label=label[:90],
                      rss_mb=memory.get('VmRSS', 0.0),
                      hwm_mb=memory.get('VmHWM', 0.0),
                      cpu_s=(int(fields[11]) + int(fields[12])) / CLK_TCK)


def parent_map() -> dict[int, int]:
    """pid → ppid of every process."""
    parents = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as stream:
                stat = stream.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat[stat.rindex(')') + 2:].split()[1])
    return parents


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, ppid in parents.items():
        children[ppid].append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in parents or pid == root:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


@dataclasses.dataclass
class ProcRecord:
    """What the bench kept of one daemon process."""

    pid: int
    label: str
    role: str
    peak_rss_mb: float = 0.0
    peak_hwm_mb: float = 0.0
    last_rss_mb: float = 0.0
    cpu_s: float = 0.0
    cpu_base: float = 0.0
    cpu_at: dict[str, float] = dataclasses.field(default_factory=dict)


class ProcWatch:
    """Samples every process of every daemon the bench started."""

    def __init__(self) -> None:
        self.roots: dict[str, int] = {}
        self.records: dict[str, dict[int, ProcRecord]] = {}
        self.baseline: set[str] = set()
        self.tree_peak: dict[str, float] = {}
        self._lock = threading.Lock()

    def track(self, name: str, root: int, baseline: bool = False) -> None:
        """Watch ``root`` and its descendants as ``name``; with
        ``baseline`` (a server that ran before) CPU counts from the first
        sight of each process."""
        with self._lock:
            self.roots[name] = root
            self.records.setdefault(name, {})
            if baseline:
                self.baseline.add(name)

    def sample(self) -> None:
        """Read /proc for every process of every tracked daemon."""
        parents = parent_map()
        with self._lock:
            for name, root in self.roots.items():
                now = 0.0
                for pid in descendants(root, parents):
                    now += self._update(name, root, pid)
                self.tree_peak[name] = max(self.tree_peak.get(name, 0.0),
                                           now)

    def _update(self, name: str, root: int, pid: int) -> float:
        """Record one process; return its RSS (MB) now."""
        proc = read_proc(pid)
        if proc is None:
            return 0.0
        record = self.records[name].get(pid)
        if record is None:
            record = self.records[name][pid] = ProcRecord(
                pid=pid, label=proc.label,
                role='master' if pid == root else 'worker',
                cpu_base=proc.cpu_s if name in self.baseline else 0.0)
        record.label = proc.label or record.label
        record.peak_rss_mb = max(record.peak_rss_mb, proc.rss_mb)
        record.peak_hwm_mb = max(record.peak_hwm_mb, proc.hwm_mb)
        record.last_rss_mb = proc.rss_mb
        record.cpu_s = proc.cpu_s
        return proc.rss_mb

    def mark(self, label: str) -> None:
        """Remember every process's CPU seconds now (e.g. at the window
        start) to report CPU spent between marks."""
        with self._lock:
            for records in self.records.values():
                for record in records.values():
                    record.cpu_at[label] = record.cpu_s

    def pids(self, name: str) -> list[ProcRecord]:
        with self._lock:
            return sorted(self.records.get(name, {}).values(),
                          key=lambda r: (r.role != 'master', r.pid))

    def summary(self) -> dict[str, Any]:
        """Per daemon: processes, total CPU, summed and largest peaks."""
        result = {}
        with self._lock:
            for name, records in self.records.items():
                procs = sorted(records.values(),
                               key=lambda r: (r.role != 'master', r.pid))
                result[name] = {
                    'processes': [dataclasses.asdict(r) for r in procs],
                    'cpu_s': round(sum(r.cpu_s - r.cpu_base
                                       for r in procs), 2),
                    'cpu_s_window': round(sum(
                        r.cpu_at.get('window_end', r.cpu_s)
                        - r.cpu_at.get('window_start', r.cpu_base)
                        for r in procs), 2),
                    'peak_rss_mb_tree': round(
                        self.tree_peak.get(name, 0.0), 1),
                    'peak_hwm_mb_max': round(max(
                        (r.peak_hwm_mb for r in procs), default=0.0), 1),
                }
        return result


# --------------------------------------------------------- queue probes


@dataclasses.dataclass
class QueueDepth:
    """One queue at one moment."""

    ready: int
    unacked: int | None
    consumers: int

    @property
    def total(self) -> int:
        return self.ready + (self.unacked or 0)


class RabbitmqctlProbe:
    """``rabbitmqctl list_queues`` through tools/services.sh (every
    queue, ready and unacknowledged): ~0.6 CPU-seconds and 1-15 s a
    call, so only for the first and last look."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def snapshot(self) -> dict[str, QueueDepth]:
        out = self.services.rabbitmqctl(
            'list_queues', '-q', '--formatter', 'json', 'name',
            'messages_ready', 'messages_unacknowledged', 'consumers')
        rows = json.loads(out or '[]')
        return {row['name']: QueueDepth(int(row['messages_ready']),
                                        int(row['messages_unacknowledged']),
                                        int(row['consumers']))
                for row in rows}


class AmqpProbe:
    """AMQP passive declares of the packaged queues: ready messages and
    consumers (cheap enough to sample every second or two)."""

    def __init__(self, url: str) -> None:
        import kombu
        self.connection = kombu.Connection(url.replace('rabbit://',
                                                       'amqp://', 1))
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, QueueDepth]:
        with self._lock:
            return self._snapshot()

    def close(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self.connection.release()

    def _snapshot(self) -> dict[str, QueueDepth]:
        result = {}
        for name in KNOWN_QUEUES:
            try:
                channel = self.connection.channel()
                try:
                    _, ready, consumers = channel.queue_declare(
                        queue=name, passive=True)
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
            except Exception:  # noqa: S112 - an absent queue is no queue
                continue
            result[name] = QueueDepth(int(ready), None, int(consumers))
        return result


class QueueWatch(threading.Thread):
    """Samples queue depths every ``interval`` seconds in the background
    (a rabbitmqctl call takes most of a second)."""

    def __init__(self, probe: Any, interval: float) -> None:
        super().__init__(name='queue-watch', daemon=True)
        self.probe = probe
        self.interval = interval
        self.series: list[tuple[float, dict[str, QueueDepth]]] = []
        self.errors = 0
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            self.poll()
            self._halt.wait(self.interval)

    def poll(self) -> dict[str, QueueDepth] | None:
        """One snapshot now (also callable from the main thread)."""
        try:
            snap = self.probe.snapshot()
        except Exception:
            self.errors += 1
            return None
        with self._lock:
            self.series.append((time.time(), snap))
        return snap

    def latest(self) -> dict[str, QueueDepth]:
        with self._lock:
            return self.series[-1][1] if self.series else {}

    def latest_at(self) -> float:
        with self._lock:
            return self.series[-1][0] if self.series else 0.0

    def stop(self) -> None:
        self._halt.set()

    def copy(self) -> list[tuple[float, dict[str, QueueDepth]]]:
        with self._lock:
            return list(self.series)


def queue_report(series: list[tuple[float, dict[str, QueueDepth]]],
                 window: tuple[float, float], origin: float,
                 offered_msgs_per_s: float) -> dict[str, Any]:
    """Per queue: its depth over time, max, at window end, the growth
    over the window (messages/s) and whether it stayed flat."""
    names = sorted({name for _, snap in series for name in snap})
    report = {}
    for name in names:
        points = [(t, snap[name].total) for t, snap in series
                  if name in snap]
        in_window = [(t, d) for t, d in points
                     if window[0] <= t <= window[1]]
        growth = slope(in_window) if len(in_window) >= 3 else None
        report[name] = {
            'series': [[round(t - origin, 1), d] for t, d in points],
            'max': max((d for _, d in points), default=0),
            'at_window_start': in_window[0][1] if in_window else None,
            'at_window_end': in_window[-1][1] if in_window else None,
            'last': points[-1][1] if points else None,
            'samples_in_window': len(in_window),
            'growth_per_s_in_window': (None if growth is None
                                       else round(growth, 2)),
            'flat_in_window': is_flat(growth, offered_msgs_per_s),
        }
    return report


# ------------------------------------------------- servers and databases


class Services:
    """``tools/services.sh`` with the bench's own ports and state dir."""

    def __init__(self, state_dir: str, rabbit_port: int,
                 pg_port: int) -> None:
        self.script = REPO / 'tools' / 'services.sh'
        self.env = dict(os.environ, TELEMETER_SERVICES_DIR=state_dir,
                        TELEMETER_RABBIT_PORT=str(rabbit_port),
                        TELEMETER_PG_PORT=str(pg_port))
        self.state_dir = Path(state_dir)
        self.ports = {'rabbitmq': rabbit_port, 'postgresql': pg_port}
        self.started: list[str] = []

    def pid(self, service: str) -> int | None:
        """The launcher PID services.sh recorded for ``service``."""
        path = (self.state_dir / f'{service}-{self.ports[service]}'
                / 'launcher.pid')
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _run(self, *args: str, check: bool = True,
             capture: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(['bash', str(self.script), *args],
                              env=self.env, check=check, text=True,
                              capture_output=capture, timeout=300)

    def running(self, service: str) -> bool:
        return self._run('status', service, check=False).returncode == 0

    def ensure(self, service: str) -> None:
        """Start ``service`` unless it runs already (then it is reused
        and left running at the end)."""
        if self.running(service):
            say(f'{service}: reusing the running server')
            return
        say(f'{service}: starting (tools/services.sh up {service})')
        result = self._run('up', service, check=False)
        if result.returncode != 0:
            raise BenchError(
                f'tools/services.sh up {service} failed:\n{result.stderr}'
                f'\nIs the package installed (tools/install.sh)? Is the '
                f'port taken (choose another with --rabbit-port / '
                f'--pg-port)?')
        self.started.append(service)

    def url(self, service: str) -> str:
        out = self._run('env', service).stdout.strip()
        return out.split('=', 1)[1]

    def rabbitmqctl(self, *args: str) -> str:
        return self._run('rabbitmqctl', *args).stdout

    def stop_started(self) -> None:
        """``down`` (stop, delete state) what this run started."""
        for service in reversed(self.started):
            say(f'{service}: stopping (tools/services.sh down {service})')
            self._run('down', service, check=False)
        self.started = []


class ScratchDatabase:
    """A database made for one run on a PostgreSQL or MySQL server."""

    def __init__(self, admin_url: str, name: str) -> None:
        import sqlalchemy as sa
        self.sa = sa
        self.admin_url = sa.engine.make_url(admin_url)
        self.name = name
        self.url = self.admin_url.set(database=name).render_as_string(
            hide_password=False)
        self.created = False

    def _admin(self) -> Any:
        return self.sa.create_engine(self.admin_url,
                                     isolation_level='AUTOCOMMIT')

    def create(self) -> None:
        engine = self._admin()
        try:
            with engine.connect() as conn:
                conn.execute(self.sa.text(f'CREATE DATABASE {self.name}'))
        except Exception as err:
            raise BenchError(
                f'cannot create database {self.name} with '
                f'{self.admin_url.render_as_string()}: {err}\nCheck that '
                f'the server runs and that the account of --database-url '
                f'may CREATE DATABASE (or leave --database-url out: the '
                f'bench then starts PostgreSQL itself)') from err
        finally:
            engine.dispose()
        self.created = True

    def drop(self) -> None:
        if not self.created:
            return
        force = (' WITH (FORCE)'
                 if self.admin_url.get_backend_name() == 'postgresql'
                 else '')
        engine = self._admin()
        try:
            with engine.connect() as conn:
                conn.execute(self.sa.text(
                    f'DROP DATABASE IF EXISTS {self.name}{force}'))
        finally:
            engine.dispose()
        self.created = False


class TableCounter:
    """``SELECT count(*)`` of the sample and event tables (progress and
    drain detection; the figures come from the storage API)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa
        self.sa = sa
        self.engine = sa.create_engine(url, pool_size=1, max_overflow=0)

    def counts(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            samples = conn.execute(self.sa.text(
                'SELECT count(*) FROM sample')).scalar_one()
            events = conn.execute(self.sa.text(
                'SELECT count(*) FROM event')).scalar_one()
        return int(samples), int(events)

    def dispose(self) -> None:
        self.engine.dispose()


# ------------------------------------------------------------- daemons


def script(name: str) -> str:
    """Path of a console script of this interpreter's virtualenv."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise BenchError(f'{path} is missing: run the bench with the '
                         f'project virtualenv (.venv/bin/python) after '
                         f'tools/install.sh')
    return str(path)


class Daemon:
    """One daemon started by the bench (its own session/process group)."""

    def __init__(self, name: str, config: Path, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f'{name}.stdout'
        self._log = open(self.log_path, 'ab')
        self.process = subprocess.Popen(
            [script(name), '--config-file', str(config)],
            stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        self.exit_code: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float) -> int | None:
        """SIGTERM the master, wait, then SIGKILL its process group."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f'{self.name} did not stop within {timeout:.0f} s of '
                    f'SIGTERM: killing its process group')
        if self.alive() or _group_alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        self.exit_code = self.process.returncode
        if not self._log.closed:
            self._log.close()
        return self.exit_code


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def write_config(path: Path, transport_url: str, database_url: str,
                 log_dir: Path, secret: str, agent_workers: int,
                 collector_workers: int, extra: list[str]) -> str:
    """The daemons' telemeter.conf: servers, log dir, workers, secret,
    plus ``section.option=value`` extras.  Returns its text."""
    sections: dict[str, list[tuple[str, str]]] = {
        'DEFAULT': [('transport_url', transport_url),
                    ('log_dir', str(log_dir))],
        'database': [('connection', database_url)],
        'collector': [('udp_address', ''),
                      ('workers', str(collector_workers))],
        'notification': [('workers', str(agent_workers))],
        'publisher': [('telemetry_secret', secret)],
    }
    for item in extra:
        section, option, value = parse_conf_extra(item)
        options = sections.setdefault(section, [])
        options[:] = [(o, v) for o, v in options if o != option]
        options.append((option, value))
    lines = ['# Written by tools/bench/e2e_bench.py: packaged defaults '
             'but for these.']
    for section, options in sections.items():
        lines.append(f'[{section}]')
        lines.extend(f'{option} = {value}' for option, value in options)
    text = '\n'.join(lines) + '\n'
    path.write_text(text)
    return text


def parse_conf_extra(item: str) -> tuple[str, str, str]:
    """``section.option=value`` → (section, option, value)."""
    key, sep, value = item.partition('=')
    section, dot, option = key.strip().rpartition('.')
    if not sep or not dot or not section or not option:
        raise BenchError(f'--conf-extra {item!r}: expected '
                         f'section.option=value, e.g. '
                         f'collector.batch_size=500')
    return section, option, value.strip()


def overriding_files() -> list[str]:
    """Files that would replace the packaged pipeline or definitions."""
    found = []
    for directory in ('/etc/telemeter', os.path.expanduser('~/.telemeter')):
        for name in ('pipeline.yaml', 'event_pipeline.yaml',
                     'event_definitions.yaml', 'meters.d'):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                found.append(path)
    return found


# ------------------------------------------------------------- progress

_T0 = time.monotonic()


def say(message: str) -> None:
    """A progress line with the time since start and the load average."""
    print(f'[e2e +{time.monotonic() - _T0:6.1f}s load {loadavg()}'
          f'{cpu_pressure()}] {message}', flush=True)


# ------------------------------------------------------- the sender proc


class SenderProcess:
    """The load process and what it reports (one JSON line a second)."""

    def __init__(self, args: argparse.Namespace, config: Path,
                 id_prefix: str, seconds: float, log_dir: Path,
                 index: int = 0) -> None:
        command = [sys.executable, '-W', 'ignore', str(Path(__file__)),
                   '_sender', '--mode', args.mode, '--config-file',
                   str(config), '--seconds', str(seconds),
                   '--id-prefix', id_prefix,
                   '--instances', str(args.instances),
                   '--batch', str(args.batch),
                   '--peer-dir', str(args.peer_dir),
                   '--resources', str(args.instances),
                   '--index', str(index), '--senders', str(args.senders)]
        if args.rate:
            command += ['--rate', str(args.rate / args.senders)]
        self.stderr_path = log_dir / f'sender-{index}.stderr'
        self._stderr = open(self.stderr_path, 'wb')
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr,
            stdin=subprocess.DEVNULL, text=True)
        self.series: list[tuple[float, float, float]] = []
        self.final: dict[str, Any] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                status = json.loads(line)
            except ValueError:
                continue
            self.series.append((status['t'], status['notifications'],
                                status['samples']))
            if status.get('done'):
                self.final = status

    def running(self) -> bool:
        return self.process.poll() is None

    def first_time(self) -> float | None:
        return self.series[0][0] if self.series else None

    def latest(self) -> tuple[float, float, float]:
        return self.series[-1] if self.series else (time.time(), 0, 0)

    def wait(self, timeout: float) -> None:
        self.process.wait(timeout)
        self._reader.join(10)

    def stop(self) -> None:
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if not self._stderr.closed:
            self._stderr.close()

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            text = self.stderr_path.read_text(errors='replace')
        except OSError:
            return ''
        return '\n'.join(text.splitlines()[-lines:])


def merge_series(all_series: Sequence[Sequence[tuple[float, ...]]]
                 ) -> list[tuple[float, ...]]:
    """Sum of several senders' cumulative counters, at every time any
    of them reported."""
    times = sorted({point[0] for series in all_series for point in series})
    width = max((len(p) for series in all_series for p in series), default=1)
    merged = []
    for when in times:
        values = [sum(counter_at([(p[0], p[i]) for p in series], when)
                      for series in all_series if series)
                  for i in range(1, width)]
        merged.append((when, *values))
    return merged


def merge_finals(finals: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One final report from several senders' (counts summed, id ranges
    joined; their instances are disjoint, so resources add up)."""
    merged: dict[str, Any] = {'sent_ranges': []}
    for final in finals:
        for key, value in final.items():
            if key in ('notifications', 'samples', 'errors'):
                merged[key] = merged.get(key, 0) + value
            elif key == 'sent_ranges':
                merged[key].extend(tuple(r) for r in value)
            elif isinstance(value, dict):
                counter = merged.setdefault(key, {})
                for name, count in value.items():
                    counter[name] = counter.get(name, 0) + count
    merged['sent_ranges'] = merge_ranges(merged['sent_ranges'])
    return merged


class SenderGroup:
    """``--senders`` sender processes, seen as one."""

    def __init__(self, args: argparse.Namespace, config: Path,
                 id_prefix: str, seconds: float, log_dir: Path) -> None:
        self.members = [SenderProcess(args, config, id_prefix, seconds,
                                      log_dir, index)
                        for index in range(args.senders)]
        self.stderr_path = self.members[0].stderr_path

    def running(self) -> bool:
        return any(m.running() for m in self.members)

    def wait(self, timeout: float) -> None:
        for member in self.members:
            member.wait(timeout)

    @property
    def final(self) -> dict[str, Any] | None:
        finals = [m.final for m in self.members]
        if any(f is None for f in finals):
            return None
        return merge_finals(finals)

    @property
    def series(self) -> list[tuple[float, ...]]:
        return merge_series([list(m.series) for m in self.members])

    def first_time(self) -> float | None:
        firsts = [m.first_time() for m in self.members]
        known = [f for f in firsts if f is not None]
        return min(known) if known else None

    def latest(self) -> tuple[float, ...]:
        latest = [m.latest() for m in self.members]
        return (max(p[0] for p in latest),
                *(sum(p[i] for p in latest) for i in (1, 2)))

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def stderr_tail(self) -> str:
        return '\n'.join(m.stderr_tail() for m in self.members)


# ------------------------------------------------------------ the run


@dataclasses.dataclass
class Timeline:
    """Wall-clock marks of the run (epoch seconds)."""

    start: float = 0.0
    send_start: float = 0.0
    window_start: float = 0.0
    window_end: float = 0.0
    send_end: float = 0.0
    drained: float | None = None
    end: float = 0.0


class Run:
    """One benchmark run: set-up, load, drain, analysis, tear-down."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tag = (datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
                    + '_' + secrets.token_hex(2))
        self.workdir = Path(args.workdir or
                            Path(tempfile.gettempdir()) / 'telemeter-e2e'
                            / self.tag)
        self.log_dir = self.workdir / 'log'
        self.config = self.workdir / 'telemeter.conf'
        self.rng = random.Random()  # noqa: S311 - ids, not secrets
        self.id_prefix = make_id_prefix(self.rng)
        self.services = Services(args.services_dir, args.rabbit_port,
                                 args.pg_port)
        self.procs = ProcWatch()
        self.daemons: list[Daemon] = []
        self.db: ScratchDatabase | None = None
        self.counter: TableCounter | None = None
        self.queues: QueueWatch | None = None
        self.sender: SenderGroup | None = None
        self.counts: list[tuple[float, int, int]] = []
        self.times = Timeline()
        self.load: dict[str, str] = {}
        self.machine: dict[str, tuple[float, float]] = {}
        self.managed_broker = False
        self.dryrun: dict[str, dict[str, int]] | None = None
        self.amqp: AmqpProbe | None = None
        self.final_queues: dict[str, Any] | None = None
        self.notes: list[str] = []

    # -- set-up ----------------------------------------------------------

    def setup(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        say(f'run {self.tag}: mode {self.args.mode}, workdir {self.workdir}')
        for path in overriding_files():
            self.notes.append(f'{path} exists and replaces a packaged file')
            say(f'WARNING: {path} replaces a packaged file for the daemons')
        transport_url = self.args.transport_url
        if not transport_url:
            self.services.ensure('rabbitmq')
            transport_url = self.services.url('rabbitmq')
            self.managed_broker = True
        admin_url = self.args.database_url
        if not admin_url:
            self.services.ensure('postgresql')
            admin_url = self.services.url('postgresql')
        self.track_servers()
        self.db = ScratchDatabase(admin_url, f'telemeter_e2e_{self.tag}')
        self.db.create()
        say(f'scratch database {self.db.name} created')
        secret = secrets.token_hex(16)
        write_config(self.config, transport_url, self.db.url, self.log_dir,
                     secret, self.args.agent_workers,
                     self.args.collector_workers, self.args.conf_extra)
        self.transport_url = transport_url
        self.dbsync()
        self.counter = TableCounter(self.db.url)
        self.amqp = AmqpProbe(transport_url)
        self.queues = QueueWatch(self.amqp, self.args.queue_interval)
        self.check_queues_empty()
        if self.args.mode == 'notifications':
            self.dryrun = self.run_dryrun()

    def track_servers(self) -> None:
        """CPU and RSS of the servers of services.sh (when used): where
        the two cores go besides the daemons."""
        servers = [('rabbitmq', not self.args.transport_url),
                   ('postgresql', not self.args.database_url)]
        for service, ours in servers:
            pid = self.services.pid(service) if ours else None
            if pid is not None:
                self.procs.track(service, pid, baseline=True)

    def dbsync(self) -> None:
        say('telemeter-dbsync')
        result = subprocess.run(
            [script('telemeter-dbsync'), '--config-file', str(self.config)],
            capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            raise BenchError(f'telemeter-dbsync exited '
                             f'{result.returncode}:\n{result.stderr[-3000:]}')

    def check_queues_empty(self) -> None:
        assert self.queues is not None
        snap = self.full_snapshot()
        if snap is None:
            snap = self.queues.poll() or {}
        busy = {n: q.total for n, q in snap.items() if q.total}
        if busy:
            raise BenchError(
                f'the broker already holds messages: {busy}. They would '
                f'be counted as this run\'s load. Purge them (or use a '
                f'fresh broker: leave out --transport-url)')

    def full_snapshot(self) -> dict[str, QueueDepth] | None:
        """Every queue with its unacknowledged messages (rabbitmqctl), on
        a broker the bench started; None otherwise or on failure."""
        if not self.managed_broker:
            return None
        try:
            return RabbitmqctlProbe(self.services).snapshot()
        except Exception as err:
            say(f'WARNING: rabbitmqctl list_queues failed: {err}')
            return None

    def run_dryrun(self) -> dict[str, dict[str, int]] | None:
        """What telemeter's packaged definitions make of each mix entry."""
        peer_dir = Path(self.args.peer_dir)
        send_mod = load_peer_send(peer_dir)
        entries = {e['key']: e for e in mix_entries(peer_dir, send_mod)}
        notifications, markers = dryrun_input(entries, send_mod,
                                              'dryrun-secret')
        path = self.workdir / 'dryrun-input.json'
        path.write_text(json.dumps(notifications))
        say(f'telemeter-notification-dryrun on the {len(entries)} mix '
            f'entries')
        result = subprocess.run(
            [script('telemeter-notification-dryrun'), '--config-file',
             str(self.config), str(path)],
            capture_output=True, text=True, timeout=300, check=False)
        if result.returncode not in (0, 4):
            self.notes.append(f'dryrun exited {result.returncode}; '
                              f'telemeter expectations unavailable')
            say(f'WARNING: dryrun exited {result.returncode}: '
                f'{result.stderr[-500:]}')
            return None
        return parse_dryrun(result.stdout.splitlines(), markers)

    # -- daemons ---------------------------------------------------------

    def start_daemons(self) -> None:
        for name in ('telemeter-collector', 'telemeter-agent-notification'):
            daemon = Daemon(name, self.config, self.log_dir)
            self.daemons.append(daemon)
            self.procs.track(name, daemon.pid)
            say(f'started {name} (master pid {daemon.pid})')
        self.wait_ready()
        self.procs.sample()
        for daemon in self.daemons:
            for record in self.procs.pids(daemon.name):
                say(f'  {daemon.name} {record.role} pid {record.pid}: '
                    f'{record.label}')
        say('profile a worker during the run with: py-spy record --pid '
            '<worker pid> -d 30 -o worker.svg')

    def wait_ready(self) -> None:
        """Until the broker shows consumers on the daemons' queues and
        each master has its workers."""
        assert self.queues is not None
        wanted = dict.fromkeys(AGENT_QUEUES + COLLECTOR_QUEUES, 1)
        workers = {'telemeter-collector': self.args.collector_workers,
                   'telemeter-agent-notification': self.args.agent_workers}
        deadline = time.monotonic() + self.args.start_timeout
        while time.monotonic() < deadline:
            for daemon in self.daemons:
                if not daemon.alive():
                    raise BenchError(
                        f'{daemon.name} exited with '
                        f'{daemon.process.returncode} during start-up; see '
                        f'{self.log_dir} ({daemon.name}.log / .stdout):\n'
                        + tail(daemon.log_path))
            snap = self.queues.poll() or {}
            missing = [q for q, n in wanted.items()
                       if q not in snap or snap[q].consumers < n]
            self.procs.sample()
            short = [n for n, w in workers.items()
                     if len(self.procs.pids(n)) < w + 1]
            if not missing and not short:
                return
            time.sleep(1.0)
        raise BenchError(
            f'the daemons did not start consuming within '
            f'{self.args.start_timeout:.0f} s (queues without consumer: '
            f'{missing}; daemons without all workers: {short}); see the '
            f'logs in {self.log_dir}')

    # -- load and drain --------------------------------------------------

    def offer_load(self) -> None:
        assert self.queues is not None and self.counter is not None
        seconds = self.args.warmup + self.args.duration
        self.queues.start()
        say(f'offering load for {seconds:.0f} s ({self.args.warmup:.0f} s '
            f'warm-up + {self.args.duration:.0f} s window), rate '
            f'{self.args.rate or "as fast as the sender can"}')
        self.sender = SenderGroup(self.args, self.config, self.id_prefix,
                                  seconds, self.log_dir)
        for index, member in enumerate(self.sender.members):
            self.procs.track(f'sender-{index}', member.process.pid)
        self.monitor_until(lambda: not self.sender.running(),
                           seconds + 120, phase='load')
        if self.sender.running():
            raise BenchError('the sender did not finish in time; see '
                             f'{self.sender.stderr_path}')
        self.sender.wait(30)
        if self.sender.final is None:
            raise BenchError('the sender failed:\n'
                             + self.sender.stderr_tail())
        first = self.sender.first_time() or time.time()
        self.times.send_start = first
        self.times.window_start = first + self.args.warmup
        self.times.window_end = self.times.window_start + self.args.duration
        self.times.send_end = self.sender.latest()[0]
        say(f'sender done: {fmt_int(self.sender.final["samples"])} '
            f'{"samples" if self.args.mode == "polling" else "notifications"}'
            f' in {self.times.send_end - first:.1f} s, '
            f'{self.sender.final["errors"]} send errors')

    def monitor_until(self, done: Callable[[], bool], timeout: float,
                      phase: str) -> bool:
        """Sample /proc and the tables every second, print progress every
        ``--progress`` seconds; True once ``done()``."""
        deadline = time.monotonic() + timeout
        last_print = 0.0
        while time.monotonic() < deadline:
            self.sample_once()
            now = time.time()
            self.mark_window(now)
            if time.monotonic() - last_print >= self.args.progress:
                last_print = time.monotonic()
                self.print_progress(phase)
            if done():
                return True
            self.check_daemons()
            time.sleep(1.0)
        return False

    def mark_window(self, now: float) -> None:
        """Note CPU and load when the window starts and ends."""
        first = self.sender.first_time() if self.sender else None
        if first is None:
            return
        for label, at in (('window_start', first + self.args.warmup),
                          ('window_end', first + self.args.warmup
                           + self.args.duration)):
            if label not in self.load and now >= at:
                self.procs.mark(label)
                self.load[label] = loadavg() + cpu_pressure()
                self.machine[label] = machine_cpu()

    def sample_once(self) -> None:
        assert self.counter is not None
        self.procs.sample()
        try:
            samples, events = self.counter.counts()
        except Exception as err:
            say(f'WARNING: cannot count the tables: {err}')
            return
        self.counts.append((time.time(), samples, events))

    def check_daemons(self) -> None:
        for daemon in self.daemons:
            if not daemon.alive():
                raise BenchError(f'{daemon.name} died (exit '
                                 f'{daemon.process.returncode}); see '
                                 f'{self.log_dir}:\n'
                                 + tail(daemon.log_path))

    def print_progress(self, phase: str) -> None:
        assert self.queues is not None
        sent = self.sender.latest() if self.sender else (0, 0, 0)
        stored = self.counts[-1] if self.counts else (0, 0, 0)
        rate = self.recent_rate()
        queues = ', '.join(f'{n} {q.total}' for n, q in sorted(
            self.queues.latest().items()) if q.total) or 'all empty'
        unit = 'samples' if self.args.mode == 'polling' else 'notif'
        say(f'{phase}: sent {fmt_int(sent[2])} {unit} | stored '
            f'{fmt_int(stored[1])} samples ({fmt_int(rate)}/s last 10 s), '
            f'{fmt_int(stored[2])} events | queued: {queues}')

    def recent_rate(self, span: float = 10.0) -> float:
        if len(self.counts) < 2:
            return 0.0
        end = self.counts[-1]
        start = next((c for c in self.counts if c[0] >= end[0] - span),
                     self.counts[0])
        if end[0] <= start[0]:
            return 0.0
        return (end[1] - start[1]) / (end[0] - start[0])

    def drain(self) -> None:
        """Wait until every queue is empty and the tables stop growing
        for ``--settle`` seconds, or ``--drain-timeout``."""
        assert self.queues is not None
        say(f'draining (up to {self.args.drain_timeout:.0f} s; queues '
            f'empty and counts still for {self.args.settle:.0f} s)')
        started = time.time()

        def drained() -> bool:
            if self.queues.latest_at() < started:
                return False
            if any(q.total for q in self.queues.latest().values()):
                return False
            return self.settled()

        if self.monitor_until(drained, self.args.drain_timeout, 'drain'):
            self.times.drained = time.time()
            say(f'drained in {self.times.drained - started:.1f} s')
        else:
            say(f'WARNING: not drained after {self.args.drain_timeout:.0f}'
                f' s; what is still queued is reported')
        self.queues.stop()
        self.queues.poll()
        final = self.full_snapshot()
        if final is not None:
            self.final_queues = {n: dataclasses.asdict(q)
                                 for n, q in sorted(final.items())}
            held = {n: q.total for n, q in final.items() if q.total}
            say(f'still queued (ready + unacked): {held or "nothing"}')

    def settled(self) -> bool:
        if not self.counts:
            return False
        last = self.counts[-1]
        since = [c for c in self.counts if c[0] >= last[0]
                 - self.args.settle]
        return (last[0] - self.counts[0][0] >= self.args.settle
                and all(c[1:] == last[1:] for c in since))

    def stop_daemons(self) -> None:
        self.procs.sample()
        for daemon in reversed(self.daemons):
            if daemon.exit_code is None:
                code = daemon.stop(self.args.stop_timeout)
                say(f'stopped {daemon.name} (exit {code})')

    # -- analysis --------------------------------------------------------

    def analyse(self) -> dict[str, Any]:
        """Read the database through the storage API and compute every
        figure."""
        say('reading the stored samples through the storage API')
        scan = scan_storage(self.config, self.id_prefix)
        return build_report(self, scan)

    # -- tear-down -------------------------------------------------------

    def cleanup(self) -> None:
        for step in (self._stop_sender, self.stop_daemons,
                     self._close_counter, self._drop_db,
                     self.services.stop_started):
            try:
                step()
            except Exception as err:
                say(f'WARNING: clean-up step {step.__name__} failed: {err}')

    def _stop_sender(self) -> None:
        if self.sender is not None:
            self.sender.stop()
        if self.queues is not None:
            self.queues.stop()
            if self.queues.is_alive():
                self.queues.join(30)
        if self.amqp is not None:
            self.amqp.close()

    def _close_counter(self) -> None:
        if self.counter is not None:
            self.counter.dispose()

    def _drop_db(self) -> None:
        if self.db is None or not self.db.created:
            return
        if self.args.keep_db:
            say(f'scratch database kept: {self.db.url}')
            return
        self.db.drop()
        say(f'scratch database {self.db.name} dropped')


def tail(path: Path, lines: int = 25) -> str:
    """Last lines of a log file ('' when unreadable)."""
    try:
        text = path.read_text(errors='replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])


# ------------------------------------------------------------- storage


@dataclasses.dataclass
class StorageScan:
    """What the database holds after the run."""

    own_seqs: list[int]
    own_recorded: list[float]
    all_recorded: list[float]
    by_meter: dict[str, int]
    rows: int
    distinct_ids: int
    events: int
    distinct_events: int
    events_by_type: dict[str, int]
    seconds: float


def scan_storage(config: Path, id_prefix: str) -> StorageScan:
    """Every stored sample (meter by meter) and event, through the public
    storage API."""
    from oslo_config import cfg

    from telemeter import service, storage
    started = time.monotonic()
    conf = service.prepare_service(argv=['e2e-bench'],
                                   config_files=[str(config)],
                                   conf=cfg.ConfigOpts())
    metering = storage.get_connection_from_config(conf, 'metering')
    own_seqs: list[int] = []
    own_recorded: list[float] = []
    all_recorded: list[float] = []
    by_meter: dict[str, int] = {}
    ids: set[str] = set()
    rows = 0
    try:
        names = sorted({m.name for m in metering.get_meters(unique=True)})
        for name in names:
            found = metering.get_samples(storage.SampleFilter(meter=name))
            by_meter[name] = len(found)
            for one in found:
                rows += 1
                ids.add(one.message_id)
                recorded = utc_epoch(one.recorded_at)
                all_recorded.append(recorded)
                seq = parse_message_id(id_prefix, one.message_id)
                if seq is not None:
                    own_seqs.append(seq)
                    own_recorded.append(recorded)
    finally:
        metering.dispose()
    events, distinct_events, by_type = scan_events(conf)
    return StorageScan(own_seqs=own_seqs, own_recorded=own_recorded,
                       all_recorded=all_recorded, by_meter=by_meter,
                       rows=rows, distinct_ids=len(ids), events=events,
                       distinct_events=distinct_events,
                       events_by_type=by_type,
                       seconds=time.monotonic() - started)


def scan_events(conf: Any) -> tuple[int, int, dict[str, int]]:
    """(rows, distinct message ids, rows per event type) of events."""
    from telemeter import storage
    conn = storage.get_connection_from_config(conf, 'event')
    rows = 0
    ids: set[str] = set()
    by_type: dict[str, int] = {}
    try:
        for event_type in conn.get_event_types():
            found = conn.get_events(storage.EventFilter(
                event_type=event_type))
            by_type[event_type] = len(found)
            rows += len(found)
            ids.update(e.message_id for e in found)
    finally:
        conn.dispose()
    return rows, len(ids), by_type


# -------------------------------------------------------------- report


def build_report(run: Run, scan: StorageScan) -> dict[str, Any]:
    """Every figure of the run as one JSON-friendly dict."""
    args, times = run.args, run.times
    assert run.sender is not None and run.sender.final is not None
    final = run.sender.final
    window = (times.window_start, times.window_end)
    sent_series = [(t, s) for t, _, s in run.sender.series]
    notif_series = [(t, n) for t, n, _ in run.sender.series]
    send_seconds = max(times.send_end - times.send_start, 1e-9)
    event_series = [(t, e) for t, _, e in run.counts]
    bins5 = binned(scan.all_recorded, *window, width=5.0)
    offered_msgs = counter_rate(notif_series, *window)
    report: dict[str, Any] = {
        'tag': run.tag, 'mode': args.mode,
        'command': ' '.join(sys.argv),
        'config': run.config.read_text(),
        'workdir': str(run.workdir),
        'load_average': dict(run.load),
        'timeline': {k: (None if v is None else round(v - times.start, 2))
                     for k, v in dataclasses.asdict(times).items()},
        'offered': {
            'unit': 'samples' if args.mode == 'polling' else 'notifications',
            'total': final['samples'],
            'notifications': final['notifications'],
            'send_errors': final['errors'],
            'per_s_whole_send': round(final['samples'] / send_seconds, 1),
            'per_s_window': round(counter_rate(sent_series, *window), 1),
            'notifications_per_s_window': round(offered_msgs, 1),
        },
        'stored': {
            'samples_rows': scan.rows,
            'samples_by_meter': scan.by_meter,
            'samples_per_s_window': round(window_rate(
                scan.all_recorded, *window), 1),
            'samples_cv_5s_bins_window': _round(variation(bins5), 3),
            'samples_5s_bins_window': bins5,
            'samples_per_s_after_send': round(
                after_rate(scan.all_recorded, times.send_end), 1),
            'events_rows': scan.events,
            'events_by_type': scan.events_by_type,
            'events_per_s_window': round(counter_rate(event_series,
                                                      *window), 1),
            'storage_scan_s': round(scan.seconds, 1),
        },
        'queues': queue_report(run.queues.copy() if run.queues else [],
                               window, times.start, offered_msgs),
        'machine_cpu_window': machine_share(run),
        'queues_after_drain_rabbitmqctl': run.final_queues,
        'drained': times.drained is not None,
        'lost_is_upper_bound': times.drained is None,
        'daemons': run.procs.summary(),
        'notes': run.notes,
    }
    if args.mode == 'polling':
        report['delivery'] = polling_delivery(final, scan)
        report['stored']['polled_samples_per_s_window'] = round(
            window_rate(scan.own_recorded, *window), 1)
    else:
        delivery = notification_delivery(run, final, scan)
        report['delivery'] = delivery
        expected = delivery.get('expected_telemeter_dryrun',
                               delivery['expected_ceilometer'])
        offered = report['offered']
        offered['expected_samples_per_s_whole_send'] = round(
            expected['samples'] / send_seconds, 1)
        offered['expected_events_per_s_whole_send'] = round(
            expected['events'] / send_seconds, 1)
    return report


def machine_share(run: Run) -> dict[str, float] | None:
    """Cores busy in the window: the whole machine, the processes the
    bench watched, and the rest (other users of a shared box)."""
    start, end = (run.machine.get('window_start'),
                  run.machine.get('window_end'))
    if start is None or end is None or end[1] <= start[1]:
        return None
    cores = os.cpu_count() or 1
    wall = (end[1] - start[1]) / cores
    busy = (end[0] - start[0]) / wall
    ours = sum(d['cpu_s_window']
               for d in run.procs.summary().values()) / wall
    return {'cores': cores, 'busy_cores': round(busy, 2),
            'bench_processes_cores': round(ours, 2),
            'other_cores': round(busy - ours, 2)}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def polling_delivery(final: dict, scan: StorageScan) -> dict[str, Any]:
    """Sent / stored / lost / duplicated of the numbered samples, and the
    derived samples against the packaged pipeline's expectation."""
    ranges = [tuple(r) for r in final['sent_ranges']]
    delivery = count_delivery(ranges, scan.own_seqs)
    derived = scan.rows - delivery.stored_rows
    return dict(dataclasses.asdict(delivery),
                derived_rows=derived,
                derived_expected_one_worker=expected_derived(
                    final['meter_counts'], final['meter_resources']),
                all_rows=scan.rows,
                all_duplicated=scan.rows - scan.distinct_ids)


def notification_delivery(run: Run, final: dict,
                          scan: StorageScan) -> dict[str, Any]:
    """Expected samples and events of the notifications sent (Ceilometer
    golden counts and telemeter's dry run) against the stored rows."""
    peer_dir = Path(run.args.peer_dir)
    with open(peer_dir / 'expected-counts.json') as stream:
        golden = json.load(stream)['per_notification']
    by_key = final['by_key']
    g_samples, g_events, g_unknown = expected_totals(by_key, golden)
    result: dict[str, Any] = {
        'notifications_sent': sum(by_key.values()),
        'sent_by_key': by_key,
        'expected_ceilometer': {'samples': g_samples, 'events': g_events,
                                'keys_without_counts': g_unknown},
    }
    derived = sum(n for m, n in scan.by_meter.items()
                  if is_derived_meter(m))
    base = scan.rows - derived
    result['stored'] = {'samples_base': base, 'samples_derived': derived,
                        'events': scan.events}
    if run.dryrun is not None:
        t_samples, t_events, t_unknown = expected_totals(by_key, run.dryrun)
        result['expected_telemeter_dryrun'] = {
            'samples': t_samples, 'events': t_events,
            'keys_without_counts': t_unknown,
            'per_key': run.dryrun,
            'differs_from_ceilometer': {
                k: {'ceilometer': golden.get(k), 'telemeter': v}
                for k, v in sorted(run.dryrun.items())
                if golden.get(k) != v}}
        result['lost_samples'] = t_samples - base
        result['lost_events'] = t_events - scan.events
    result['duplicated_samples'] = scan.rows - scan.distinct_ids
    result['duplicated_events'] = scan.events - scan.distinct_events
    own = count_delivery([tuple(r) for r in final['sent_ranges']],
                         scan.own_seqs)
    result['polled_samples'] = dataclasses.asdict(own)
    return result


def print_report(report: dict[str, Any]) -> None:
    """The human summary of a report."""
    load = report['load_average']
    offered, stored = report['offered'], report['stored']
    at = (f"[load start {load.get('start')}, window "
          f"{load.get('window_start')} → {load.get('window_end')}, end "
          f"{load.get('end')}]")
    unit = offered['unit']
    print()
    print(f"== e2e bench {report['tag']} ({report['mode']}) {at}")
    notes = (f" ({fmt_int(offered['notifications'])} notifications)"
             if unit == 'samples' else '')
    print(f"offered: {fmt_int(offered['total'])} {unit}{notes}, "
          f"{offered['per_s_whole_send']:,.1f} {unit}/s over the send, "
          f"{offered['per_s_window']:,.1f}/s in the window; "
          f"{offered['send_errors']} send errors")
    if 'expected_samples_per_s_whole_send' in offered:
        samples = offered['expected_samples_per_s_whole_send']
        events = offered['expected_events_per_s_whole_send']
        print(f'  i.e. {samples:,.1f} samples/s and {events:,.1f} events/s'
              f' to store (telemeter dry run counts)')
    print(f"stored, steady window: {stored['samples_per_s_window']:,.1f} "
          f"samples/s (CV of 5 s bins {stored['samples_cv_5s_bins_window']}"
          f"), {stored['events_per_s_window']:,.1f} events/s "
          f"[load {load.get('window_end')}]")
    if 'polled_samples_per_s_window' in stored:
        print(f"  of which polled samples: "
              f"{stored['polled_samples_per_s_window']:,.1f}/s")
    print(f"stored after the send (drain): "
          f"{stored['samples_per_s_after_send']:,.1f} samples/s; drained: "
          f"{report['drained']} [load {load.get('end')}]")
    print_delivery(report)
    print('queues (ready messages, AMQP passive declare; growth in the '
          'window):')
    for name, q in report['queues'].items():
        print(f"  {name:24} max {fmt_int(q['max'])}, window "
              f"{fmt_int(q['at_window_start'])} → "
              f"{fmt_int(q['at_window_end'])} "
              f"({q['growth_per_s_in_window']} msg/s, flat: "
              f"{q['flat_in_window']}), last {fmt_int(q['last'])}")
    final = report.get('queues_after_drain_rabbitmqctl')
    if final is not None:
        held = {n: q['ready'] + (q['unacked'] or 0)
                for n, q in final.items() if q['ready'] or q['unacked']}
        print(f'after the drain (rabbitmqctl, ready + unacked): '
              f'{held or "every queue empty"}')
    share = report.get('machine_cpu_window')
    if share:
        print(f"CPU in the window: {share['busy_cores']} of "
              f"{share['cores']} cores busy, {share['bench_processes_cores']}"
              f" by the processes below, {share['other_cores']} by others")
    print(f'processes (daemons, senders, servers) [load {load.get("end")}]'
          f':')
    for name, d in report['daemons'].items():
        print(f"  {name}: CPU {d['cpu_s']:.1f} s ({d['cpu_s_window']:.1f} s"
              f" in the window), peak RSS of all its processes at once "
              f"{d['peak_rss_mb_tree']:.0f} MB")
        if not name.startswith('telemeter-'):
            continue
        for p in d['processes']:
            print(f"    {p['role']:6} pid {p['pid']:>7}: peak RSS "
                  f"{p['peak_rss_mb']:.0f} MB (VmHWM {p['peak_hwm_mb']:.0f}"
                  f"), CPU {p['cpu_s']:.1f} s")
    for note in report['notes']:
        print(f'note: {note}')


def print_delivery(report: dict[str, Any]) -> None:
    """The sent / stored / lost / duplicated lines."""
    d = report['delivery']
    if not report['drained']:
        print('NOT DRAINED: "lost" below counts what was still queued or '
              'in flight when the daemons were stopped (raise '
              '--drain-timeout); see the queues after the drain')
    if report['mode'] == 'polling':
        print(f"polled samples: sent {fmt_int(d['sent'])}, stored "
              f"{fmt_int(d['stored_distinct'])}, lost {fmt_int(d['lost'])}"
              f", duplicated {fmt_int(d['duplicated'])}, unexpected "
              f"{fmt_int(d['unexpected'])}"
              + (f" (e.g. seq {d['lost_examples']})" if d['lost'] else ''))
        print(f"derived samples (transformers): {fmt_int(d['derived_rows'])}"
              f" stored, {fmt_int(d['derived_expected_one_worker'])} "
              f"expected with one agent worker; all rows "
              f"{fmt_int(d['all_rows'])}, duplicated "
              f"{fmt_int(d['all_duplicated'])}")
        return
    s = d['stored']
    ceilo = d['expected_ceilometer']
    print(f"notifications sent {fmt_int(d['notifications_sent'])}: "
          f"samples stored {fmt_int(s['samples_base'])} (+ "
          f"{fmt_int(s['samples_derived'])} derived), events stored "
          f"{fmt_int(s['events'])}")
    print(f"  expected (Ceilometer counts): {fmt_int(ceilo['samples'])} "
          f"samples, {fmt_int(ceilo['events'])} events")
    if 'expected_telemeter_dryrun' in d:
        tel = d['expected_telemeter_dryrun']
        print(f"  expected (telemeter dry run): {fmt_int(tel['samples'])} "
              f"samples, {fmt_int(tel['events'])} events → lost "
              f"{fmt_int(d['lost_samples'])} samples, "
              f"{fmt_int(d['lost_events'])} events")
        for key, diff in tel['differs_from_ceilometer'].items():
            print(f"    {key}: Ceilometer {diff['ceilometer']}, telemeter "
                  f"{diff['telemeter']}")
    print(f"  duplicated: {fmt_int(d['duplicated_samples'])} samples, "
          f"{fmt_int(d['duplicated_events'])} events; polled samples lost "
          f"{fmt_int(d['polled_samples']['lost'])} of "
          f"{fmt_int(d['polled_samples']['sent'])}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='End-to-end benchmark of telemeter: sender → '
                    'notification agent → collector → PostgreSQL. See the '
                    'module docstring for the method.')
    add = parser.add_argument
    add('--mode', choices=('polling', 'notifications'), default='polling')
    add('--rate', type=float, default=None,
        help='offered load: samples/s (polling) or notifications/s '
             '(notifications); default as fast as the sender can')
    add('--duration', type=float, default=60.0,
        help='steady window, seconds (default 60)')
    add('--warmup', type=float, default=10.0,
        help='load offered before the window, seconds (default 10)')
    add('--drain-timeout', type=float, default=180.0,
        help='longest wait for the queues to empty after the load')
    add('--settle', type=float, default=10.0,
        help='drained = queues empty and counts unchanged this long')
    add('--agent-workers', type=int, default=1,
        help='[notification] workers')
    add('--collector-workers', type=int, default=1,
        help='[collector] workers')
    add('--conf-extra', action='append', default=[],
        metavar='SECTION.OPTION=VALUE',
        help='extra daemon option (repeatable), e.g. '
             'collector.batch_size=500')
    add('--instances', type=int, default=1000,
        help='instances (polling) / resource ids (notifications)')
    add('--senders', type=int, default=1,
        help='sender processes (polling: each one a compute node with '
             'its share of the instances); --rate is split between them')
    add('--batch', type=int, default=POLLING_BATCH,
        help='samples per telemetry.polling notification')
    add('--peer-dir', default=str(DEFAULT_PEER_DIR),
        help='notification peer bench directory (corpus, mix, send.py)')
    add('--transport-url', help='use this broker instead of starting one')
    add('--database-url',
        help='server URL whose account may CREATE DATABASE (a scratch '
             'database is made there) instead of starting PostgreSQL')
    add('--services-dir',
        default=os.environ.get('TELEMETER_SERVICES_DIR', os.path.join(
            tempfile.gettempdir(), 'svc-e2e')))
    add('--rabbit-port', type=int,
        default=int(os.environ.get('TELEMETER_RABBIT_PORT', '5720')))
    add('--pg-port', type=int,
        default=int(os.environ.get('TELEMETER_PG_PORT', '55470')))
    add('--queue-interval', type=float, default=2.0,
        help='seconds between queue depth samples')
    add('--progress', type=float, default=5.0,
        help='seconds between progress lines')
    add('--start-timeout', type=float, default=120.0)
    add('--stop-timeout', type=float, default=60.0)
    add('--workdir', help='configuration, logs and result (default '
                          '/tmp/telemeter-e2e/<run tag>)')
    add('--out', help='result JSON (default <workdir>/result.json)')
    add('--keep-db', action='store_true',
        help='keep the scratch database')
    args = parser.parse_args(argv)
    for item in args.conf_extra:
        parse_conf_extra(item)
    if min(args.agent_workers, args.collector_workers, args.senders) < 1:
        parser.error('worker and sender counts must be >= 1')
    if args.mode == 'notifications' and not Path(args.peer_dir,
                                                  'send.py').exists():
        parser.error(f'--peer-dir {args.peer_dir} has no send.py')
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f'signal {signum}')


def main(argv: list[str] | None = None) -> int:
    # oslo.service's eventlet backend warns when the storage API loads.
    warnings.filterwarnings('ignore', message=r'(?s).*[Ee]ventlet is '
                                              r'deprecated')
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['_sender']:
        return sender_main(argv[1:])
    args = parse_args(argv)
    run = Run(args)
    run.times.start = time.time()
    run.load['start'] = loadavg()
    # SIGINT too: a shell's background job starts with it ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    status = 0
    try:
        run.setup()
        run.start_daemons()
        run.offer_load()
        run.drain()
        run.load['end'] = loadavg()
        run.times.end = time.time()
        run.stop_daemons()
        report = run.analyse()
        out = Path(args.out or run.workdir / 'result.json')
        out.write_text(json.dumps(report, indent=1, default=str))
        print_report(report)
        print(f'\nresult: {out}\nlogs: {run.log_dir}')
    except BenchError as err:
        say(f'ERROR: {err}')
        status = 2
    except KeyboardInterrupt:
        say('interrupted: stopping everything this run started')
        status = 130
    finally:
        # A second Ctrl-C must not leave servers or daemons behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.cleanup()
    return status


if __name__ == '__main__':
    sys.exit(main())
