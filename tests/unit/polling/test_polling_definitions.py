"""polling.yaml loading and validation (pipeline.md §1-§4, §6)."""

from __future__ import annotations

import logging
import os

import pytest
import yaml

from telemeter.pipeline import base
from telemeter.polling import definitions as polling_pipeline

SOURCE = {'name': 'src', 'interval': 60, 'meters': ['a']}


def make_source(**changes):
    source = dict(SOURCE)
    for key, value in changes.items():
        if value is KeyError:
            source.pop(key)
        else:
            source[key] = value
    return source


def load(conf, polling_file, content):
    polling_file(yaml.safe_dump(content))
    return polling_pipeline.setup_polling(conf)


@pytest.mark.parametrize('content', [{}, {'sinks': []}, None, []])
def test_sources_required(conf, polling_file, content):
    with pytest.raises(base.PollingException) as info:
        load(conf, polling_file, content)
    assert info.value.msg == 'sources required'
    assert info.value.cfg_type == 'Polling'
    assert info.value.cfg == content
    assert str(info.value) == f'Polling {content}: sources required'


@pytest.mark.parametrize('changes,message', [
    ({'name': KeyError}, 'Required field name not specified'),
    ({'meters': KeyError}, 'Missing meters value'),
    ({'interval': KeyError}, 'Missing interval value'),
    ({'interval': 'abc'}, 'Invalid interval value'),
    ({'interval': None}, 'Invalid interval value'),
    ({'interval': [60]}, 'Invalid interval value'),
    ({'interval': 0}, 'Interval value should > 0'),
    ({'interval': -5}, 'Interval value should > 0'),
    ({'resources': 'host1'}, 'Resources should be a list'),
    ({'resources': {'a': 1}}, 'Resources should be a list'),
    ({'discovery': 'local_node'}, 'Discovery should be a list'),
    ({'meters': []}, 'No meters specified'),
    ({'meters': None}, 'No meters specified'),
    ({'meters': ['a', '!b']}, 'Both included and excluded meters specified'),
    ({'meters': ['*', 'a']}, 'Included meters specified with wildcard'),
])
def test_source_errors(conf, polling_file, changes, message):
    source = make_source(**changes)
    with pytest.raises(base.PipelineException) as info:
        load(conf, polling_file, {'sources': [source]})
    assert info.value.msg == message
    assert info.value.cfg_type == 'Pipeline'
    assert info.value.cfg == source
    assert str(info.value) == f'Pipeline {info.value.cfg}: {message}'


@pytest.mark.parametrize('changes,message', [
    # name before meters, meters before interval, interval before the
    # lists, the match list last.
    ({'name': KeyError, 'meters': KeyError}, 'Required field name not '
                                             'specified'),
    ({'meters': KeyError, 'interval': KeyError}, 'Missing meters value'),
    ({'interval': 'x', 'resources': 'r', 'meters': []},
     'Invalid interval value'),
    ({'interval': 0, 'resources': 'r'}, 'Interval value should > 0'),
    ({'resources': 'r', 'discovery': 'd'}, 'Resources should be a list'),
    ({'discovery': 'd', 'meters': []}, 'Discovery should be a list'),
])
def test_check_order(conf, polling_file, changes, message):
    with pytest.raises(base.PipelineException) as info:
        load(conf, polling_file, {'sources': [make_source(**changes)]})
    assert info.value.msg == message


def test_valid_source_defaults(conf, polling_file):
    manager = load(conf, polling_file, {'sources': [
        make_source(interval='30', resources=None, discovery=None),
        make_source(name='other', resources=['r1'], discovery=['d:p'])]})
    first, second = manager.sources
    assert first.get_interval() == 30
    assert isinstance(first.get_interval(), int)
    assert first.resources == [] and first.discovery == []
    assert second.resources == ['r1'] and second.discovery == ['d:p']
    assert str(second) == 'other'


def test_duplicate_source_names_allowed(conf, polling_file):
    manager = load(conf, polling_file,
                   {'sources': [make_source(), make_source()]})
    assert [s.name for s in manager.sources] == ['src', 'src']


