"""tools/bench/e2e/daemon_conf.py: the daemons' telemeter.conf."""

from __future__ import annotations

import pytest

from tools.bench.e2e import daemon_conf, errors


def test_config_has_servers_workers_and_extras(tmp_path):
    path = tmp_path / 'telemeter.conf'
    text = daemon_conf.write_config(
        path, 'rabbit://guest:guest@127.0.0.1:5720/',
        'postgresql+psycopg://postgres@127.0.0.1:55470/scratch',
        tmp_path / 'log', 's3cret', 2, 3,
        ['collector.batch_size=500', 'collector.workers=4',
         'DEFAULT.debug=true'])
    assert path.read_text() == text
    lines = text.splitlines()
    assert 'transport_url = rabbit://guest:guest@127.0.0.1:5720/' in lines
    assert 'batch_size = 500' in lines
    assert 'workers = 4' in lines and 'workers = 3' not in lines
    assert 'workers = 2' in lines
    assert 'udp_address = ' in lines
    assert lines.count('[DEFAULT]') == 1
    assert 'debug = true' in lines


@pytest.mark.parametrize('item', ['batch_size=5', 'collector.batch_size',
                                  '.x=1', 'collector.=1'])
def test_bad_conf_extra(item):
    with pytest.raises(errors.BenchError):
        daemon_conf.parse_conf_extra(item)


def test_conf_extra_value_may_hold_equals_and_dots():
    assert daemon_conf.parse_conf_extra('database.connection=a://b/c?d=e') == \
        ('database', 'connection', 'a://b/c?d=e')
