"""``local_instances`` (``telemeter.discover.compute``): the instances of
this compute host.

``[compute] instance_discovery_method``:

- ``libvirt_metadata`` (default): every libvirt domain carrying Nova's
  metadata (``http://openstack.org/xmlns/libvirt/nova/1.0``) becomes a
  Nova-like server built from that metadata; no API call is made. Domains
  without it (not Nova's) are skipped.
- ``naive``: Nova's ``servers/detail`` filtered by ``host=[DEFAULT] host``,
  fetched again only every ``resource_update_interval`` seconds (0 =
  every cycle) with ``changes-since``, and fully every
  ``resource_cache_expiry`` seconds; deleted instances are forgotten.
- ``workload_partitioning``: as ``naive``.
"""

from __future__ import annotations

import time
from typing import Any
from xml.etree import ElementTree

from oslo_config import cfg
from oslo_log import log
from oslo_utils import timeutils

from telemeter.polling import plugin_base
from telemeter.polling.compute import inspector as virt_inspector
from telemeter.polling.compute.instance import NovaLikeServer

LOG = log.getLogger(__name__)

OPTS = [
    cfg.StrOpt('instance_discovery_method',
               default='libvirt_metadata',
               choices=[('naive', 'poll nova to get all instances'),
                        ('workload_partitioning',
                         'poll nova to get instances of the compute'),
                        ('libvirt_metadata',
                         'get instances from libvirt metadata but without '
                         'instance metadata (recommended)')],
               help='Ceilometer offers many methods to discover the '
                    'instance running on a compute node.'),
    cfg.IntOpt('resource_update_interval', default=0, min=0,
               help='New instances will be discovered periodically based '
                    'on this option (in seconds). 0 = every polling '
                    'cycle.'),
    cfg.IntOpt('resource_cache_expiry', default=3600, min=0,
               help='The expiry to totally refresh the instances resource '
                    'cache.'),
    cfg.BoolOpt('workload_partitioning', default=False,
                deprecated_for_removal=True,
                help='Enable work-load partitioning, allowing multiple '
                     'compute agents to be run simultaneously (replaced '
                     'by instance_discovery_method).'),
]

NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.0'
LIBVIRT_STATUS = {0: 'building', 1: 'active', 2: 'active', 3: 'paused',
                  4: 'stopped', 5: 'stopped', 6: 'error', 7: 'suspended'}


def _text(element: ElementTree.Element | None, path: str) -> str | None:
    found = element.find(path) if element is not None else None
    return found.text if found is not None else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class InstanceDiscovery(plugin_base.DiscoveryBase):
    """Instances running on this host (see the module docstring)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self._inspector: Any = None
        self.instances: dict[str, NovaLikeServer] = {}
        self.last_run: str | None = None
        self.last_update = 0.0
        self.last_full = 0.0

    @property
    def group_id(self) -> str:
        return self.conf.host

    @property
    def inspector(self) -> Any:
        if self._inspector is None:
            self._inspector = virt_inspector.shared_inspector(self.conf)
        return self._inspector

    def discover(self, manager: plugin_base.PollingContext,
                 param: str | None = None) -> list[Any]:
        method = self.conf.compute.instance_discovery_method
        if method == 'libvirt_metadata':
            return self.discover_libvirt_polling()
        return self.discover_nova_polling(manager)

    # -- libvirt metadata -------------------------------------------------

    def discover_libvirt_polling(self) -> list[Any]:
        if not hasattr(self.inspector, 'list_domains'):
            raise RuntimeError(
                f'the {self.conf.hypervisor_inspector} inspector cannot '
                f'list domains: use instance_discovery_method = naive')
        import libvirt

        instances = []
        for domain in self.inspector.list_domains():
            try:
                nova_xml = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                                           NOVA_NS)
            except libvirt.libvirtError as err:
                LOG.debug('Domain %(name)s has no Nova metadata, not an '
                          'instance: %(err)s',
                          {'name': domain.name(), 'err': err})
                continue
            try:
                instances.append(self._server(domain, nova_xml))
            except (ElementTree.ParseError, libvirt.libvirtError) as err:
                LOG.error('Cannot read the Nova metadata of domain '
                          '%(name)s: %(err)s',
                          {'name': domain.name(), 'err': err})
        return instances

    def _server(self, domain: Any, nova_xml: str) -> NovaLikeServer:
        # Both documents come from libvirt itself.
        metadata = ElementTree.fromstring(nova_xml)  # noqa: S314
        full = ElementTree.fromstring(domain.XMLDesc(0))  # noqa: S314
        flavor_xml = metadata.find('flavor')
        flavor = {
            'name': flavor_xml.get('name') if flavor_xml is not None
            else None,
            'vcpus': _int(_text(flavor_xml, 'vcpus')),
            'ram': _int(_text(flavor_xml, 'memory')),
            'disk': _int(_text(flavor_xml, 'disk')),
            'ephemeral': _int(_text(flavor_xml, 'ephemeral')),
            'swap': _int(_text(flavor_xml, 'swap')),
        }
        owner = metadata.find('owner')
        user = owner.find('user') if owner is not None else None
        project = owner.find('project') if owner is not None else None
        root = metadata.find('root')
        image = None
        if root is not None and root.get('type') == 'image':
            image = {'id': root.get('uuid')}
        os_type = full.find('./os/type')
        state = domain.info()[0]
        attributes: dict[str, Any] = {
            'id': domain.UUIDString(),
            'name': _text(metadata, 'name'),
            'flavor': flavor,
            'image': image,
            'metadata': {},
            'user_id': user.get('uuid') if user is not None else None,
            'tenant_id': project.get('uuid') if project is not None
            else None,
            'status': LIBVIRT_STATUS.get(state, 'unknown'),
            'hostId': None,
            'OS-EXT-SRV-ATTR:host': self.conf.host,
            'OS-EXT-SRV-ATTR:instance_name': domain.name(),
            'OS-EXT-STS:vm_state': LIBVIRT_STATUS.get(state, 'unknown'),
            'OS-EXT-STS:task_state': None,
        }
        if os_type is not None:
            attributes['architecture'] = os_type.get('arch')
            attributes['os_type'] = os_type.text
        return NovaLikeServer(**attributes)

    # -- nova API -------------------------------------------------------

    def discover_nova_polling(self, manager: plugin_base.PollingContext
                              ) -> list[Any]:
        now = time.monotonic()
        interval = self.conf.compute.resource_update_interval
        if self.last_update and now - self.last_update < interval:
            return list(self.instances.values())
        if now - self.last_full >= self.conf.compute.resource_cache_expiry:
            self.instances.clear()
            self.last_run = None
            self.last_full = now
        started = timeutils.utcnow().isoformat()
        client = manager.keystone
        endpoints = client.get_endpoints(self.conf.service_types.nova)
        if not endpoints:
            raise RuntimeError('no compute endpoint in the catalog')
        params = {'host': self.conf.host, 'all_tenants': 'True'}
        if self.last_run:
            params['changes-since'] = self.last_run
        data = client.get_json(endpoints[0].rstrip('/') + '/servers/detail',
                               params=params)
        for server in data.get('servers', []):
            if str(server.get('status', '')).lower() == 'deleted' or \
                    server.get('OS-EXT-STS:vm_state') == 'deleted':
                self.instances.pop(server['id'], None)
            else:
                self.instances[server['id']] = NovaLikeServer(**server)
        self.last_run = started
        self.last_update = now
        return list(self.instances.values())
