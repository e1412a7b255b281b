"""Meters of the node the polling agent runs on, read with psutil.

These pollsters live in the ``compute`` namespace and use the ``local_node``
discovery, so a single machine produces real samples with no cloud around
it. Each pollster yields one Sample per call, whatever the number of
resources it is given:

- ``resource_id``: ``[DEFAULT] host``; ``user_id`` / ``project_id``: None;
- ``resource_metadata``: ``host`` plus the per-meter facts listed below;
- ``monotonic_time``: ``time.monotonic()`` of the psutil read.

| meter                         | type       | unit    | volume |
|-------------------------------|------------|---------|--------|
| `host.cpu.time`               | cumulative | ns      | int    |
| `host.memory.used`            | gauge      | B       | int    |
| `host.memory.total`           | gauge      | B       | int    |
| `host.disk.read.bytes`        | cumulative | B       | int    |
| `host.disk.write.bytes`       | cumulative | B       | int    |
| `host.network.incoming.bytes` | cumulative | B       | int    |
| `host.network.outgoing.bytes` | cumulative | B       | int    |
| `host.load.1min`              | gauge      | process | float  |
| `host.load.5min`              | gauge      | process | float  |
| `host.load.15min`             | gauge      | process | float  |

- `host.cpu.time`: CPU time of all CPUs spent in any state but idle and
  iowait (user, nice, system, irq, softirq, steal; guest time is already
  counted in user/nice). Metadata `cpu_number`.
- `host.memory.used`: `total - available`, the RAM that cannot be handed to
  new processes without swapping. Metadata `total`.
- `host.memory.total`: physical RAM.
- `host.disk.read.bytes` / `host.disk.write.bytes`: bytes read from /
  written to all physical disks. Metadata `devices`.
- `host.network.incoming.bytes` / `host.network.outgoing.bytes`: bytes
  received / sent on all interfaces but `lo`. Metadata `interfaces`.
- `host.load.1min` / `5min` / `15min`: load averages (number of runnable
  or uninterruptible processes). Metadata `cpu_number`.

Physical disks are the whole block devices of ``/sys/block`` that are not
virtual (loop, ram, zram, device-mapper... are left out, and partitions are
never counted twice); the disk meters carry the summed device names in the
metadata key ``devices``. Where ``/sys/block`` does not exist, psutil's
machine-wide total is used and ``devices`` is empty. The network meters carry
the summed interface names in ``interfaces``.

One psutil read of each kind is shared by all pollsters of a polling cycle
through the cycle's ``cache`` dict (key ``host.psutil``), so the two memory
meters, the two disk meters, the two network meters and the three load
meters are consistent with each other.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
from oslo_log import log
from oslo_utils import timeutils

from telemeter import sample as sample_mod
from telemeter.polling import plugin_base

LOG = log.getLogger(__name__)

CACHE_KEY = 'host.psutil'
SYS_BLOCK = '/sys/block'
LOOPBACK_INTERFACES = frozenset(['lo'])


class Reading:
    """A psutil value and the monotonic time at which it was read."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.monotonic_time = time.monotonic()


def _read(cache: dict, kind: str, reader: Callable[[], Any]) -> Reading:
    """Return the cycle's reading of ``kind``, reading psutil on first use."""
    readings = cache.setdefault(CACHE_KEY, {})
    if kind not in readings:
        readings[kind] = Reading(reader())
    return readings[kind]


def physical_disks(sys_block: str = SYS_BLOCK) -> list[str] | None:
    """Names of the non-virtual whole disks, or None without /sys/block."""
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return None
    disks = []
    for name in names:
        target = os.path.realpath(os.path.join(sys_block, name))
        if '/devices/virtual/' in target:
            continue
        disks.append(name.replace('!', '/'))
    return disks


def _cpu_busy_ns() -> int:
    """Non-idle CPU time of all CPUs in ns.

    Each state is converted to integer ns before summing, so that the total
    is exactly non-decreasing when every state is.
    """
    fields = psutil.cpu_times()._asdict()
    # On Linux guest time is already accounted in user / nice.
    idle = ('idle', 'iowait', 'guest', 'guest_nice')
    return sum(round(value * 1e9) for name, value in fields.items()
               if name not in idle)


def _disk_totals() -> dict[str, Any]:
    disks = physical_disks()
    if disks is None:
        total = psutil.disk_io_counters(perdisk=False)
        return {'read_bytes': int(total.read_bytes) if total else 0,
                'write_bytes': int(total.write_bytes) if total else 0,
                'devices': []}
    counters = psutil.disk_io_counters(perdisk=True) or {}
    devices = [d for d in disks if d in counters]
    return {'read_bytes': sum(int(counters[d].read_bytes) for d in devices),
            'write_bytes': sum(int(counters[d].write_bytes)
                               for d in devices),
            'devices': devices}


def _network_totals() -> dict[str, Any]:
    counters = psutil.net_io_counters(pernic=True) or {}
    interfaces = sorted(n for n in counters if n not in LOOPBACK_INTERFACES)
    return {'bytes_recv': sum(int(counters[n].bytes_recv)
                              for n in interfaces),
            'bytes_sent': sum(int(counters[n].bytes_sent)
                              for n in interfaces),
            'interfaces': interfaces}


