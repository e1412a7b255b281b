"""The libvirt inspector (``telemeter.compute.virt: libvirt``).

A read-only connection to ``[DEFAULT] libvirt_uri`` (else the URI of
``libvirt_type``) is opened on first use and re-opened when it is dead; a
call failing with a disconnection error is retried once on a new
connection. Instance statistics come from the bulk stats API
(``domainListGetStats``) and, where it has no value (older libvirt, the
test driver), from the per-domain calls (``getCPUStats``, ``vcpus``,
``memoryStats``, ``info``).
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any
from xml.etree import ElementTree

from oslo_config import cfg
from oslo_log import log

from telemeter.polling.compute import inspector as virt_inspector

# Loaded by the first inspector: the bindings and libvirt.so take ~12 MB,
# and every daemon imports this module for its options.
libvirt: Any = None


def _load_libvirt() -> Any:
    """The libvirt module; ImportError saying what to install if absent."""
    global libvirt
    if libvirt is None:
        try:
            import libvirt as module
        except ImportError as err:
            raise ImportError('python libvirt module is missing: install '
                              'libvirt-python (needs libvirt-dev)') from err
        libvirt = module
    return libvirt

LOG = log.getLogger(__name__)

OPTS = [
    cfg.StrOpt('libvirt_type',
               default='kvm',
               choices=['kvm', 'lxc', 'qemu', 'uml', 'xen'],
               help='Libvirt domain type.'),
    cfg.StrOpt('libvirt_uri',
               default='',
               help='Override the default libvirt URI (which is dependent '
                    'on libvirt_type).'),
]

URIS = {'uml': 'uml:///system', 'xen': 'xen:///', 'lxc': 'lxc:///'}
DEFAULT_URI = 'qemu:///system'

# virDomainState values
SHUTOFF_STATES = (5, 6)  # VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_CRASHED

_DISCONNECT_ERRORS = ('VIR_ERR_SYSTEM_ERROR', 'VIR_ERR_INTERNAL_ERROR',
                      'VIR_ERR_NO_CONNECT', 'VIR_ERR_INVALID_CONN')
_DISCONNECT_DOMAINS = ('VIR_FROM_REMOTE', 'VIR_FROM_RPC')


def _ignore_libvirt_error(ctx: Any, err: Any) -> None:
    """libvirt's error callback: errors are handled as exceptions."""


def libvirt_uri(conf: cfg.ConfigOpts) -> str:
    """The URI the inspector connects to."""
    return conf.libvirt_uri or URIS.get(conf.libvirt_type, DEFAULT_URI)


def is_disconnection(err: Exception) -> bool:
    """Whether a libvirtError means the connection is gone."""
    if libvirt is None or not isinstance(err, libvirt.libvirtError):
        return False
    codes = {getattr(libvirt, name, None) for name in _DISCONNECT_ERRORS}
    domains = {getattr(libvirt, name, None) for name in _DISCONNECT_DOMAINS}
    return (err.get_error_code() in codes
            and err.get_error_domain() in domains)


