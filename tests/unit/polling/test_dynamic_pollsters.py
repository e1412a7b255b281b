"""Dynamic pollsters: definitions, loading and samples from a local HTTP
server speaking Keystone v3 (token + catalog) and the polled API."""

from __future__ import annotations

import logging

import pytest
from oslo_config import cfg

from telemeter import keystone_client, service
from telemeter.polling.dynamic import definitions, loader, pollster
from tests.functional.fixtures import keystone


@pytest.fixture
def api():
    server = keystone.FakeKeystone().start()
    server.add_service('fake', '/fake')
    yield server
    server.stop()


@pytest.fixture
def kconf(api, tmp_path):
    """A configuration whose [service_credentials] point at ``api``."""
    path = tmp_path / 'telemeter.conf'
    path.write_text('[service_credentials]\n' + api.auth_options())
    return service.prepare_service(argv=['x'], config_files=[str(path)],
                                   conf=cfg.ConfigOpts())


class Manager:
    def __init__(self, conf):
        self.conf = conf
        self.keystone = keystone_client.get_client(conf)


def _definition(**kw):
    base = {'name': 'dyn.meter', 'sample_type': 'gauge', 'unit': 'u',
            'value_attribute': 'v', 'endpoint_type': 'fake',
            'url_path': 'items'}
    base.update(kw)
    return definitions.validate(base)


# -- definitions ---------------------------------------------------------


def test_defaults_are_filled():
    d = _definition()
    assert d['namespaces'] == ['central']
    assert (d['timeout'], d['default_value'], d['response_handlers'],
            d['resource_id_attribute'], d['user_id_attribute'],
            d['project_id_attribute'], d['preserve_mapped_metadata'],
            d['extra_metadata_fields_cache_seconds']) == (
        30, -1, ['json'], 'id', 'user_id', 'project_id', True, 3600)
    assert _definition(namespaces='compute')['namespaces'] == ['compute']


@pytest.mark.parametrize('change,message', [
    ({'name': None}, "required fields \\['name'\\]"),
    ({'url_path': ''}, "required fields \\['url_path'\\]"),
    ({'endpoint_type': None}, 'endpoint_type'),
    ({'name': 'bad name'}, 'does not match'),
    ({'name': 'a.{b}.c'}, 'does not match'),
    ({'sample_type': 'rate'}, 'sample_type'),
    ({'timeout': 0}, 'timeout must be > 0'),
    ({'response_handlers': ['yaml']}, 'response_handlers'),
    ({'value_attribute': 'v | value +'}, 'invalid expression'),
    ({'metadata_fields': 'a'}, 'wrong type'),
    ({'colour': 'red'}, "unknown field\\(s\\) \\['colour'\\]"),
    ({'name': 'a.{b}'}, 'multi-metric'),
    ({'module': 'requests.auth'}, 'go together'),
    ({'namespaces': [1]}, 'namespaces'),
    ({'extra_metadata_fields': [{'name': 'x'}]}, 'extra_metadata_fields'),
])
def test_invalid_definitions(change, message):
    with pytest.raises(definitions.DynamicPollsterDefinitionException,
                       match=message):
        _definition(**change)


def test_non_openstack_and_command_need_no_endpoint_type():
    d = _definition(endpoint_type=None, module='requests.auth',
                    authentication_object='HTTPBasicAuth')
    assert pollster.DynamicPollster(None, d).default_discovery == 'local_node'
    d = _definition(endpoint_type=None, url_path=None, host_command='true')
    assert pollster.DynamicPollster(None, d).default_discovery == 'local_node'
    d = _definition()
    assert pollster.DynamicPollster(None, d).default_discovery == \
        'endpoint:fake'


# -- loader ----------------------------------------------------------------


def test_loader_first_definition_wins_and_bad_ones_are_skipped(
        conf, tmp_path, caplog):
    one, two = tmp_path / 'one', tmp_path / 'two'
    one.mkdir()
    two.mkdir()
    (one / 'a.yaml').write_text(
        '- {name: m.a, sample_type: gauge, unit: u, value_attribute: v,\n'
        '   endpoint_type: x, url_path: p}\n'
        '- {name: m.c, sample_type: gauge, unit: u, value_attribute: v,\n'
        '   endpoint_type: x, url_path: p, namespaces: [compute]}\n'
        '- {name: "bad!", sample_type: gauge, unit: u, value_attribute: v,\n'
        '   endpoint_type: x, url_path: p}\n')
    (one / 'b.yaml').write_text(
        '- {name: m.a, sample_type: cumulative, unit: other,\n'
        '   value_attribute: v, endpoint_type: x, url_path: p}\n')
    (one / 'ignored.txt').write_text('- not yaml: [')
    (two / 'c.yaml').write_text('{not: a list}\n')
    (two / 'd.yaml').write_text('- [broken\n')
    conf.set_override('pollsters_definitions_dirs',
                      [str(one), str(two), str(tmp_path / 'missing')],
                      group='polling')
    with caplog.at_level(logging.INFO):
        central = loader.load_dynamic_pollsters(conf, ['central'])
    assert [e.name for e in central] == ['m.a']
    assert central[0].obj.definition['unit'] == 'u'
    assert 'Error [' in caplog.text and '[bad!]' in caplog.text
    assert 'must hold a YAML list' in caplog.text
    assert 'Cannot read dynamic pollsters file' in caplog.text
    assert 'the first definition of this name wins' in caplog.text
    compute = loader.load_dynamic_pollsters(conf, ['compute', 'ipmi'])
    assert [e.name for e in compute] == ['m.c']


