"""Dispatchers: where the collector stores what it received.

Meter and event dispatchers are stevedore plugins (``telemeter.dispatcher.
meter`` / ``telemeter.dispatcher.event``) constructed as ``cls(conf)``.
"""

from __future__ import annotations

import abc
from typing import Any

from oslo_config import cfg
from oslo_log import log
from stevedore import named

LOG = log.getLogger(__name__)

OPTS = [
    cfg.MultiStrOpt('meter_dispatchers',
                    deprecated_name='dispatcher',
                    default=['database'],
                    help='Dispatchers to process metering data.'),
    cfg.MultiStrOpt('event_dispatchers',
                    default=['database'],
                    deprecated_name='dispatcher',
                    help='Dispatchers to process event data.'),
]


def _load(conf: cfg.ConfigOpts, namespace: str,
          names: list[str]) -> named.NamedExtensionManager:
    unique = list(dict.fromkeys(names))
    if len(unique) < len(names):
        LOG.warning('%s lists a dispatcher more than once (%s): each is '
                    'loaded once', namespace, ', '.join(names))
    manager: named.NamedExtensionManager[Any] = named.NamedExtensionManager(
        namespace=namespace, names=unique, name_order=True,
        invoke_on_load=True,
        invoke_args=(conf,), propagate_map_exceptions=True,
        on_load_failure_callback=_raise_load_failure)
    if not list(manager):
        LOG.warning('Failed to load any dispatchers for %s', namespace)
    return manager


def _raise_load_failure(manager: Any, entrypoint: Any,
                        exception: BaseException) -> None:
    # A dispatcher that cannot be built is a configuration error: fail the
    # worker rather than acknowledge data nobody stores.
    raise exception


def load_dispatcher_manager(conf: cfg.ConfigOpts) -> tuple[
        named.NamedExtensionManager, named.NamedExtensionManager]:
    """The meter and event dispatcher managers of ``[DEFAULT]``."""
    LOG.debug('loading dispatchers from %s', 'telemeter.dispatcher.meter')
    meter = _load(conf, 'telemeter.dispatcher.meter',
                  conf.meter_dispatchers)
    event = _load(conf, 'telemeter.dispatcher.event',
                  conf.event_dispatchers)
    return meter, event


class Base:
    """Common constructor of the dispatchers."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf


class MeterDispatcherBase(Base, metaclass=abc.ABCMeta):
    @abc.abstractmethod
    def record_metering_data(self, data: list[dict] | dict) -> None:
        """Store a list of metering dicts (or one, from UDP)."""


class EventDispatcherBase(Base, metaclass=abc.ABCMeta):
    @abc.abstractmethod
    def record_events(self, events: list[dict] | dict) -> None:
        """Store a list of serialized event dicts (or one)."""
