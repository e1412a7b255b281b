"""Loading the polling agent's plugins (polling.md §1).

Pollsters come, per namespace, from ``telemeter.poll.<ns>`` (instantiated
with the ConfigOpts), from the builders of ``telemeter.builder.poll.<ns>``
and from the dynamic pollster definitions of ``[polling]
pollsters_definitions_dirs``; discoverers from ``telemeter.discover.<ns>``.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any

from oslo_config import cfg
from oslo_log import log
from stevedore import extension

from telemeter.polling import plugin_base

LOG = log.getLogger(__name__)


class PollsterListForbidden(Exception):
    """``--pollster-list`` used together with workload partitioning."""

    def __init__(self) -> None:
        super().__init__(
            'It is forbidden to use pollster-list option of polling agent '
            'in case of using coordination between multiple agents. Please '
            'use either multiple agents being coordinated or polling list '
            'option for one polling agent.')


class EmptyPollstersList(Exception):
    """No pollster could be loaded for the namespaces and pollster list."""

    def __init__(self) -> None:
        super().__init__(
            'No valid pollsters can be loaded with the startup parameters '
            'polling-namespaces and pollster-list.')


def coordination_backend_url(conf: cfg.ConfigOpts) -> str | None:
    """``[coordination] backend_url``, or None when not registered."""
    try:
        return conf.coordination.backend_url
    except cfg.NoSuchOptError:
        return None


def check_pollster_list(conf: cfg.ConfigOpts,
                        pollster_list: list[str] | None) -> None:
    """Raise :class:`PollsterListForbidden` for pollster-list + coordination.
    """
    if pollster_list and coordination_backend_url(conf):
        raise PollsterListForbidden()


class PluginLoader:
    """Stevedore loading of the polling agent's plugins."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    @staticmethod
    def _on_load_failure(manager: Any, entrypoint: Any,
                         exc: BaseException) -> None:
        if isinstance(exc, plugin_base.ExtensionLoadError):
            LOG.exception('Skip loading extension for %s', entrypoint.name)
            return
        LOG.error('Failed to import extension for %(name)s: %(error)s',
                  {'name': entrypoint.name, 'error': exc},
                  exc_info=(LOG.isEnabledFor(logging.DEBUG)
                            and isinstance(exc, ImportError)))
        if isinstance(exc, ImportError):
            return
        raise exc

    def _extensions(self, category: str, agent_ns: str,
                    invoke: bool = True) -> list[extension.Extension]:
        """Extensions of ``telemeter.<category>.<agent_ns>``."""
        namespace = f'telemeter.{category}.{agent_ns}'
        mgr: extension.ExtensionManager[Any] = extension.ExtensionManager(
            namespace=namespace, invoke_on_load=invoke,
            invoke_args=(self.conf,) if invoke else (),
            on_load_failure_callback=self._on_load_failure)
        return list(mgr)

    def _builder_extensions(self, agent_ns: str
                            ) -> list[extension.Extension]:
        """Pollsters built by the ``telemeter.builder.poll.<ns>`` plugins."""
        pollsters: list[extension.Extension] = []
        for builder in self._extensions('builder.poll', agent_ns,
                                        invoke=False):
            try:
                pollsters.extend(
                    builder.plugin.get_pollsters_extensions(self.conf))
            except plugin_base.ExtensionLoadError:
                LOG.exception('Skip loading extension for %s', builder.name)
        return pollsters

    def load_dynamic_pollsters(self, namespaces: list[str]
                               ) -> list[extension.Extension]:
        """Dynamic pollsters of ``[polling] pollsters_definitions_dirs``
        whose ``namespaces`` intersect ``namespaces`` (polling.md §7)."""
        from telemeter.polling.dynamic import loader

        return loader.load_dynamic_pollsters(self.conf, namespaces)

    def load_pollsters(self, namespaces: list[str],
                       pollster_list: list[str]
                       ) -> list[extension.Extension]:
        """Pollster extensions of every namespace, filtered by the list."""
        pollsters: list[extension.Extension] = []
        for agent_ns in namespaces:
            pollsters.extend(self._extensions('poll', agent_ns))
            pollsters.extend(self._builder_extensions(agent_ns))
        pollsters.extend(self.load_dynamic_pollsters(namespaces))
        if pollster_list:
            pollsters = [
                p for p in pollsters
                if any(fnmatch.fnmatch(p.name, pattern)
                       for pattern in pollster_list)]
        return pollsters

    def load_discoveries(self, namespaces: list[str]
                         ) -> list[extension.Extension]:
        """Discoverer extensions of ``telemeter.discover.<ns>``."""
        discoveries: list[extension.Extension] = []
        for agent_ns in namespaces:
            discoveries.extend(self._extensions('discover', agent_ns))
        return discoveries
