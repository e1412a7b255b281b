"""Resource discovery for the polling agent (polling.md §5).

``discover(urls, discovery_cache)`` turns discovery URLs (``name[:param]``)
into resources with the loaded discoverers, skipping those whose OpenStack
service is missing from the keystone catalog and keeping only the resources
this agent owns when partitioning is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keystoneauth1 import exceptions as ka_exceptions
from oslo_config import cfg
from oslo_log import log

if TYPE_CHECKING:
    from stevedore import extension

LOG = log.getLogger(__name__)


class Discovering:
    """Mixin of the AgentManager: keystone client and discovery.

    Expects ``self.conf``, ``self.discoveries``, ``construct_group_id`` and
    ``belongs_to_self``.
    """

    conf: cfg.ConfigOpts
    discoveries: list[extension.Extension]
    _keystone: Any = None
    _keystone_last_exception: Exception | None = None

    # -- keystone -----------------------------------------------------------

    def _create_keystone_client(self) -> Any:
        from telemeter import keystone_client

        return keystone_client.get_client(self.conf)

    @property
    def keystone(self) -> Any:
        """Keystone client, created on first use in a cycle and shared.

        If creating it failed, the error is raised again on each use until
        the next cycle (see :meth:`reset_keystone`).
        """
        if self._keystone is None and self._keystone_last_exception is None:
            try:
                self._keystone = self._create_keystone_client()
            except Exception as err:
                self._keystone_last_exception = err
        if self._keystone is not None:
            return self._keystone
        assert self._keystone_last_exception is not None
        raise self._keystone_last_exception

    def reset_keystone(self) -> None:
        """Forget the client and its last error (start of a cycle)."""
        self._keystone = None
        self._keystone_last_exception = None

    def _service_registered(self, service_type: str) -> bool:
        return bool(self.keystone.get_endpoints(service_type))

    # -- discovery ----------------------------------------------------------

    @staticmethod
    def _parse_discoverer(url: str) -> tuple[str, str | None]:
        name, sep, param = url.partition(':')
        return name, (param if sep else None)

    def _discoverer(self, name: str) -> Any:
        for discovery in self.discoveries:
            if discovery.name == name:
                return discovery.obj
        return None

    def discover(self, discovery: list[str] | None = None,
                 discovery_cache: dict | None = None) -> list[Any]:
        """Resources of the discovery URLs (polling.md §5)."""
        resources: list[Any] = []
        for url in discovery or []:
            if discovery_cache is not None and url in discovery_cache:
                resources.extend(discovery_cache[url])
                continue
            name, param = self._parse_discoverer(url)
            discoverer = self._discoverer(name)
            if discoverer is None:
                LOG.warning('Unknown discovery extension: %s', name)
                continue
            try:
                required = discoverer.KEYSTONE_REQUIRED_FOR_SERVICE
                if required:
                    service_type = getattr(self.conf.service_types, required)
                    if not self._service_registered(service_type):
                        LOG.warning('Skipping %(name)s, %(service_type)s '
                                    'service is not registered in keystone',
                                    {'name': name,
                                     'service_type': service_type})
                        if discovery_cache is not None:
                            discovery_cache[url] = []
                        continue
                discovered = discoverer.discover(self, param)
                group = self.construct_group_id(discoverer.group_id)
                discovered = [r for r in discovered
                              if self.belongs_to_self(group, r)]
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
