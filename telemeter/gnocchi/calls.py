"""Calls to Gnocchi, told apart as transient or not, and retried.

:class:`GnocchiCalls` owns the gnocchiclient of one publisher or
dispatcher (built on first use) and runs every call through
:meth:`~GnocchiCalls.call`, which turns "Gnocchi unreachable, timing out
or failing (5xx, 408, 429)" into :class:`Transient`;
:meth:`~GnocchiCalls.with_retries` retries those ``[gnocchi] retries``
times with exponential back-off. What is still transient after that is
the caller's to keep or to hand back (:class:`GnocchiUnavailable`).
"""

from __future__ import annotations

import collections
import datetime
from collections.abc import Callable
from typing import Any

from oslo_config import cfg
from oslo_log import log

from telemeter.gnocchi import client as gnocchi_client

LOG = log.getLogger(__name__)


class GnocchiUnavailable(ConnectionError):
    """Gnocchi did not take the data and the backlog is full (or events,
    which are never kept back): the caller must not acknowledge it.

    A ``ConnectionError``, so the collector requeues the batch
    (:func:`telemeter.dispatcher.errors.unreachable`).
    """


class Transient(Exception):
    """Gnocchi unreachable, timing out or failing (5xx)."""


def is_transient(err: Exception) -> bool:
    """Whether ``err`` (from gnocchiclient or keystoneauth1) may go away
    if the call is made again later."""
    from gnocchiclient import exceptions as gexc
    from keystoneauth1 import exceptions as ka_exc

    if isinstance(err, (gexc.ConnectionFailure, gexc.ConnectionTimeout,
                        gexc.UnknownConnectionError, ka_exc.ConnectionError,
                        ka_exc.ServiceUnavailable,
                        ka_exc.DiscoveryFailure, ConnectionError,
                        TimeoutError)):
        return True
    code = getattr(err, 'code', None) or getattr(err, 'http_status', None)
    return isinstance(code, int) and (code >= 500 or code in (408, 429))


class GnocchiCalls:
    """The client of one store, and its retry policy (``[gnocchi]``).

    ``counters`` is the store's; retries are counted in ``retries``.
    """

    def __init__(self, conf: cfg.ConfigOpts,
                 client_factory: Callable[[cfg.ConfigOpts], Any],
                 sleep: Callable[[float], None],
                 counters: collections.Counter[str]) -> None:
        self.conf = conf
        self.options = conf[gnocchi_client.GROUP]
        self._client_factory = client_factory
        self._client: Any = None
        self._sleep = sleep
        self.counters = counters

    @property
    def client(self) -> Any:
        """The gnocchiclient, built on first use."""
        if self._client is None:
            self._client = self._client_factory(self.conf)
        return self._client

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any
             ) -> Any:
        """Run one Gnocchi call; unreachable/5xx become :class:`Transient`.
        """
        try:
            return func(*args, **kwargs)
        except Exception as err:
            if is_transient(err):
                raise Transient(str(err) or type(err).__name__) from err
            raise

    def with_retries(self, func: Callable[[], Any], what: str) -> Any:
        """``func()``, made again after each :class:`Transient` failure up
        to ``[gnocchi] retries`` times; ``what`` names the data in logs."""
        delay = self.options.retry_backoff
        for attempt in range(self.options.retries + 1):
            try:
                return func()
            except Transient as err:
                if attempt == self.options.retries:
                    raise
                self.counters['retries'] += 1
                LOG.warning('Gnocchi (%s) failed to take %s: %s; retry %d/%d '
                            'in %.1f s',
                            gnocchi_client.endpoint_description(self.conf),
                            what, err, attempt + 1, self.options.retries,
                            delay)
                self._sleep(delay)
                delay = min(delay * 2, self.options.retry_backoff_max)
        raise AssertionError('unreachable')  # pragma: no cover


def gnocchi_id(resource_id: str) -> str:
    """The Gnocchi id of a telemeter resource id ('/' is not allowed)."""
    return resource_id.replace('/', '_')


def timestamp(value: Any) -> str | None:
    """An ISO 8601 string (the collector hands datetimes over); naive
    times are UTC."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.isoformat()
    return str(value) if value else None
