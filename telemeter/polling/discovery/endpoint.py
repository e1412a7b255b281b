"""``endpoint`` and ``tenant`` discovery (``telemeter.discover.central``)."""

from __future__ import annotations

from typing import Any

from oslo_log import log

from telemeter.polling import plugin_base

LOG = log.getLogger(__name__)


class EndpointDiscovery(plugin_base.DiscoveryBase):
    """Catalog URLs of the service type ``param`` (every service if none),
    for ``[service_credentials] interface`` and ``region_name``."""

    def discover(self, manager: plugin_base.PollingContext,
                 param: str | None = None) -> list[Any]:
        endpoints = manager.keystone.get_endpoints(param or None)
        if not endpoints:
            LOG.warning('No endpoints found for service %s',
                        param or '<all services>')
            return []
        return list(dict.fromkeys(endpoints))


class TenantDiscovery(plugin_base.DiscoveryBase):
    """Keystone projects of every domain (of the default domain when the
    domains cannot be listed), as ``{id, name, domain_id, ...}`` dicts."""

    def discover(self, manager: plugin_base.PollingContext,
                 param: str | None = None) -> list[Any]:
        client = manager.keystone
        domains = client.list_domains()
        projects: list[dict] = []
        if not domains:
            projects = client.list_projects()
        for domain in domains:
            projects.extend(client.list_projects(domain['id']))
        return [dict(sorted(p.items())) for p in projects]
