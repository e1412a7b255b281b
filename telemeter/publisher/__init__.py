"""Publishers: where a pipeline sink sends its samples and events.

A publisher is a stevedore plugin named by the URL scheme of a sink's
``publishers`` entry, constructed as ``cls(conf, parsed_url)``.
"""

from __future__ import annotations

import abc
from typing import Any

from oslo_config import cfg
from oslo_utils import netutils
from stevedore import driver


def get_publisher(conf: cfg.ConfigOpts, url: str, namespace: str) -> Any:
    """Load and build the publisher for ``url`` from ``namespace``."""
    parse_result = netutils.urlsplit(url)
    loaded = driver.DriverManager(namespace, parse_result.scheme)
    if issubclass(loaded.driver, ConfigPublisherBase):
        return loaded.driver(conf, parse_result)
    return loaded.driver(parse_result)


class ConfigPublisherBase(metaclass=abc.ABCMeta):
    """Base class of every publisher plugin."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        self.conf = conf

    @abc.abstractmethod
    def publish_samples(self, samples: list[Any]) -> None:
        """Send a list of :class:`telemeter.sample.Sample`."""

    @abc.abstractmethod
    def publish_events(self, events: list[Any]) -> None:
        """Send a list of :class:`telemeter.storage.models.Event`.

        Publishers that only carry samples raise
        :class:`telemeter.NotImplementedError`.
        """
