"""The hypervisor inspector contract (``telemeter.compute.virt``).

An inspector reads statistics of one instance at a time. Every method takes
the instance (a Nova-like server object) and the polling ``duration`` and
raises :class:`InstanceNotFoundException` / :class:`InstanceShutOffException`
when the instance cannot be read now, :class:`NoDataException` when it never
will be, and ``NotImplementedError`` for statistics the hypervisor does not
provide (the pollster then black-lists the instance).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg
from oslo_log import log
from stevedore import driver

LOG = log.getLogger(__name__)

NAMESPACE = 'telemeter.compute.virt'

OPTS = [
    cfg.StrOpt('hypervisor_inspector',
               default='libvirt',
               help='Inspector to use for inspecting the hypervisor layer. '
                    'Known inspectors are libvirt, hyperv, vsphere and '
                    'xenapi.'),
]


@dataclasses.dataclass
class InstanceStats:
    """Instance-wide statistics; None where the hypervisor has no value."""

    cpu_number: int | None = None
    cpu_time: int | None = None
    cpu_util: float | None = None
    memory_usage: float | None = None
    memory_resident: float | None = None
    memory_swap_in: float | None = None
    memory_swap_out: float | None = None
    cpu_l3_cache_usage: int | None = None
    memory_bandwidth_total: int | None = None
    memory_bandwidth_local: int | None = None
    cpu_cycles: int | None = None
    instructions: int | None = None
    cache_references: int | None = None
    cache_misses: int | None = None


@dataclasses.dataclass
class InterfaceStats:
    """Counters of one virtual NIC and what identifies it."""

    name: str
    mac: str | None
    fref: str | None
    parameters: dict
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    rx_drop: int
    tx_drop: int
    rx_errors: int
    tx_errors: int


@dataclasses.dataclass
class DiskStats:
    """Counters of one virtual disk."""

    device: str
    read_requests: int
    read_bytes: int
    write_requests: int
    write_bytes: int
    errors: int


@dataclasses.dataclass
class DiskInfo:
    """Sizes of one virtual disk, in bytes."""

    device: str
    capacity: int
    allocation: int
    physical: int


class InspectorException(Exception):
    """Reading the hypervisor failed."""


class InstanceNotFoundException(InspectorException):
    """The instance is not on this hypervisor (any more)."""


class InstanceShutOffException(InspectorException):
    """The instance exists but is not running."""


class NoDataException(InspectorException):
    """The hypervisor will never have this statistic for the instance."""


class Inspector:
    """Base inspector: every statistic is unsupported until overridden."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    def inspect_instance(self, instance: Any,
                         duration: float | None = None) -> InstanceStats:
        """Instance-wide statistics."""
        raise NotImplementedError

    def inspect_cpu_util(self, instance: Any,
                         duration: float | None = None) -> float:
        """CPU utilisation in percent (no hypervisor of ours has it)."""
        raise NotImplementedError

    def inspect_vnics(self, instance: Any, duration: float | None = None
                      ) -> Iterator[InterfaceStats]:
        """Counters of every virtual NIC."""
        raise NotImplementedError

    def inspect_vnic_rates(self, instance: Any,
                           duration: float | None = None) -> Iterator[Any]:
        """Byte rates of every virtual NIC."""
        raise NotImplementedError

    def inspect_disks(self, instance: Any, duration: float | None = None
                      ) -> Iterator[DiskStats]:
        """Counters of every virtual disk."""
        raise NotImplementedError

    def inspect_disk_rates(self, instance: Any,
                           duration: float | None = None) -> Iterator[Any]:
        """Byte and request rates of every virtual disk."""
        raise NotImplementedError

    def inspect_disk_latency(self, instance: Any,
                             duration: float | None = None) -> Iterator[Any]:
        """Latency of every virtual disk."""
        raise NotImplementedError

    def inspect_disk_iops(self, instance: Any,
                          duration: float | None = None) -> Iterator[Any]:
        """IOPS of every virtual disk."""
        raise NotImplementedError

    def inspect_disk_info(self, instance: Any, duration: float | None = None
                          ) -> Iterator[DiskInfo]:
        """Capacity, allocation and physical size of every virtual disk."""
        raise NotImplementedError


def get_hypervisor_inspector(conf: cfg.ConfigOpts) -> Inspector:
    """The ``[DEFAULT] hypervisor_inspector`` driver.

    A driver that cannot load (e.g. libvirt-python missing) is logged and
    replaced by the base :class:`Inspector`, whose every call is
    unsupported.
    """
    try:
        return driver.DriverManager(NAMESPACE, conf.hypervisor_inspector,
                                    invoke_on_load=True,
                                    invoke_args=(conf,)).driver
    except ImportError as err:
        LOG.error('Unable to load the hypervisor inspector %(name)s: '
                  '%(err)s', {'name': conf.hypervisor_inspector, 'err': err})
        return Inspector(conf)


_SHARED: dict[int, Inspector] = {}


def shared_inspector(conf: cfg.ConfigOpts) -> Inspector:
    """One hypervisor inspector (one connection) per configuration, used
    by the ``local_instances`` discovery and every compute pollster."""
    key = id(conf)
    if key not in _SHARED:
        _SHARED[key] = get_hypervisor_inspector(conf)
    return _SHARED[key]
