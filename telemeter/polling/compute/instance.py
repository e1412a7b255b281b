"""Nova-like instance objects and the metadata of their samples."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from telemeter import sample as sample_mod

OPTIONAL_KEYS = ('architecture', 'OS-EXT-AZ:availability_zone', 'kernel_id',
                 'os_type', 'ramdisk_id', 'reservation_id')


class NovaLikeServer:
    """An instance as the compute pollsters see it.

    Attributes follow Nova's server representation (``id``, ``name``,
    ``flavor``, ``image``, ``metadata``, ``user_id``, ``tenant_id``,
    ``status``, ``hostId``, ``OS-EXT-SRV-ATTR:host`` ...). Two servers are
    equal when their ids are; ``str()`` is stable (used for partitioning).
    """

    def __init__(self, **attributes: Any) -> None:
        self._attributes = dict(attributes)
        for key, value in attributes.items():
            setattr(self, key.replace('-', '_').replace(':', '_'), value)
            setattr(self, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        return self._attributes.get(key, default)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, NovaLikeServer)
                and other.get('id') == self.get('id'))

    def __hash__(self) -> int:
        return hash(self.get('id'))

    def __str__(self) -> str:
        return f'instance {self.get("id")}'

    __repr__ = __str__


def instance_name(instance: Any) -> str | None:
    """The hypervisor's name of the instance (libvirt domain name)."""
    return getattr(instance, 'OS-EXT-SRV-ATTR:instance_name', None)


def instance_metadata(conf: cfg.ConfigOpts, instance: Any) -> dict:
    """The resource metadata every compute sample of ``instance`` carries.
    """
    flavor = dict(getattr(instance, 'flavor', None) or {})
    image = getattr(instance, 'image', None) or None
    metadata: dict[str, Any] = {
        'display_name': getattr(instance, 'name', None),
        'name': instance_name(instance),
        'instance_id': instance.id,
        'instance_type': flavor.get('name'),
        'host': getattr(instance, 'hostId', None),
        'instance_host': getattr(instance, 'OS-EXT-SRV-ATTR:host', None),
        'flavor': flavor,
        'status': str(getattr(instance, 'status', '') or '').lower(),
        'state': getattr(instance, 'OS-EXT-STS:vm_state', None),
        'task_state': getattr(instance, 'OS-EXT-STS:task_state', None),
        'image': image,
        'image_ref': image.get('id') if isinstance(image, dict) else None,
        'image_ref_url': None,
        'vcpus': flavor.get('vcpus'),
        'memory_mb': flavor.get('ram'),
        'disk_gb': flavor.get('disk'),
        'ephemeral_gb': flavor.get('ephemeral'),
        'root_gb': flavor.get('disk'),
    }
    if isinstance(image, dict):
        for link in image.get('links') or []:
            if link.get('rel') == 'bookmark':
                metadata['image_ref_url'] = link.get('href')
    for key in OPTIONAL_KEYS:
        value = getattr(instance, key, None)
        if value is not None:
            metadata[key.split(':')[-1]] = value
    user_metadata = getattr(instance, 'metadata', None) or {}
    return sample_mod.add_reserved_user_metadata(conf, user_metadata,
                                                 metadata)


def make_sample(conf: cfg.ConfigOpts, instance: Any, name: str, type: str,
                unit: str, volume: Any, resource_id: str | None = None,
                additional_metadata: dict | None = None,
                monotonic_time: float | None = None) -> sample_mod.Sample:
    """A Sample of ``instance`` with its metadata plus the additions."""
    metadata = instance_metadata(conf, instance)
    metadata.update(additional_metadata or {})
    return sample_mod.Sample(
        name=name, type=type, unit=unit, volume=volume,
        user_id=getattr(instance, 'user_id', None),
        project_id=getattr(instance, 'tenant_id', None),
        resource_id=resource_id or instance.id,
        resource_metadata=metadata, monotonic_time=monotonic_time)
