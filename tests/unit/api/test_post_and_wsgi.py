"""Samples posted without ``direct`` go through pipeline.yaml; the
module-level WSGI application reads its configuration lazily."""

from __future__ import annotations

import socket

import msgpack
import webob
from oslo_config import cfg

from telemeter import service, storage
from telemeter.api import app, wsgi
from tests.unit.api.conftest import Client


def _conf(tmp_path, extra: str = '', publisher: str = 'test://'):
    pipeline = tmp_path / 'pipeline.yaml'
    pipeline.write_text(
        'sources: [{name: s, meters: ["*"], sinks: [k]}]\n'
        f'sinks: [{{name: k, publishers: ["{publisher}"]}}]\n')
    config = tmp_path / 'telemeter.conf'
    config.write_text(
        f'[DEFAULT]\npipeline_cfg_file = {pipeline}\n'
        f'[database]\nconnection = sqlite:///{tmp_path / "t.db"}\n'
        f'[api]\nauth_mode = noauth\n' + extra)
    return config


def test_post_without_direct_publishes_through_the_pipeline(tmp_path):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(('127.0.0.1', 0))
    receiver.settimeout(10)
    port = receiver.getsockname()[1]
    config = _conf(tmp_path, publisher=f'udp://127.0.0.1:{port}')
    conf = service.prepare_service(['test'], config_files=[str(config)],
                                   conf=cfg.ConfigOpts())
    storage.get_connection_from_config(conf).upgrade()
    api = app.build(conf)
    client = Client(api)
    body = [{'counter_name': 'posted', 'counter_type': 'gauge',
             'counter_unit': 'u', 'counter_volume': 2.5,
             'resource_id': 'r-1', 'timestamp': '2024-05-01T10:00:00'}]
    created = client.post('/v2/meters/posted', body, status=201,
                          headers={'X-Project-Id': 'p-1',
                                   'X-User-Id': 'u-1'})
    with receiver:
        sample = msgpack.unpackb(receiver.recv(65536))
    assert (sample['counter_name'], sample['counter_volume'],
            sample['project_id'], sample['user_id'], sample['source'],
            sample['message_id']) == (
        'posted', 2.5, 'p-1', 'u-1', 'p-1:openstack',
        created[0]['message_id'])
    # Not stored: the pipeline's publishers decide where it goes.
    assert client.get('/v2/meters/posted') == []
    api.publisher.close()


def test_module_application_reads_the_named_config(tmp_path, monkeypatch):
    config = _conf(tmp_path, 'default_api_return_limit = 7\n')
    conf = service.prepare_service(['test'], config_files=[str(config)],
                                   conf=cfg.ConfigOpts())
    storage.get_connection_from_config(conf).upgrade()
    monkeypatch.setenv('TELEMETER_CONFIG_FILES', str(config))
    application = wsgi.LazyApplication()
    response = webob.Request.blank('/v2/meters').get_response(application)
    assert response.status_code == 200
    assert response.json == []
    response = webob.Request.blank('/v2/meters?limit=0').get_response(
        application)
    assert response.status_code == 400
