"""``local_node``: the node the agent runs on, as one resource."""

from __future__ import annotations

from typing import Any

from telemeter.polling import plugin_base


class LocalNodeDiscovery(plugin_base.DiscoveryBase):
    """Discover the local host (``['local_host']``).

    Pollsters of the local node read data of the machine they run on; the
    single placeholder resource only lets the polling task call them.
    """

    def discover(self, manager: plugin_base.PollingContext,
                 param: str | None = None) -> list[Any]:
        return ['local_host']