# -- samples ---------------------------------------------------------------


def test_samples_from_an_openstack_api_with_pagination(kconf, api):
    api.add_json('/fake/items', {
        'items': [{'id': 'r1', 'v': 2, 'user_id': 'u1', 'project_id': 'p1',
                   'meta': {'colour': 'red'}, 'state': 'ok'},
                  {'id': 'r2', 'v': 0, 'state': 'ok'}],
        'links': {'next': 'items2'}})
    api.add_json('/fake/items2', {'items': [
        {'id': 'r3', 'v': 5, 'meta': {'colour': 'blue'}, 'state': 'bad'}]})
    d = _definition(value_attribute='v | value * 10',
                    response_entries_key='items',
                    next_sample_url_attribute='links.next',
                    skip_sample_values=[0],
                    metadata_fields=['meta.colour', 'state'],
                    metadata_mapping={'meta.colour': 'colour'},
                    base_metadata={'origin': 'test'})
    p = pollster.DynamicPollster(kconf, d)
    manager = Manager(kconf)
    endpoint = manager.keystone.get_endpoints('fake')[0]
    samples = list(p.get_samples(manager, {}, [endpoint]))
    # r1: 2 * 10 = 20; r2: 0 * 10 = 0 is a skipped value; r3: 5 * 10 = 50
    assert [(s.resource_id, s.volume) for s in samples] == [
        ('r1', 20), ('r3', 50)]
    r1 = samples[0]
    assert (r1.name, r1.type, r1.unit, r1.user_id, r1.project_id) == (
        'dyn.meter', 'gauge', 'u', 'u1', 'p1')
    # preserve_mapped_metadata (default True) keeps the original key
    assert r1.resource_metadata == {'origin': 'test', 'meta.colour': 'red',
                                    'colour': 'red', 'state': 'ok'}
    assert samples[1].user_id is None
    assert [r['path'] for r in api.requests
            if r['path'].startswith('/fake')] == ['/fake/items',
                                                  '/fake/items2']


def test_value_mapping_default_and_errors(kconf, api, caplog):
    api.add_json('/fake/items', [{'id': 'a', 'v': 'up'},
                                 {'id': 'b', 'v': 'down'},
                                 {'id': 'c', 'v': 'weird'}])
    api.add_json('/fake/boom', {'oops': True}, status=503)
    d = _definition(value_mapping={'up': 1, 'down': 0}, default_value=-7)
    manager = Manager(kconf)
    endpoint = manager.keystone.get_endpoints('fake')[0]
    samples = list(pollster.DynamicPollster(kconf, d).get_samples(
        manager, {}, [endpoint]))
    assert [(s.resource_id, s.volume) for s in samples] == [
        ('a', 1), ('b', 0), ('c', -7)]
    broken = pollster.DynamicPollster(kconf, _definition(url_path='boom'))
    with caplog.at_level(logging.ERROR):
        assert list(broken.get_samples(manager, {}, [endpoint])) == []
    assert 'Dynamic pollster dyn.meter cannot read' in caplog.text
    assert '503' in caplog.text


def test_multi_metric_and_single_mapping_response(kconf, api):
    api.add_json('/fake/items', {'id': 'svc', 'stats': [
        {'kind': 'get', 'n': 4}, {'kind': 'put', 'n': 1}]})
    d = _definition(name='dyn.ops.{kind}', value_attribute='[stats].n',
                    sample_type='cumulative')
    manager = Manager(kconf)
    endpoint = manager.keystone.get_endpoints('fake')[0]
    samples = list(pollster.DynamicPollster(kconf, d).get_samples(
        manager, {}, [endpoint]))
    assert [(s.name, s.volume, s.resource_id) for s in samples] == [
        ('dyn.ops.get', 4, 'svc'), ('dyn.ops.put', 1, 'svc')]


def test_host_command_pollster(conf):
    d = _definition(endpoint_type=None, url_path=None,
                    host_command='printf "id=x\\nvalue=3\\n"',
                    response_handlers=['json', 'text'],
                    value_attribute='out | int(value.split("value=")[1])',
                    resource_id_attribute='out | value.split()[0][3:]')
    samples = list(pollster.DynamicPollster(conf, d).get_samples(
        None, {}, ['local_host']))
    assert [(s.resource_id, s.volume) for s in samples] == [('x', 3)]
    failing = pollster.DynamicPollster(conf, _definition(
        endpoint_type=None, url_path=None, host_command='false'))
    assert list(failing.get_samples(None, {}, ['local_host'])) == []


def test_extra_metadata_fields_are_fetched_and_cached(kconf, api):
    api.add_json('/fake/items', [{'id': 'r1', 'v': 1, 'project_id': 'p1'},
                                 {'id': 'r2', 'v': 2, 'project_id': 'p1'}])
    api.add_json('/fake/projects/p1', {'project': {'name': 'demo'}})
    d = _definition(extra_metadata_fields=[{
        'name': 'project_name',
        'url_path': "'projects/' + sample['project_id']",
        'value': 'project.name'}])
    manager = Manager(kconf)
    endpoint = manager.keystone.get_endpoints('fake')[0]
    samples = list(pollster.DynamicPollster(kconf, d).get_samples(
        manager, {}, [endpoint]))
    assert [s.resource_metadata['project_name'] for s in samples] == [
        'demo', 'demo']
    # the second sample used the cached answer
    assert len(api.requests_to('/fake/projects/p1')) == 1
