"""Contracts of the polling plugins: pollsters and discoverers.

A *pollster* produces Samples of one meter for a list of resources; a
*discoverer* finds those resources. Both are stevedore plugins instantiated
with the ConfigOpts object (``telemeter.poll.<namespace>``,
``telemeter.builder.poll.<namespace>`` and ``telemeter.discover.<namespace>``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from oslo_config import cfg
from stevedore import extension

if TYPE_CHECKING:
    from telemeter.keystone_client import KeystoneClient
    from telemeter.sample import Sample


class PollingContext(Protocol):
    """What a pollster or a discoverer may use of the polling agent.

    ``get_samples(manager, ...)`` and ``discover(manager, ...)`` receive the
    :class:`~telemeter.polling.manager.AgentManager` (interfaces.md §8);
    these two members are all a plugin may rely on.
    """

    @property
    def conf(self) -> cfg.ConfigOpts:
        """The agent's ConfigOpts."""
        ...

    @property
    def keystone(self) -> KeystoneClient:
        """Keystone client of the current polling cycle (created lazily;
        a creation error is raised again on every use in the cycle)."""
        ...


class ExtensionLoadError(Exception):
    """A pollster cannot work on this node; the loader skips it.

    Raised by :class:`PollsterBase` when ``setup_environment()`` fails and by
    :meth:`PollsterBase.get_pollsters_extensions` when a builder fails.
    """


class PollsterPermanentError(Exception):
    """A pollster will never succeed for ``resources``.

    The polling task black-lists these resources for the (source, pollster)
    pair for the rest of the life of the process.
    """

    def __init__(self, resources: list[Any]) -> None:
        super().__init__(resources)
        self.fail_res_list = resources


class PollsterBase(metaclass=abc.ABCMeta):
    """Base class of every pollster.

    The pollster's name is the name of its extension (entry point or
    builder), which is also the name of the meter it produces.
    """

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        try:
            self.setup_environment()
        except Exception as err:
            raise ExtensionLoadError(
                f'{type(self).__name__}: {err}') from err

    def setup_environment(self) -> None:
        """Check that this node can run the pollster (hook).

        Any exception makes the loader skip the pollster.
        """

    @property
    @abc.abstractmethod
    def default_discovery(self) -> str | None:
        """Discovery URL (``name[:param]``) used when a source gives none."""

    @abc.abstractmethod
    def get_samples(self, manager: PollingContext, cache: dict,
                    resources: list[Any]) -> Iterable[Sample]:
        """Return (or yield) the Samples of the meter for ``resources``.

        :param manager: the polling ``AgentManager``, seen through
            :class:`PollingContext` (``conf``, ``keystone``)
        :param cache: dict shared by all pollsters during one polling cycle,
            used to read a data source only once per cycle
        :param resources: the de-duplicated resources to poll
        """

    @classmethod
    def build_pollsters(cls, conf: cfg.ConfigOpts
                        ) -> list[tuple[str, PollsterBase]]:
        """Builder namespaces only: return ``[(name, pollster), ...]``."""
        return []

    @classmethod
    def get_pollsters_extensions(cls, conf: cfg.ConfigOpts
                                 ) -> list[extension.Extension]:
        """Wrap :meth:`build_pollsters` as stevedore Extensions.

        Any error is raised as :class:`ExtensionLoadError`.
        """
        try:
            return [extension.Extension(name, None, cls, pollster)
                    for name, pollster in cls.build_pollsters(conf)]
        except Exception as err:
            raise ExtensionLoadError(
                f'{cls.__name__}: unable to build pollsters: {err}') from err


class DiscoveryBase(metaclass=abc.ABCMeta):
    """Base class of resource discoverers.

    Resources may be any objects with a stable ``str()`` and ``==``.
    """

    KEYSTONE_REQUIRED_FOR_SERVICE: str | None = None
    """Name of a ``[service_types]`` option: discovery is skipped when the
    keystone catalog has no endpoint of that service type."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    @abc.abstractmethod
    def discover(self, manager: PollingContext,
                 param: str | None = None) -> list[Any]:
        """Return the list of resources; ``param`` follows the ``:``.

        ``manager`` is the agent seen as a :class:`PollingContext`.
        """

    @property
    def group_id(self) -> str:
        """Partitioning group of the discovered resources."""
        return 'global'
