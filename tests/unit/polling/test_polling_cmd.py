"""telemeter-polling command line and the heartbeat service."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import socket
import time

import pytest
from oslo_config import cfg

from telemeter import preflight
from telemeter.cmd import polling as cmd
from telemeter.polling import heartbeat, manager


def parse(argv: list[str]) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(cmd.CLI_OPTS)
    conf(argv, project='telemeter', default_config_files=[])
    return conf


def test_defaults():
    conf = parse([])
    assert conf.polling_namespaces == ['compute', 'central']
    assert conf.pollster_list == []


def test_namespaces_and_pollster_list():
    conf = parse(['--polling-namespaces', 'ipmi', 'central',
                  '--pollster-list', 'host.*', 'cpu'])
    assert conf.polling_namespaces == ['ipmi', 'central']
    assert conf.pollster_list == ['host.*', 'cpu']


def test_duplicates_removed(caplog):
    with caplog.at_level(logging.WARNING):
        conf = parse(['--polling-namespaces', 'compute', 'central',
                      'compute'])
        assert conf.polling_namespaces == ['compute', 'central']
    assert ("Duplicated values: ['compute', 'central', 'compute'] found in "
            "CLI options, auto de-duplicated") in caplog.text


def test_invalid_namespace():
    # oslo.config converts CLI values while parsing the command line.
    with pytest.raises(Exception) as info:
        parse(['--polling-namespaces', 'compute', 'storage'])
    assert type(info.value) is Exception
    assert "Valid values are ['compute', 'central', 'ipmi'], but found " \
        "['compute', 'storage']" in str(info.value)


class FakeServiceManager:
    def __init__(self):
        self.added = []
        self.ran = False

    def register_hooks(self, **hooks):
        self.hooks = hooks

    def add(self, service, workers=1, args=None, kwargs=None):
        self.added.append((service, workers, args))

    def run(self):
        self.ran = True


@pytest.fixture
def fake_sm(monkeypatch):
    sm = FakeServiceManager()
    monkeypatch.setattr(cmd.cotyledon, 'ServiceManager', lambda: sm)
    return sm


def test_main_wires_cotyledon(fake_sm, tmp_path):
    polling_yaml = tmp_path / 'p.yaml'
    polling_yaml.write_text('sources: [{name: s, interval: 5, meters: [a]}]')
    conf_file = tmp_path / 'telemeter.conf'
    conf_file.write_text(f'[polling]\ncfg_file = {polling_yaml}\n')
    cmd.main(['telemeter-polling', '--config-file', str(conf_file),
              '--polling-namespaces', 'compute', 'compute',
              '--pollster-list', 'host.*'])
    assert fake_sm.ran
    [(service, workers, args)] = fake_sm.added
    assert service is manager.AgentManager
    assert workers == 1
    conf, namespaces, pollster_list, hb_queue = args
    assert namespaces == ['compute']
    assert pollster_list == ['host.*']
    assert hb_queue is None
    assert conf.polling.cfg_file == str(polling_yaml)
    # oslo_config_glue registered its options and hooks.
    assert conf.graceful_shutdown_timeout == 60
    assert 'on_reload' in fake_sm.hooks


def test_main_with_heartbeat(fake_sm, tmp_path):
    conf_file = tmp_path / 'telemeter.conf'
    conf_file.write_text(f'[polling]\nheartbeat_socket_dir = {tmp_path}\n')
    cmd.main(['telemeter-polling', '--config-file', str(conf_file)])
    services = [s for s, _, _ in fake_sm.added]
    assert services == [heartbeat.HeartBeatService, manager.AgentManager]
    hb_args = fake_sm.added[0][2]
    agent_args = fake_sm.added[1][2]
    assert hb_args[1] is agent_args[3]
    assert hb_args[2] == ['compute', 'central']


def test_main_refuses_invalid_polling_file(fake_sm, tmp_path, capsys):
    polling_yaml = tmp_path / 'p.yaml'
    polling_yaml.write_text('sources: [{name: s, meters: [a]}]')
    conf_file = tmp_path / 'telemeter.conf'
    conf_file.write_text(f'[polling]\ncfg_file = {polling_yaml}\n')
    with pytest.raises(SystemExit) as exc:
        cmd.main(['telemeter-polling', '--config-file', str(conf_file)])
    assert exc.value.code == preflight.EX_CONFIG
    assert 'Missing interval value' in capsys.readouterr().err
    assert not fake_sm.ran


def test_main_refuses_invalid_namespace(fake_sm):
    with pytest.raises(Exception, match='Valid values are'):
        cmd.main(['telemeter-polling', '--polling-namespaces', 'nova'])
    assert not fake_sm.ran


# -- heartbeat -----------------------------------------------------------


def read_socket(path: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(2)
        client.connect(path)
        chunks = []
        while chunk := client.recv(4096):
            chunks.append(chunk)
    return b''.join(chunks).decode('utf-8')


def test_heartbeat_service(conf, tmp_path):
    conf.set_override('heartbeat_socket_dir', str(tmp_path),
                      group='polling')
    path = tmp_path / 'telemeter-central-compute.socket'
    path.write_text('stale')
    hb_queue = multiprocessing.Queue()
    service = heartbeat.HeartBeatService(0, conf, hb_queue,
                                         ['compute', 'central'])
    assert service.path == str(path)
    service.run()
    try:
        assert read_socket(str(path)) == ''
        hb_queue.put({'pollster': 'cpu', 'timestamp': 't1'})
        hb_queue.put({'pollster': 'mem', 'timestamp': 't2'})
        hb_queue.put({'pollster': 'cpu', 'timestamp': 't3'})
        deadline = time.monotonic() + 3
        text = ''
        while time.monotonic() < deadline:
            text = read_socket(str(path))
            if 't3' in text:
                break
            time.sleep(0.05)
        assert sorted(text.split('\n')) == ['cpu t3', 'mem t2']
        # SIGHUP keeps the service and its status (no self-SIGTERM).
        service.reload()
        assert sorted(read_socket(str(path)).split('\n')) == ['cpu t3',
                                                              'mem t2']
    finally:
        start = time.monotonic()
        service.terminate()
    assert time.monotonic() - start < 2
    assert not os.path.exists(path)
    hb_queue.close()


def test_heartbeat_bind_failure(conf, tmp_path):
    conf.set_override('heartbeat_socket_dir', str(tmp_path / 'missing'),
                      group='polling')
    service = heartbeat.HeartBeatService(0, conf, queue.Queue(), ['ipmi'])
    with pytest.raises(heartbeat.HeartBeatException):
        service.run()


def test_agent_feeds_heartbeat(conf, tmp_path, polling_file):
    conf.set_override('heartbeat_socket_dir', str(tmp_path),
                      group='polling')
    polling_file('sources: [{name: s, interval: 3600, '
                 'meters: [host.load.1min]}]')
    hb_queue = multiprocessing.Queue()
    service = heartbeat.HeartBeatService(0, conf, hb_queue, ['compute'])
    agent = manager.AgentManager(0, conf, ['compute'], queue=hb_queue)
    service.run()
    agent.run()
    try:
        deadline = time.monotonic() + 3
        text = ''
        while time.monotonic() < deadline and not text:
            text = read_socket(str(tmp_path / 'telemeter-compute.socket'))
            time.sleep(0.05)
        name, ts = text.split(' ')
        assert name == 'host.load.1min'
        assert ts.startswith('20')
    finally:
        agent.terminate()
        service.terminate()
    hb_queue.close()
