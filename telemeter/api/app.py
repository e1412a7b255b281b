"""The WSGI application: routing, JSON responses, errors and the
authentication middleware."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import routes
import sqlalchemy.exc
import webob
import webob.exc
from oslo_config import cfg
from oslo_log import log

import telemeter
from telemeter import storage
from telemeter.api import context, errors, rbac
from telemeter.api.v2 import events, meters, post, resources, root, samples

LOG = log.getLogger(__name__)

#: Largest request body accepted (bytes).
MAX_BODY = 16 * 1024 * 1024
#: Paths served without a token (the versions document).
PUBLIC_PATHS = ('/',)


def _routes() -> list[tuple[str, str, Callable[..., Any]]]:
    from telemeter.api import dashboard

    return [*root.ROUTES, *meters.ROUTES, *post.ROUTES, *samples.ROUTES,
            *resources.ROUTES, *events.ROUTES, *dashboard.ROUTES]


class API:
    """Ceilometer's v2 API over telemeter's storage (no auth layer)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self.connections = context.Connections(conf)
        self.authorizer = rbac.Authorizer(conf)
        self.publisher = post.PipelinePublisher(conf)
        self.mapper = routes.Mapper()
        self.handlers: dict[str, dict[str, Callable[..., Any]]] = {}
        for path, method, handler in _routes():
            self.handlers.setdefault(path, {})[method] = handler
        for path in self.handlers:
            self.mapper.connect(path, route=path)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable:
        request = webob.Request(environ)
        response = self.respond(request)
        return response(environ, start_response)

    def respond(self, request: webob.Request) -> webob.Response:
        """The response to ``request``; every failure becomes a JSON
        error (4xx for a bad request, 503 when storage is down)."""
        try:
            return self._dispatch(request)
        except errors.APIError as err:
            return err.response()
        except webob.exc.HTTPException as err:
            return errors.error_response(err.code, err.explanation
                                         or err.title)
        except storage.StorageBadAggregate as err:
            return errors.error_response(400, f'aggregate: {err}')
        except telemeter.NotImplementedError as err:
            return errors.error_response(400, f'q: {err}')
        except (sqlalchemy.exc.DataError, OverflowError) as err:
            LOG.info('Refused a query the database cannot run: %s', err)
            return errors.error_response(
                400, 'q: a value of the query is out of range or invalid '
                'for the database')
        except (sqlalchemy.exc.OperationalError,
                sqlalchemy.exc.InterfaceError) as err:
            LOG.error('Database unavailable: %s', err)
            return errors.error_response(503, 'the database is '
                                         'unavailable; retry later')
        except Exception:
            LOG.exception('Error serving %s %s', request.method,
                          request.path_qs)
            return errors.error_response(500, 'internal error (logged)')

    def _dispatch(self, request: webob.Request) -> webob.Response:
        try:
            path = request.path_info
        except UnicodeDecodeError:
            raise errors.BadRequest('path', 'not valid UTF-8') from None
        if request.content_length and request.content_length > MAX_BODY:
            raise errors.APIError(f'body: larger than {MAX_BODY} bytes',
                                  413)
        match = self.mapper.match(path.rstrip('/') or '/')
        if match is None:
            raise errors.APIError(f'path: {path} is not an endpoint of '
                                  'this API', 404)
        by_method = self.handlers[match.pop('route')]
        method = 'GET' if request.method == 'HEAD' else request.method
        handler = by_method.get(method)
        if handler is None:
            raise errors.APIError(
                f'method: {request.method} is not allowed on {path} '
                f'(allowed: {", ".join(sorted(by_method))})', 405)
        ctx = context.Context(request, self.conf, self.connections,
                              self.authorizer, self.publisher)
        result = handler(ctx, **match)
        if isinstance(result, webob.Response):
            return result
        body = json.dumps(result, default=str).encode()
        return webob.Response(body=body, content_type='application/json',
                              charset='UTF-8')


class PublicPaths:
    """Serves ``public`` paths with ``app``, every other one through
    ``protected`` (the auth middleware around ``app``)."""

    def __init__(self, app: Callable, protected: Callable,
                 public: Iterable[str]) -> None:
        self.app = app
        self.protected = protected
        self.public = set(public)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable:
        path = environ.get('PATH_INFO', '') or '/'
        if path in self.public:
            for name in ('HTTP_X_ROLES', 'HTTP_X_PROJECT_ID',
                         'HTTP_X_USER_ID'):
                environ.pop(name, None)
            return self.app(environ, start_response)
        return self.protected(environ, start_response)


def build(conf: cfg.ConfigOpts) -> Callable:
    """The WSGI application for ``conf``: the API behind keystonemiddleware
    ``auth_token`` (``[api] auth_mode = keystone``) or as it is
    (``noauth``)."""
    api = API(conf)
    if conf.api.auth_mode == 'noauth':
        LOG.warning('telemeter-api runs WITHOUT authentication ([api] '
                    'auth_mode = noauth): every request is admin')
        return api
    from keystonemiddleware import auth_token

    protected = auth_token.AuthProtocol(
        api, {'oslo_config_config': conf, 'delay_auth_decision': False})
    return PublicPaths(api, protected, PUBLIC_PATHS)
