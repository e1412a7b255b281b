"""Hardware inspector contract and resource URL parsing.

A hardware resource is a URL string
``snmp://[user[:password]@]host[:port][?auth_proto=..&priv_proto=..&priv_password=..]``
or a dict with ``resource_id`` and ``resource_url`` (any other key becomes
sample metadata, e.g. what ``tripleo_overcloud_nodes`` discovers).
"""

from __future__ import annotations

import abc
import urllib.parse
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg
from stevedore import driver

NAMESPACE = 'telemeter.hardware.inspectors'


class HardwareResource:
    """A parsed hardware resource."""

    def __init__(self, resource: Any) -> None:
        if isinstance(resource, dict):
            try:
                self.url = str(resource['resource_url'])
            except KeyError:
                raise ValueError(
                    f'hardware resource {resource!r} has no resource_url'
                ) from None
            self.extra = {k: v for k, v in resource.items()
                          if k != 'resource_url'}
        else:
            self.url = str(resource)
            self.extra = {}
        self.parsed = urllib.parse.urlsplit(self.url)
        if not self.parsed.scheme or not self.parsed.hostname:
            raise ValueError(
                f'hardware resource {self.url!r} is not a URL like '
                f'snmp://[user[:password]@]host[:port]')
        self.scheme = self.parsed.scheme
        self.hostname = self.parsed.hostname

    @property
    def resource_id(self) -> str:
        return str(self.extra.get('resource_id') or self.hostname)


class Inspector(metaclass=abc.ABCMeta):
    """Reads the values one meter definition asks for from one host."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    @staticmethod
    def prepare_params(param: dict) -> dict:
        """Validate/compile the ``<scheme>_inspector`` mapping of a meter
        definition once, at load time (raise ValueError when invalid)."""
        return param

    @abc.abstractmethod
    def inspect_generic(self, host: HardwareResource, cache: dict,
                        extra_metadata: dict, param: dict
                        ) -> Iterator[tuple[Any, dict, dict]]:
        """Yield ``(value, metadata, extra)`` per sample of the meter.

        ``cache`` is the polling cycle's cache; ``extra`` carries
        ``resource_id`` (and whatever a post operation changed).
        """


_INSPECTORS: dict[tuple[int, str], Inspector] = {}


def get_inspector(conf: cfg.ConfigOpts, scheme: str) -> Inspector:
    """The inspector registered for URL ``scheme``, one per configuration
    (all hardware pollsters share it, and so its SNMP engines)."""
    key = (id(conf), scheme)
    if key not in _INSPECTORS:
        _INSPECTORS[key] = driver.DriverManager(
            NAMESPACE, scheme, invoke_on_load=True,
            invoke_args=(conf,)).driver
    return _INSPECTORS[key]
