"""An in-process API (noauth) over a SQLite file with tests.api_data."""

from __future__ import annotations

import json

import pytest
import webob
from oslo_config import cfg

from telemeter import service, storage
from telemeter.api import app
from tests import api_data


class Client:
    """Sends requests to the WSGI application in-process."""

    def __init__(self, application) -> None:
        self.application = application

    def request(self, method: str, path: str, body=None,
                headers: dict | None = None) -> webob.Response:
        request = webob.Request.blank(path, method=method,
                                      headers=headers or {})
        if body is not None:
            request.body = (body if isinstance(body, bytes)
                            else json.dumps(body).encode())
            request.content_type = 'application/json'
        return request.get_response(self.application)

    def get(self, path: str, status: int = 200, **kwargs):
        response = self.request('GET', path, **kwargs)
        assert response.status_code == status, response.text
        return response.json

    def post(self, path: str, body, status: int = 200, **kwargs):
        response = self.request('POST', path, body=body, **kwargs)
        assert response.status_code == status, response.text
        return response.json


@pytest.fixture(scope='module')
def api_conf(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('api')
    config = workdir / 'telemeter.conf'
    config.write_text(
        f'[database]\nconnection = sqlite:///{workdir / "t.db"}\n'
        f'[api]\nauth_mode = noauth\ndefault_api_return_limit = 5\n'
        f'max_api_return_limit = 50\n'
        f'[publisher]\ntelemetry_secret = {api_data.SECRET}\n')
    conf = service.prepare_service(['test'], config_files=[str(config)],
                                   conf=cfg.ConfigOpts())
    metering = storage.get_connection_from_config(conf, 'metering')
    events = storage.get_connection_from_config(conf, 'event')
    api_data.write(metering, events)
    return conf


@pytest.fixture(scope='module')
def client(api_conf) -> Client:
    return Client(app.build(api_conf))
