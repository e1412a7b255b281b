"""``telemeter-api``: serve the v2 REST API with gunicorn.

gunicorn is the production WSGI server: a master process that binds
``[api] host``:``[api] port``, forks ``[api] workers`` worker processes of
``[api] threads`` threads each, restarts a worker that dies or hangs
longer than ``[api] timeout`` seconds, and tells systemd it is ready
(``Type=notify``). Each worker opens its own database connections.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from gunicorn.app import base as gunicorn_base
from oslo_config import cfg
from oslo_log import log

from telemeter import api, service
from telemeter.api import app

LOG = log.getLogger(__name__)

DESCRIPTION = ("Serves Ceilometer's v2 REST API (meters, samples, "
               'statistics, resources, events) over the stored data, on '
               '[api] host:port, with Keystone tokens or [api] auth_mode = '
               'noauth.')


class Server(gunicorn_base.BaseApplication):
    """gunicorn configured from ``[api]``, serving :func:`app.build`."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        super().__init__()

    def load_config(self) -> None:
        options = self.conf.api
        settings: dict[str, Any] = {
            'bind': [f'{_host(options.host)}:{options.port}'],
            'workers': options.workers,
            'threads': options.threads,
            'worker_class': 'gthread',
            'timeout': options.timeout,
            'graceful_timeout': 15,
            'accesslog': '-',
            'errorlog': '-',
            'loglevel': 'debug' if self.conf.debug else 'info',
            'proc_name': 'telemeter-api',
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Callable:
        return app.build(self.conf)


def _host(host: str) -> str:
    return f'[{host}]' if ':' in host else host


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``telemeter-api``."""
    conf = cfg.ConfigOpts()
    api.register_opts(conf)
    service.prepare_service(argv if argv is not None else sys.argv,
                            conf=conf, description=DESCRIPTION)
    LOG.info('telemeter-api listening on %s:%d (%d workers, auth %s)',
             conf.api.host, conf.api.port, conf.api.workers,
             conf.api.auth_mode)
    Server(conf).run()
