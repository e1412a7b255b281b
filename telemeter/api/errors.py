"""HTTP errors of the API, rendered as Ceilometer rendered them.

The body is ``{"error_message": {"faultstring": ..., "faultcode":
"Client"|"Server", "debuginfo": null}}``, which python-ceilometerclient
prints as ``ERROR <faultstring>``.
"""

from __future__ import annotations

import json

import webob


class APIError(Exception):
    """An error answered with ``code`` and ``message``."""

    code = 500

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def response(self) -> webob.Response:
        """The JSON error response."""
        return error_response(self.code, self.message)


class BadRequest(APIError):
    """400: the request names a wrong parameter or value."""

    code = 400

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f'{parameter}: {message}')
        self.parameter = parameter


class NotAuthorized(APIError):
    """401, as Ceilometer answered a query on another project."""

    code = 401


class Forbidden(APIError):
    """403: the policy refuses the operation."""

    code = 403


class NotFound(APIError):
    """404: ``<Entity> <id> Not Found``."""

    code = 404

    def __init__(self, entity: str, ident: str) -> None:
        super().__init__(f'{entity} {ident} Not Found')


def error_response(code: int, message: str) -> webob.Response:
    """A JSON error response in Ceilometer's shape."""
    body = {'error_message': {'faultstring': message,
                              'faultcode': 'Client' if code < 500
                              else 'Server',
                              'debuginfo': None}}
    return webob.Response(status=code, content_type='application/json',
                          charset='UTF-8', body=json.dumps(body).encode())
