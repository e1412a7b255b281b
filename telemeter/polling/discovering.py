"""Resource discovery for the polling agent (polling.md §5).

Two parts of the agent live here: :class:`KeystoneSession`, the keystone
client of one polling cycle, and :class:`Discovery`, which turns discovery
URLs (``name[:param]``) into resources with the loaded discoverers, skipping
those whose OpenStack service is missing from the keystone catalog and
keeping only the resources this agent owns when partitioning is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslo_config import cfg
from oslo_log import log

if TYPE_CHECKING:
    from stevedore import extension

    from telemeter.keystone_client import KeystoneClient
    from telemeter.polling.partition import Partitioning
    from telemeter.polling.plugin_base import DiscoveryBase, PollingContext

LOG = log.getLogger(__name__)


class KeystoneSession:
    """The keystone client of the current polling cycle.

    Created on first use and shared; if creating it failed, the error is
    raised again on each use until :meth:`reset` (start of a cycle).
    """

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self._client: KeystoneClient | None = None
        self._last_exception: Exception | None = None

    def create(self) -> KeystoneClient:
        """A new client from ``[service_credentials]``."""
        from telemeter import keystone_client

        return keystone_client.get_client(self.conf)

    @property
    def client(self) -> KeystoneClient:
        """The client (created lazily, see the class docstring)."""
        if self._client is None and self._last_exception is None:
            try:
                self._client = self.create()
            except Exception as err:
                self._last_exception = err
        if self._client is not None:
            return self._client
        assert self._last_exception is not None
        raise self._last_exception

    def reset(self) -> None:
        """Forget the client and its last error (start of a cycle)."""
        self._client = None
        self._last_exception = None

    def service_registered(self, service_type: str) -> bool:
        """Whether the keystone catalog has an endpoint of the type."""
        return bool(self.client.get_endpoints(service_type))


def parse_discovery_url(url: str) -> tuple[str, str | None]:
    """``name[:param]`` split at the first ``:`` (no ``:``: param None)."""
    name, sep, param = url.partition(':')
    return name, (param if sep else None)


class Discovery:
    """The loaded discoverers and what they find (polling.md §5)."""

    def __init__(self, conf: cfg.ConfigOpts,
                 discoveries: list[extension.Extension],
                 keystone: KeystoneSession,
                 partitioning: Partitioning) -> None:
        self.conf = conf
        self.discoveries = discoveries
        self.keystone = keystone
        self.partitioning = partitioning

    def discoverer(self, name: str) -> DiscoveryBase | None:
        """The loaded discoverer called ``name``, or None."""
        for discovery in self.discoveries:
            if discovery.name == name:
                return discovery.obj
        return None

    def discover(self, context: PollingContext,
                 discovery: list[str] | None = None,
                 discovery_cache: dict | None = None) -> list[Any]:
        """Resources of the discovery URLs (polling.md §5).

        ``context`` is what the discoverers receive as ``manager``.
        """
        # keystoneauth1 is imported where it is used (see keystone_client).
        from keystoneauth1 import exceptions as ka_exceptions

        resources: list[Any] = []
        for url in discovery or []:
            if discovery_cache is not None and url in discovery_cache:
                resources.extend(discovery_cache[url])
                continue
            name, param = parse_discovery_url(url)
            discoverer = self.discoverer(name)
            if discoverer is None:
                LOG.warning('Unknown discovery extension: %s', name)
                continue
            try:
                required = discoverer.KEYSTONE_REQUIRED_FOR_SERVICE
                if required:
                    service_type = getattr(self.conf.service_types, required)
                    if not self.keystone.service_registered(service_type):
                        LOG.warning('Skipping %(name)s, %(service_type)s '
                                    'service is not registered in keystone',
                                    {'name': name,
                                     'service_type': service_type})
                        if discovery_cache is not None:
                            discovery_cache[url] = []
                        continue
                discovered = discoverer.discover(context, param)
                group = self.partitioning.construct_group_id(
                    discoverer.group_id)
                discovered = [r for r in discovered
                              if self.partitioning.belongs_to_self(group, r)]
                resources.extend(discovered)
                if discovery_cache is not None:
                    discovery_cache[url] = discovered
            except ka_exceptions.ClientException as err:
                LOG.error('Skipping %(name)s, keystone issue: %(exc)s',
                          {'name': name, 'exc': err})
            except Exception as err:
                LOG.exception('Unable to discover resources: %s', err)
            else:
                continue
            # Failed: do not ask (and log) again for the other pollsters of
            # this cycle.
            if discovery_cache is not None:
                discovery_cache[url] = []
        return resources