def retry_on_disconnect(method: Callable) -> Callable:
    """Re-open the connection and retry once on a disconnection error."""

    @functools.wraps(method)
    def wrapper(self: LibvirtInspector, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            if not is_disconnection(err):
                raise
            LOG.warning('Connection to libvirt broken (%s), reconnecting',
                        err)
            self.reset_connection()
            return method(self, *args, **kwargs)

    return wrapper


class LibvirtInspector(virt_inspector.Inspector):
    """Statistics of libvirt domains (see the module docstring)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        _load_libvirt()
        self._connection: Any = None
        self._lock = threading.Lock()
        # libvirt prints every error to stderr by default; they are
        # raised as libvirtError and logged here instead.
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        # Close while the interpreter is intact (libvirt's __del__ fails
        # at interpreter shutdown otherwise).
        atexit.register(self.close)

    # -- connection -----------------------------------------------------

    @property
    def connection(self) -> Any:
        """The read-only connection, (re)opened when needed."""
        with self._lock:
            conn = self._connection
            if conn is None or not self._alive(conn):
                uri = libvirt_uri(self.conf)
                LOG.debug('Connecting to libvirt: %s', uri)
                conn = self._connection = libvirt.openReadOnly(uri)
            return conn

    @staticmethod
    def _alive(conn: Any) -> bool:
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False

    def reset_connection(self) -> None:
        with self._lock:
            self._connection = None

    def close(self) -> None:
        """Close the connection (it is re-opened on next use)."""
        with self._lock:
            conn, self._connection = self._connection, None
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError:
                LOG.debug('Closing the libvirt connection failed',
                          exc_info=True)

    # -- domains --------------------------------------------------------

    @retry_on_disconnect
    def list_domains(self) -> list[Any]:
        """Every domain of the connection."""
        return list(self.connection.listAllDomains())

    @retry_on_disconnect
    def _lookup(self, instance: Any) -> Any:
        try:
            return self.connection.lookupByUUIDString(instance.id)
        except libvirt.libvirtError as err:
            if is_disconnection(err):
                raise
            raise virt_inspector.InstanceNotFoundException(
                f'instance {instance.id} not found: {err}') from err

    def _running_domain(self, instance: Any) -> Any:
        domain = self._lookup(instance)
        state = domain.info()[0]
        if state in SHUTOFF_STATES:
            raise virt_inspector.InstanceShutOffException(
                f'instance {instance.id} is shut off')
        return domain

    @staticmethod
    def _xml(domain: Any) -> ElementTree.Element:
        # The domain XML comes from libvirt itself.
        return ElementTree.fromstring(domain.XMLDesc(0))  # noqa: S314

    # -- instance -------------------------------------------------------

    def _bulk_stats(self, domain: Any) -> dict:
        flags = 0
        for name in ('VIR_DOMAIN_STATS_STATE', 'VIR_DOMAIN_STATS_CPU_TOTAL',
                     'VIR_DOMAIN_STATS_VCPU', 'VIR_DOMAIN_STATS_BALLOON',
                     'VIR_DOMAIN_STATS_PERF'):
            flags |= getattr(libvirt, name, 0)
        try:
            stats = self.connection.domainListGetStats([domain], flags)
        except libvirt.libvirtError as err:
            if is_disconnection(err):
                raise
            LOG.debug('Bulk stats unavailable: %s', err)
            return {}
        return dict(stats[0][1]) if stats else {}

    @staticmethod
    def _cpu_time(domain: Any, stats: dict, cpu_number: int) -> int | None:
        vcpu_times = [stats.get(f'vcpu.{i}.time') for i in range(cpu_number)]
        known = [t for t in vcpu_times if t is not None]
        if cpu_number and len(known) == cpu_number:
            return sum(int(t) + int(stats.get(f'vcpu.{i}.wait', 0))
                       for i, t in enumerate(known))
        if stats.get('cpu.time') is not None:
            return int(stats['cpu.time'])
        try:
            return int(domain.getCPUStats(True)[0]['cpu_time'])
        except (libvirt.libvirtError, IndexError, KeyError):
            return int(domain.info()[4])

    @staticmethod
    def _memory_stats(domain: Any, stats: dict) -> dict:
        memory = {key[len('balloon.'):]: value for key, value in stats.items()
                  if key.startswith('balloon.')}
        if not memory:
            try:
                memory = dict(domain.memoryStats())
            except libvirt.libvirtError as err:
                LOG.debug('memoryStats failed: %s', err)
        return memory

    @retry_on_disconnect
    def inspect_instance(self, instance: Any,
                         duration: float | None = None
                         ) -> virt_inspector.InstanceStats:
        domain = self._running_domain(instance)
        stats = self._bulk_stats(domain)
        cpu_number = int(stats.get('vcpu.current') or domain.info()[3])
        memory = self._memory_stats(domain, stats)
        usage = None
        if 'available' in memory and 'unused' in memory:
            usage = (memory['available'] - memory['unused']) / 1024
        elif 'current' in memory and 'unused' in memory:
            usage = (memory['current'] - memory['unused']) / 1024

        def kib_to_mib(key: str) -> float | None:
            return memory[key] / 1024 if key in memory else None

        return virt_inspector.InstanceStats(
            cpu_number=cpu_number,
            cpu_time=self._cpu_time(domain, stats, cpu_number),
            memory_usage=usage,
            memory_resident=kib_to_mib('rss'),
            memory_swap_in=kib_to_mib('swap_in'),
            memory_swap_out=kib_to_mib('swap_out'),
            cpu_l3_cache_usage=stats.get('perf.cmt'),
            memory_bandwidth_total=stats.get('perf.mbmt'),
            memory_bandwidth_local=stats.get('perf.mbml'),
            cpu_cycles=stats.get('perf.cpu_cycles'),
            instructions=stats.get('perf.instructions'),
            cache_references=stats.get('perf.cache_references'),
            cache_misses=stats.get('perf.cache_misses'),
        )

    # -- devices --------------------------------------------------------

    @retry_on_disconnect
    def inspect_vnics(self, instance: Any, duration: float | None = None
                      ) -> Iterator[virt_inspector.InterfaceStats]:
        domain = self._running_domain(instance)
        result = []
        for iface in self._xml(domain).findall('./devices/interface'):
            target = iface.find('target')
            name = target.get('dev') if target is not None else None
            if not name:
                continue
            mac = iface.find('mac')
            fref = iface.find('filterref')
            parameters = {}
            if fref is not None:
                parameters = {p.get('name'): p.get('value')
                              for p in fref.findall('parameter')}
            rx_b, rx_p, rx_e, rx_d, tx_b, tx_p, tx_e, tx_d = \
                domain.interfaceStats(name)
            result.append(virt_inspector.InterfaceStats(
                name=name,
                mac=mac.get('address') if mac is not None else None,
                fref=fref.get('filter') if fref is not None else None,
                parameters=parameters,
                rx_bytes=rx_b, tx_bytes=tx_b, rx_packets=rx_p,
                tx_packets=tx_p, rx_drop=rx_d, tx_drop=tx_d,
                rx_errors=rx_e, tx_errors=tx_e))
        return iter(result)

    def _disks(self, domain: Any) -> list[str]:
        """Target names of the disks that have a source (no empty CD)."""
        devices = []
        for disk in self._xml(domain).findall('./devices/disk'):
            source, target = disk.find('source'), disk.find('target')
            if source is None or target is None or not source.attrib:
                continue
            devices.append(target.get('dev'))
        return devices

    @retry_on_disconnect
    def inspect_disks(self, instance: Any, duration: float | None = None
                      ) -> Iterator[virt_inspector.DiskStats]:
        domain = self._running_domain(instance)
        result = []
        for device in self._disks(domain):
            rd_req, rd_bytes, wr_req, wr_bytes, errors = \
                domain.blockStats(device)
            result.append(virt_inspector.DiskStats(
                device=device, read_requests=rd_req, read_bytes=rd_bytes,
                write_requests=wr_req, write_bytes=wr_bytes, errors=errors))
        return iter(result)

    @retry_on_disconnect
    def inspect_disk_info(self, instance: Any, duration: float | None = None
                          ) -> Iterator[virt_inspector.DiskInfo]:
        domain = self._running_domain(instance)
        result = []
        for device in self._disks(domain):
            capacity, allocation, physical = domain.blockInfo(device)
            result.append(virt_inspector.DiskInfo(
                device=device, capacity=capacity, allocation=allocation,
                physical=physical))
        return iter(result)
