"""What an endpoint handler gets: the request, the configuration, the
storage connections, the caller's credentials and the shared checks."""

from __future__ import annotations

import threading
from typing import Any

import webob
from oslo_config import cfg

from telemeter import storage
from telemeter.api import errors, rbac


class Connections:
    """The metering and event storage of one process, opened on first
    use (so each server worker opens its own after the fork)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self._lock = threading.Lock()
        self._open: dict[str, Any] = {}

    def get(self, purpose: str) -> Any:
        """The ``metering`` or ``event`` connection."""
        conn = self._open.get(purpose)
        if conn is None:
            with self._lock:
                conn = self._open.get(purpose)
                if conn is None:
                    conn = storage.get_connection_from_config(
                        self.conf, purpose)
                    self._open[purpose] = conn
        return conn


class Context:
    """One request being served."""

    def __init__(self, request: webob.Request, conf: cfg.ConfigOpts,
                 connections: Connections, authorizer: rbac.Authorizer,
                 publisher: Any = None) -> None:
        self.request = request
        self.conf = conf
        self.connections = connections
        self.authorizer = authorizer
        self.publisher = publisher
        self.creds = rbac.credentials(request.headers,
                                      conf.api.auth_mode == 'noauth')
        self._limited: tuple[str | None] | None = None

    @property
    def metering(self) -> Any:
        """The metering storage connection."""
        return self.connections.get('metering')

    @property
    def events(self) -> Any:
        """The event storage connection."""
        return self.connections.get('event')

    def enforce(self, operation: str) -> None:
        """403 unless the policy allows ``operation``."""
        self.authorizer.enforce(operation, self.creds)

    @property
    def limited_project(self) -> str | None:
        """The only project this request may see (None: every one)."""
        if self._limited is None:
            self._limited = (self.authorizer.limited_project(self.creds),)
        return self._limited[0]

    @property
    def params(self) -> webob.multidict.MultiDict:
        """The GET parameters."""
        try:
            return self.request.GET
        except UnicodeDecodeError:
            raise errors.BadRequest('query string',
                                    'not valid UTF-8') from None

    def param(self, name: str) -> str | None:
        """One GET parameter (400 if given more than once)."""
        values = self.params.getall(name)
        if len(values) > 1:
            raise errors.BadRequest(name, 'given more than once')
        return values[0] if values else None

    def integer(self, name: str, value: Any = None) -> int | None:
        """GET parameter ``name`` (or ``value``) as an int, or None."""
        if value is None:
            value = self.param(name)
        if value is None or value == '':
            return None
        if isinstance(value, bool):
            raise errors.BadRequest(name, f'{value!r} is not an integer')
        try:
            return int(value)
        except (TypeError, ValueError):
            raise errors.BadRequest(
                name, f'{value!r} is not an integer') from None

    def limit(self, value: Any = None) -> int:
        """The ``limit`` to apply: the default when unset; 400 unless
        1 <= limit <= ``[api] max_api_return_limit``."""
        limit = self.integer('limit', value)
        if limit is None:
            return self.conf.api.default_api_return_limit
        if limit <= 0:
            raise errors.BadRequest('limit', 'Limit must be positive')
        maximum = self.conf.api.max_api_return_limit
        if limit > maximum:
            raise errors.BadRequest(
                'limit', f'{limit} is more than the maximum {maximum} '
                '([api] max_api_return_limit)')
        return limit

    def json_body(self) -> Any:
        """The request body as JSON (400 if it is not)."""
        try:
            return self.request.json_body
        except (ValueError, UnicodeDecodeError) as err:
            raise errors.BadRequest(
                'body', f'not a JSON document: {err}') from None

    def url(self, path: str) -> str:
        """An absolute URL of this API."""
        return self.request.application_url + path
