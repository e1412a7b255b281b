"""The module-level WSGI entry point for uwsgi / mod_wsgi / gunicorn.

``application`` reads the configuration on its first request: the files
named by ``TELEMETER_CONFIG_FILES`` (comma-separated), else oslo.config's
default locations (``/etc/telemeter/telemeter.conf``...). For example::

    uwsgi --http :8777 --module telemeter.api.wsgi:application
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from oslo_config import cfg


def build_app(argv: list[str] | None = None,
              config_files: list[str] | None = None) -> Callable:
    """Read the configuration and build the WSGI application."""
    from telemeter import api, service
    from telemeter.api import app

    conf = cfg.ConfigOpts()
    api.register_opts(conf)
    service.prepare_service(argv or ['telemeter-api'],
                            config_files=config_files, conf=conf)
    return app.build(conf)


class LazyApplication:
    """A WSGI callable that builds the application on first use."""

    def __init__(self) -> None:
        self._app: Callable | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    files = os.environ.get('TELEMETER_CONFIG_FILES')
                    self._app = build_app(
                        config_files=files.split(',') if files else None)
        return self._app(environ, start_response)


application: Any = LazyApplication()
