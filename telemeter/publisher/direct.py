"""``direct://``, ``database://``, ``file_alt://``, ``http_alt://``: samples
and events handed straight to a collector dispatcher in this process.

The dispatcher is the URL's ``dispatcher`` parameter, else named after the
scheme: ``database`` for ``database://`` (and the deprecated ``direct://``),
``file`` for ``file_alt://``, ``http`` for ``http_alt://``. Dicts are not
signed (``message_signature`` is ``''``): they never leave the process.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from oslo_config import cfg
from oslo_log import log
from stevedore import driver, exception

from telemeter import publisher
from telemeter.publisher import utils

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

LOG = log.getLogger(__name__)

METER_NAMESPACE = 'telemeter.dispatcher.meter'
EVENT_NAMESPACE = 'telemeter.dispatcher.event'


def dispatcher_name(parsed_url: Any) -> str:
    """The dispatcher a direct-style URL designates."""
    options = urllib.parse.parse_qs(parsed_url.query)
    if 'dispatcher' in options:
        return options['dispatcher'][-1]
    scheme = parsed_url.scheme
    if scheme == 'direct':
        LOG.warning('Direct publisher is deprecated for removal. Use an '
                    'explicit publisher instead, e.g. "database", '
                    '"file_alt", "http_alt"')
        return 'database'
    return scheme[:-len('_alt')] if scheme.endswith('_alt') else scheme


#: A dispatcher class: built with the configuration.
DispatcherClass = Callable[[cfg.ConfigOpts], Any]


def _load_class(namespace: str, name: str) -> DispatcherClass | None:
    try:
        return driver.DriverManager(namespace, name).driver
    except exception.NoMatches:
        return None


class DirectPublisher(publisher.ConfigPublisherBase):
    """Calls the dispatcher's ``record_metering_data`` / ``record_events``
    directly; the dispatcher is built on first use."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url)
        self.dispatcher_name = dispatcher_name(parsed_url)
        self._meter_class = _load_class(METER_NAMESPACE, self.dispatcher_name)
        self._event_class = _load_class(EVENT_NAMESPACE, self.dispatcher_name)
        self._meter: Any = None
        self._event: Any = None

    def _dispatcher(self, kind: str) -> Any:
        """The ``meter`` or ``event`` dispatcher (one object when one class
        does both); only called when its class was found."""
        if kind == 'meter':
            if self._meter is None:
                if self._meter_class is self._event_class and self._event:
                    self._meter = self._event
                elif self._meter_class is not None:
                    self._meter = self._meter_class(self.conf)
            return self._meter
        if self._event is None:
            if self._event_class is self._meter_class and self._meter:
                self._event = self._meter
            elif self._event_class is not None:
                self._event = self._event_class(self.conf)
        return self._event

    def publish_samples(self, samples: list[Sample]) -> None:
        if self._meter_class is None:
            LOG.error("Can't publish samples to a non-existing dispatcher "
                      "'%s'", self.dispatcher_name)
            return
        self._dispatcher('meter').record_metering_data(
            [utils.meter_message_from_counter(s, secret=None)
             for s in samples])

    def publish_events(self, events: list[Event]) -> None:
        if self._event_class is None:
            LOG.error("Can't publish events to a non-existing dispatcher "
                      "'%s'", self.dispatcher_name)
            return
        self._dispatcher('event').record_events(
            [utils.message_from_event(e, secret=None) for e in events])