@pytest.mark.parametrize('meters,accepted,rejected', [
    (['*'], ['cpu', 'disk.read.bytes'], []),
    (['*', '!image.*'], ['cpu', 'image'], ['image.size', 'image.x.y']),
    (['!foo', '!bar.*'], ['cpu', 'bar'], ['foo', 'bar.x']),
    (['vcpus', 'memory*'], ['vcpus', 'memory', 'memory.usage'],
     ['cpu', 'vcpus.x', 'Memory']),
    (['host.*'], ['host.cpu.time'], ['HOST.cpu.time', 'cpu']),
])
def test_match_lists(meters, accepted, rejected):
    source = polling_pipeline.PollingSource(make_source(meters=meters))
    for name in accepted:
        assert source.support_meter(name), name
    for name in rejected:
        assert not source.support_meter(name), name


def test_fallback_to_pipeline_file(conf, tmp_path, caplog):
    pipeline_file = tmp_path / 'old_pipeline.yaml'
    pipeline_file.write_text(yaml.safe_dump({'sources': [SOURCE]}))
    conf.set_override('pipeline_cfg_file', str(pipeline_file))
    conf.set_override('cfg_file', 'no-such-polling.yaml', group='polling')
    with caplog.at_level(logging.WARNING):
        manager = polling_pipeline.setup_polling(conf)
    assert [s.name for s in manager.sources] == ['src']
    assert ('Using the pipeline configuration for polling is deprecated. '
            'no-such-polling.yaml should be used instead.') in caplog.text


def test_polling_file_preferred_over_pipeline_file(conf, polling_file,
                                                   tmp_path):
    pipeline_file = tmp_path / 'old_pipeline.yaml'
    pipeline_file.write_text(yaml.safe_dump(
        {'sources': [make_source(name='old')]}))
    conf.set_override('pipeline_cfg_file', str(pipeline_file))
    manager = load(conf, polling_file,
                   {'sources': [make_source(name='new')]})
    assert [s.name for s in manager.sources] == ['new']


DEFAULT_METERS = [
    'cpu', 'cpu_l3_cache', 'memory.usage', 'network.incoming.bytes',
    'network.incoming.packets', 'network.outgoing.bytes',
    'network.outgoing.packets', 'disk.read.bytes', 'disk.read.requests',
    'disk.write.bytes', 'disk.write.requests', 'hardware.cpu.util',
    'hardware.memory.used', 'hardware.memory.total',
    'hardware.memory.buffer', 'hardware.memory.cached',
    'hardware.memory.swap.avail', 'hardware.memory.swap.total',
    'hardware.system_stats.io.outgoing.blocks',
    'hardware.system_stats.io.incoming.blocks',
    'hardware.network.ip.incoming.datagrams',
    'hardware.network.ip.outgoing.datagrams',
]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


def test_packaged_polling_yaml(conf):
    packaged = os.path.join(base.DATA_DIR, 'polling.yaml')
    manager = polling_pipeline.PollingManager(conf, packaged)
    [source] = manager.sources
    assert source.name == 'some_pollsters'
    assert source.get_interval() == 300
    assert source.meters == DEFAULT_METERS
    assert source.resources == [] and source.discovery == []


def test_default_cfg_file_is_packaged(conf):
    assert conf.polling.cfg_file == 'polling.yaml'
    if conf.find_file('polling.yaml'):
        pytest.skip('a polling.yaml of the machine shadows the package')
    manager = polling_pipeline.setup_polling(conf)
    assert manager.cfg_path == os.path.join(base.DATA_DIR, 'polling.yaml')


def test_etc_files():
    with open(os.path.join(REPO, 'etc', 'telemeter', 'polling.yaml')) as f:
        etc = yaml.safe_load(f)
    with open(os.path.join(base.DATA_DIR, 'polling.yaml')) as f:
        assert yaml.safe_load(f) == etc
    with open(os.path.join(REPO, 'etc', 'telemeter',
                           'polling_all.yaml')) as f:
        assert yaml.safe_load(f) == {'sources': [
            {'name': 'all_pollsters', 'interval': 300, 'meters': ['*']}]}
