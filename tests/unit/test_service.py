"""Start-up and option registration (config.md)."""

import oslo_messaging
import pytest
from oslo_config import cfg

from telemeter import opts, sample, service


def test_config_file_values_are_read(tmp_path):
    path = tmp_path / 'telemeter.conf'
    path.write_text('[DEFAULT]\nsample_source = region-9\nhost = node-7\n'
                    '[collector]\nudp_port = 5000\n'
                    '[publisher]\ntelemetry_secret = s3cret\n')
    try:
        conf = service.prepare_service(argv=['x'],
                                       config_files=[str(path)],
                                       conf=cfg.ConfigOpts())
        assert conf.host == 'node-7'
        assert conf.collector.udp_port == 5000
        assert conf.publisher.telemetry_secret == 's3cret'
        assert sample.Sample.SOURCE_DEFAULT == 'region-9'
    finally:
        sample.Sample.SOURCE_DEFAULT = 'openstack'


def test_defaults(conf):
    assert conf.pipeline_cfg_file == 'pipeline.yaml'
    assert conf.meter_dispatchers == ['database']
    assert conf.event_dispatchers == ['database']
    assert conf.collector.udp_address == '0.0.0.0'
    # Faster defaults than Ceilometer's (1 message, no timeout).
    assert conf.collector.batch_size == 50
    assert conf.collector.batch_timeout == 1
    assert conf.publisher_notifier.metering_topic == 'metering'
    assert conf.publisher.telemetry_secret == ('change this for valid '
                                               'signing')
    assert conf.oslo_messaging_rabbit.rabbit_qos_prefetch_count == 100
    assert conf.notification.notification_control_exchanges[-3:] == [
        'telemeter', 'magnum', 'dns']


def test_control_exchange_is_telemeter(conf):
    transport = oslo_messaging.get_notification_transport(conf, 'fake://')
    try:
        assert transport.conf.control_exchange == 'telemeter'
    finally:
        transport.cleanup()


def test_invalid_config_value_stops_the_command_in_one_line(tmp_path,
                                                            capsys):
    path = tmp_path / 'telemeter.conf'
    path.write_text('[collector]\nworkers = 0\nbatch_size = many\n')
    with pytest.raises(SystemExit) as exc:
        service.prepare_service(argv=['x'], config_files=[str(path)],
                                conf=cfg.ConfigOpts())
    assert exc.value.code == 2
    assert sorted(capsys.readouterr().err.splitlines()) == [
        "x: [collector] batch_size: invalid value: invalid literal for int() "
        f"with base 10: 'many' (in {path})",
        'x: [collector] workers: invalid value: Should be greater than or '
        f'equal to 1 (in {path})']


def test_missing_config_file_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        service.prepare_service(
            argv=['telemeter-x', '--config-file', str(tmp_path / 'nope')],
            conf=cfg.ConfigOpts())
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        f'telemeter-x: Failed to find some config files: '
        f'{tmp_path / "nope"}\n')


def test_help_says_what_the_command_does(capsys):
    with pytest.raises(SystemExit) as exc:
        service.prepare_service(argv=['telemeter-x', '--help'],
                                conf=cfg.ConfigOpts(),
                                description='Does one thing well.')
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith('usage: telemeter-x ')
    assert 'Does one thing well.' in out


def test_list_opts_default_first_and_no_duplicates():
    listed = opts.list_opts()
    assert listed[0][0] == 'DEFAULT'
    for group, options in listed:
        names = [o.dest for o in options]
        assert len(names) == len(set(names)), group
    keystone = opts.list_keystoneauth_opts()
    assert keystone[0][0] == 'service_credentials'
    assert {'auth_type', 'region_name', 'interface'} <= {
        o.dest for o in keystone[0][1]}


def test_collector_start_up_loads_neither_keystoneauth_nor_requests(
        tmp_path):
    """A collector storing into a database needs no HTTP client: the
    modules that use keystoneauth1 and requests import them on first use
    (about 6 MB of every such process)."""
    import subprocess
    import sys
    import textwrap

    conf_file = tmp_path / 'telemeter.conf'
    conf_file.write_text('[service_credentials]\nauth_type = password\n'
                         'cafile = /etc/telemeter/ca.pem\n')
    probe = textwrap.dedent(f'''
        import sys
        import telemeter.cmd
        from telemeter import keystone_client, service
        import telemeter.collector.service
        import telemeter.dispatcher.database
        conf = service.prepare_service(['telemeter-collector',
                                        '--config-file', {str(conf_file)!r}])
        print(sorted(m for m in ('keystoneauth1', 'requests')
                     if m in sys.modules))
        keystone_client.register_keystoneauth_opts(conf)
        print(conf.service_credentials.auth_type,
              conf.service_credentials.cafile)
    ''')
    out = subprocess.run([sys.executable, '-c', probe], check=True,
                         capture_output=True, text=True).stdout.split('\n')
    assert out[0] == '[]'
    # registered late, the options still read the file parsed at start
    assert out[1] == 'password /etc/telemeter/ca.pem'
