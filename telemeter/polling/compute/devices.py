"""Per-device compute pollsters: disks and virtual NICs.

``disk.device.*`` meters have one sample per disk (resource id
``<instance id>-<device>``, metadata ``disk_name``); ``disk.*`` meters sum
the disks (resource id = instance id, metadata ``device`` = the list of
devices). ``network.*`` meters have one sample per vNIC whose resource id is
the NIC's filterref name, else ``<libvirt name>-<instance id>-<tap>``, with
metadata ``name``, ``mac``, ``fref``, ``parameters`` and ``vnic_name``.
Rates, latency and IOPS come only from inspectors that measure them (not
libvirt): elsewhere they raise PollsterPermanentError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from telemeter import sample as sample_mod
from telemeter.polling.compute import instance as instance_mod
from telemeter.polling.compute.pollsters import BaseComputePollster

G, C = sample_mod.TYPE_GAUGE, sample_mod.TYPE_CUMULATIVE


class _DevicePollster(BaseComputePollster):
    """One attribute of each device record the inspector returns."""

    attribute = ''
    per_device = True

    def samples_of(self, instance: Any, result: Any,
                   monotonic_time: float) -> Iterator[sample_mod.Sample]:
        devices = list(result or [])
        if self.per_device:
            for device in devices:
                yield self.make(
                    instance, getattr(device, self.attribute),
                    monotonic_time,
                    resource_id=f'{instance.id}-{device.device}',
                    additional_metadata={'disk_name': device.device})
            return
        if not devices:
            return
        total = sum(getattr(device, self.attribute) for device in devices)
        yield self.make(instance, total, monotonic_time,
                        additional_metadata={
                            'device': [d.device for d in devices]})


def _disk(name: str, method: str, attribute: str, type_: str, unit: str,
          per_device: bool) -> type:
    return type(name.title().replace('.', '').replace('_', '') + 'Pollster',
                (_DevicePollster,),
                {'sample_name': name, 'inspector_method': method,
                 'attribute': attribute, 'sample_type': type_,
                 'sample_unit': unit, 'per_device': per_device,
                 '__doc__': f'``{name}``: {type_} {unit}, '
                            f'{"per disk" if per_device else "all disks"}.',
                 '__module__': __name__})


_DISK_METERS = [
    # (meter suffix, inspector method, attribute, type, unit)
    ('read.requests', 'inspect_disks', 'read_requests', C, 'request'),
    ('read.bytes', 'inspect_disks', 'read_bytes', C, 'B'),
    ('write.requests', 'inspect_disks', 'write_requests', C, 'request'),
    ('write.bytes', 'inspect_disks', 'write_bytes', C, 'B'),
    ('capacity', 'inspect_disk_info', 'capacity', G, 'B'),
    ('allocation', 'inspect_disk_info', 'allocation', G, 'B'),
    ('usage', 'inspect_disk_info', 'physical', G, 'B'),
    ('read.bytes.rate', 'inspect_disk_rates', 'read_bytes_rate', G, 'B/s'),
    ('read.requests.rate', 'inspect_disk_rates', 'read_requests_rate', G,
     'request/s'),
    ('write.bytes.rate', 'inspect_disk_rates', 'write_bytes_rate', G,
     'B/s'),
    ('write.requests.rate', 'inspect_disk_rates', 'write_requests_rate', G,
     'request/s'),
    ('latency', 'inspect_disk_latency', 'disk_latency', G, 'ms'),
    ('iops', 'inspect_disk_iops', 'iops_count', G, 'count/s'),
]

DISK_POLLSTERS: dict[str, type] = {}
for _suffix, _method, _attr, _type, _unit in _DISK_METERS:
    for _per_device in (True, False):
        _name = f'disk.{"device." if _per_device else ""}{_suffix}'
        DISK_POLLSTERS[_name] = _disk(_name, _method, _attr, _type, _unit,
                                      _per_device)
        globals()[DISK_POLLSTERS[_name].__name__] = DISK_POLLSTERS[_name]


def vnic_resource_id(instance: Any, vnic: Any) -> str:
    """The filterref name, else ``<libvirt name>-<instance id>-<tap>``."""
    if vnic.fref:
        return vnic.fref
    return f'{instance_mod.instance_name(instance)}-{instance.id}-{vnic.name}'


class _NetworkPollster(BaseComputePollster):
    """One counter of each virtual NIC."""

    inspector_method = 'inspect_vnics'
    attribute = ''

    def samples_of(self, instance: Any, result: Any,
                   monotonic_time: float) -> Iterator[sample_mod.Sample]:
        for vnic in result or []:
            yield self.make(
                instance, getattr(vnic, self.attribute), monotonic_time,
                resource_id=vnic_resource_id(instance, vnic),
                additional_metadata={
                    'name': vnic.name, 'mac': vnic.mac, 'fref': vnic.fref,
                    'parameters': dict(vnic.parameters),
                    'vnic_name': vnic.name, 'instance_id': instance.id})


_NETWORK_METERS = [
    ('network.incoming.bytes', 'inspect_vnics', 'rx_bytes', C, 'B'),
    ('network.outgoing.bytes', 'inspect_vnics', 'tx_bytes', C, 'B'),
    ('network.incoming.packets', 'inspect_vnics', 'rx_packets', C,
     'packet'),
    ('network.outgoing.packets', 'inspect_vnics', 'tx_packets', C,
     'packet'),
    ('network.incoming.packets.drop', 'inspect_vnics', 'rx_drop', C,
     'packet'),
    ('network.outgoing.packets.drop', 'inspect_vnics', 'tx_drop', C,
     'packet'),
    ('network.incoming.packets.error', 'inspect_vnics', 'rx_errors', C,
     'packet'),
    ('network.outgoing.packets.error', 'inspect_vnics', 'tx_errors', C,
     'packet'),
    ('network.incoming.bytes.rate', 'inspect_vnic_rates', 'rx_bytes_rate',
     G, 'B/s'),
    ('network.outgoing.bytes.rate', 'inspect_vnic_rates', 'tx_bytes_rate',
     G, 'B/s'),
]

NETWORK_POLLSTERS: dict[str, type] = {}
for _name, _method, _attr, _type, _unit in _NETWORK_METERS:
    _cls = type(
        _name.title().replace('.', '') + 'Pollster', (_NetworkPollster,),
        {'sample_name': _name, 'inspector_method': _method,
         'attribute': _attr, 'sample_type': _type, 'sample_unit': _unit,
         '__doc__': f'``{_name}``: {_type} {_unit} per vNIC.',
         '__module__': __name__})
    NETWORK_POLLSTERS[_name] = _cls
    globals()[_cls.__name__] = _cls