class _HostPollster(plugin_base.PollsterBase):
    """One meter of the local node; subclasses define :meth:`measure`."""

    NAME: str = ''
    TYPE: str = sample_mod.TYPE_GAUGE
    UNIT: str = ''

    @property
    def default_discovery(self) -> str:
        return 'local_node'

    def measure(self, cache: dict) -> tuple[Any, dict, float]:
        """Return ``(volume, extra metadata, monotonic time of the read)``."""
        raise NotImplementedError

    def get_samples(self, manager: plugin_base.PollingContext, cache: dict,
                    resources: list[Any]) -> Iterator[sample_mod.Sample]:
        volume, extra, monotonic_time = self.measure(cache)
        metadata = {'host': self.conf.host}
        metadata.update(extra)
        yield sample_mod.Sample(
            name=self.NAME, type=self.TYPE, unit=self.UNIT, volume=volume,
            user_id=None, project_id=None, resource_id=self.conf.host,
            timestamp=timeutils.utcnow().isoformat(),
            resource_metadata=metadata, monotonic_time=monotonic_time)


class CPUTimePollster(_HostPollster):
    """``host.cpu.time``: non-idle CPU time of all CPUs, in ns."""

    NAME = 'host.cpu.time'
    TYPE = sample_mod.TYPE_CUMULATIVE
    UNIT = 'ns'

    def measure(self, cache: dict) -> tuple[Any, dict, float]:
        reading = _read(cache, 'cpu_busy', _cpu_busy_ns)
        cpus = _read(cache, 'cpu_count', psutil.cpu_count).value
        return (reading.value, {'cpu_number': cpus},
                reading.monotonic_time)


class _MemoryPollster(_HostPollster):
    UNIT = 'B'

    def memory(self, cache: dict) -> Reading:
        return _read(cache, 'virtual_memory', psutil.virtual_memory)


class MemoryUsedPollster(_MemoryPollster):
    """``host.memory.used``: total minus available RAM, in B."""

    NAME = 'host.memory.used'

    def measure(self, cache: dict) -> tuple[Any, dict, float]:
        reading = self.memory(cache)
        mem = reading.value
        return (int(mem.total - mem.available), {'total': int(mem.total)},
                reading.monotonic_time)


class MemoryTotalPollster(_MemoryPollster):
    """``host.memory.total``: physical RAM, in B."""

    NAME = 'host.memory.total'

    def measure(self, cache: dict) -> tuple[Any, dict, float]:
        reading = self.memory(cache)
        return int(reading.value.total), {}, reading.monotonic_time


class _DiskPollster(_HostPollster):
    TYPE = sample_mod.TYPE_CUMULATIVE
    UNIT = 'B'
    FIELD = ''

    def measure(self, cache: dict) -> tuple[Any, dict, float]:
        reading = _read(cache, 'disk_io', _disk_totals)
        return (reading.value[self.FIELD],
                {'devices': list(reading.value['devices'])},
                reading.monotonic_time)


class DiskReadBytesPollster(_DiskPollster):
    """``host.disk.read.bytes``: bytes read from the physical disks."""

    NAME = 'host.disk.read.bytes'
    FIELD = 'read_bytes'


class DiskWriteBytesPollster(_DiskPollster):
    """``host.disk.write.bytes``: bytes written to the physical disks."""

    NAME = 'host.disk.write.bytes'
    FIELD = 'write_bytes'


class _NetworkPollster(_HostPollster):
    TYPE = sample_mod.TYPE_CUMULATIVE
    UNIT = 'B'
    FIELD = ''

    def measure(self, cache: dict) -> tuple[Any, dict, float]:
        reading = _read(cache, 'net_io', _network_totals)
        return (reading.value[self.FIELD],
                {'interfaces': list(reading.value['interfaces'])},
                reading.monotonic_time)


class NetworkIncomingBytesPollster(_NetworkPollster):
    """``host.network.incoming.bytes``: bytes received (all but lo)."""

    NAME = 'host.network.incoming.bytes'
    FIELD = 'bytes_recv'


class NetworkOutgoingBytesPollster(_NetworkPollster):
    """``host.network.outgoing.bytes``: bytes sent (all but lo)."""

    NAME = 'host.network.outgoing.bytes'
    FIELD = 'bytes_sent'


class _LoadPollster(_HostPollster):
    UNIT = 'process'
    INDEX = 0

    def measure(self, cache: dict) -> tuple[Any, dict, float]:
        reading = _read(cache, 'loadavg', psutil.getloadavg)
        cpus = _read(cache, 'cpu_count', psutil.cpu_count).value
        return (float(reading.value[self.INDEX]), {'cpu_number': cpus},
                reading.monotonic_time)


class Load1MinPollster(_LoadPollster):
    """``host.load.1min``: 1-minute load average."""

    NAME = 'host.load.1min'
    INDEX = 0


class Load5MinPollster(_LoadPollster):
    """``host.load.5min``: 5-minute load average."""

    NAME = 'host.load.5min'
    INDEX = 1


class Load15MinPollster(_LoadPollster):
    """``host.load.15min``: 15-minute load average."""

    NAME = 'host.load.15min'
    INDEX = 2
