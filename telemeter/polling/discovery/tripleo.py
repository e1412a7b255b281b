"""``tripleo_overcloud_nodes`` (``telemeter.discover.central``).

Finds the machines of a TripleO overcloud as Nova servers with an address on
``[hardware] tripleo_network_name`` and turns each into a hardware resource
``{resource_id, resource_url, mac_addr, image_id, flavor_id}`` whose URL
carries the ``[hardware] readonly_user_*`` SNMP credentials. Servers are
listed incrementally (``changes-since`` the previous call); deleted and
errored ones are forgotten.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from oslo_config import cfg
from oslo_log import log
from oslo_utils import timeutils

from telemeter.polling import plugin_base

LOG = log.getLogger(__name__)

OPTS = [
    cfg.StrOpt('url_scheme', default='snmp://',
               help='URL scheme to use for hardware nodes.'),
    cfg.StrOpt('readonly_user_name', default='ro_snmp_user',
               help='SNMPd user name of all nodes running in the cloud.'),
    cfg.StrOpt('readonly_user_password', default='password', secret=True,
               help='SNMPd v3 authentication password of all the nodes '
                    'running in the cloud.'),
    cfg.StrOpt('readonly_user_auth_proto', choices=['md5', 'sha'],
               help='SNMPd v3 authentication algorithm of all the nodes '
                    'running in the cloud'),
    cfg.StrOpt('readonly_user_priv_proto',
               choices=['des', 'aes128', '3des', 'aes192', 'aes256'],
               help='SNMPd v3 encryption algorithm of all the nodes '
                    'running in the cloud'),
    cfg.StrOpt('readonly_user_priv_password', secret=True,
               help='SNMPd v3 encryption password of all the nodes running '
                    'in the cloud.'),
    cfg.StrOpt('tripleo_network_name', default='ctlplane',
               help='Name of the control plane Tripleo network'),
]

FORGOTTEN_STATES = ('deleted', 'error')


class NodesDiscoveryTripleO(plugin_base.DiscoveryBase):
    """Overcloud nodes as SNMP hardware resources."""

    KEYSTONE_REQUIRED_FOR_SERVICE = 'nova'

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self.last_run: str | None = None
        self.instances: dict[str, dict] = {}

    def _address(self, server: dict, key: str) -> str | None:
        network = server.get('addresses', {}).get(
            self.conf.hardware.tripleo_network_name) or []
        for address in network:
            if address.get(key):
                return address[key]
        return None

    def _url(self, ip: str) -> str:
        hw = self.conf.hardware
        user = urllib.parse.quote(hw.readonly_user_name or '', safe='')
        if hw.readonly_user_password:
            user += ':' + urllib.parse.quote(hw.readonly_user_password,
                                             safe='')
        query = {k: v for k, v in (
            ('auth_proto', hw.readonly_user_auth_proto),
            ('priv_proto', hw.readonly_user_priv_proto),
            ('priv_password', hw.readonly_user_priv_password)) if v}
        url = f'{hw.url_scheme}{user}@{ip}'
        if query:
            url += '?' + urllib.parse.urlencode(query)
        return url

    def _servers(self, manager: plugin_base.PollingContext) -> list[dict]:
        client = manager.keystone
        endpoints = client.get_endpoints(self.conf.service_types.nova)
        if not endpoints:
            return []
        params = {'all_tenants': 'True'}
        if self.last_run:
            params['changes-since'] = self.last_run
        data = client.get_json(endpoints[0].rstrip('/') + '/servers/detail',
                               params=params)
        return list(data.get('servers', []))

    def discover(self, manager: plugin_base.PollingContext,
                 param: str | None = None) -> list[Any]:
        started = timeutils.utcnow().isoformat()
        for server in self._servers(manager):
            if str(server.get('status', '')).lower() in FORGOTTEN_STATES:
                self.instances.pop(server['id'], None)
            else:
                self.instances[server['id']] = server
        self.last_run = started
        resources = []
        for server in self.instances.values():
            ip = self._address(server, 'addr')
            if not ip:
                continue
            resources.append({
                'resource_id': server['id'],
                'resource_url': self._url(ip),
                'mac_addr': self._address(server, 'OS-EXT-IPS-MAC:mac_addr'),
                'image_id': (server.get('image') or {}).get('id'),
                'flavor_id': (server.get('flavor') or {}).get('id'),
            })
        return resources
