"""Publishers: where a pipeline sink sends its samples and events.

A publisher is a stevedore plugin named by the URL scheme of a sink's
``publishers`` entry, constructed as ``cls(conf, parsed_url)``.
"""

from __future__ import annotations

import abc
import re
from typing import TYPE_CHECKING, Any
from urllib import parse as urlparse

from oslo_config import cfg
from oslo_utils import netutils
from stevedore import driver
from stevedore import exception as stevedore_exc

from telemeter.utils import entry_point_names

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

_SCHEME = re.compile(r'^([A-Za-z][A-Za-z0-9+.\-_]*)://')


class UnknownPublisher(ValueError):
    """No publisher plugin is named by the scheme of a publisher URL."""

    def __init__(self, url: str, namespace: str) -> None:
        known = ', '.join(f'{name}://' for name in
                          entry_point_names(namespace))
        super().__init__(f'unknown publisher {url!r}: the known publishers '
                         f'({namespace}) are {known}')


def split_url(url: str) -> urlparse.SplitResult:
    """``oslo_utils.netutils.urlsplit`` of ``url``, also accepting schemes
    with an underscore (``file_alt://``, ``http_alt://``), which the
    standard library does not recognise as schemes."""
    parse_result = netutils.urlsplit(url)
    match = _SCHEME.match(url)
    if not parse_result.scheme and match:
        scheme = match.group(1)
        parse_result = netutils.urlsplit(
            'placeholder' + url[len(scheme):])._replace(scheme=scheme)
    return parse_result


def get_publisher(conf: cfg.ConfigOpts, url: str,
                  namespace: str) -> ConfigPublisherBase:
    """Load and build the publisher for ``url`` from ``namespace``.

    An unknown scheme raises :class:`UnknownPublisher`, which lists the
    known ones. An entry point that is a factory rather than a
    :class:`ConfigPublisherBase` subclass is called with the parsed URL
    alone and must return an object with the same hooks.
    """
    parse_result = split_url(url)
    try:
        loaded: driver.DriverManager = driver.DriverManager(
            namespace, parse_result.scheme)
    except stevedore_exc.NoMatches as err:
        raise UnknownPublisher(url, namespace) from err
    factory: Any = loaded.driver
    if isinstance(factory, type) and issubclass(factory,
                                                ConfigPublisherBase):
        return factory(conf, parse_result)
    return factory(parse_result)


class ConfigPublisherBase(metaclass=abc.ABCMeta):
    """Base class of every publisher plugin."""

    def __init__(self, conf: cfg.ConfigOpts,
                 parsed_url: urlparse.SplitResult) -> None:
        self.conf = conf

    @abc.abstractmethod
    def publish_samples(self, samples: list[Sample]) -> None:
        """Send a list of :class:`telemeter.sample.Sample`."""

    @abc.abstractmethod
    def publish_events(self, events: list[Event]) -> None:
        """Send a list of :class:`telemeter.storage.models.Event`.

        Publishers that only carry samples raise
        :class:`telemeter.NotImplementedError`.
        """

    def close(self) -> None:
        """Release sockets, files and connections (the pipeline drops a
        publisher when it is reloaded); the default holds none."""
