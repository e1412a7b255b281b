"""Keystone client factory and the central discoveries, against a local
HTTP server speaking the Keystone v3 token + catalog API (and Nova's
servers/detail for the discoveries that need it)."""

from __future__ import annotations

import logging

import pytest
from keystoneauth1 import exceptions as ka_exceptions
from oslo_config import cfg

from telemeter import keystone_client, service
from telemeter.polling.compute import discovery as compute_discovery
from telemeter.polling.discovery import endpoint, tripleo
from tests.functional.fixtures import keystone


@pytest.fixture
def api():
    server = keystone.FakeKeystone().start()
    yield server
    server.stop()


def _conf(tmp_path, text: str) -> cfg.ConfigOpts:
    path = tmp_path / 'telemeter.conf'
    path.write_text(text)
    return service.prepare_service(argv=['x'], config_files=[str(path)],
                                   conf=cfg.ConfigOpts())


@pytest.fixture
def kconf(api, tmp_path):
    return _conf(tmp_path, '[DEFAULT]\nhost = compute-1\n'
                 '[service_credentials]\n' + api.auth_options())


class Manager:
    def __init__(self, conf):
        self.conf = conf
        self.keystone = keystone_client.get_client(conf)


def test_client_catalog_interface_and_projects(kconf, api):
    api.add_service('image', '/image')
    api.domains.append({'id': 'd2', 'name': 'Other'})
    api.projects = [{'id': 'p1', 'name': 'one', 'domain_id': 'default'},
                    {'id': 'p2', 'name': 'two', 'domain_id': 'd2'}]
    client = keystone_client.get_client(kconf)
    # interface = public: the internal URLs of the catalog are not used
    assert client.get_endpoints('image') == [api.url + '/image']
    assert sorted(client.get_endpoints()) == sorted(
        [api.url + '/v3', api.url + '/image'])
    assert client.get_endpoints('volume') == []
    assert [p['id'] for p in client.list_projects('d2')] == ['p2']
    assert api.token_requests == 1
    # the token was sent with the Identity calls
    assert api.requests_to('/v3/projects')[0]['headers'][
        'x-auth-token'] == api.token


def test_internal_interface(api, tmp_path):
    conf = _conf(tmp_path, '[service_credentials]\n'
                 + api.auth_options().replace('interface = public',
                                              'interface = internalURL'))
    api.add_service('image', '/image')
    client = keystone_client.get_client(conf)
    assert client.get_endpoints('image') == [
        f'http://internal.invalid:{api.port}/image']


def test_missing_credentials_is_a_keystone_error(tmp_path):
    conf = _conf(tmp_path, '')
    with pytest.raises(ka_exceptions.ClientException, match='auth_type'):
        keystone_client.get_client(conf)


def test_refused_password_is_a_keystone_error(api, tmp_path, caplog):
    conf = _conf(tmp_path, '[service_credentials]\n' + api.auth_options())
    api.refuse_tokens = True
    client = keystone_client.get_client(conf)
    with pytest.raises(ka_exceptions.Unauthorized):
        client.get_endpoints('image')
    assert isinstance(ka_exceptions.Unauthorized('x'),
                      ka_exceptions.ClientException)


def test_endpoint_discovery(kconf, api, caplog):
    api.add_service('fake-api', '/fake')
    disc = endpoint.EndpointDiscovery(kconf)
    manager = Manager(kconf)
    assert disc.discover(manager, 'fake-api') == [api.url + '/fake']
    with caplog.at_level(logging.WARNING):
        assert disc.discover(manager, 'nothing') == []
        assert disc.discover(manager, None) != []
    assert 'No endpoints found for service nothing' in caplog.text
    assert disc.group_id == 'global'


def test_tenant_discovery(kconf, api):
    api.domains.append({'id': 'd2', 'name': 'Other'})
    api.projects = [{'id': 'p1', 'name': 'one', 'domain_id': 'default'},
                    {'id': 'p2', 'name': 'two', 'domain_id': 'd2'}]
    projects = endpoint.TenantDiscovery(kconf).discover(Manager(kconf))
    assert [p['id'] for p in projects] == ['p1', 'p2']
    api.domains.clear()
    assert [p['id'] for p in endpoint.TenantDiscovery(kconf).discover(
        Manager(kconf))] == ['p1', 'p2']


SERVERS = [
    {'id': 'node-1', 'status': 'ACTIVE', 'image': {'id': 'img'},
     'flavor': {'id': 'baremetal'},
     'addresses': {'ctlplane': [{'addr': '192.0.2.10',
                                 'OS-EXT-IPS-MAC:mac_addr': 'aa:bb'}]}},
    {'id': 'node-2', 'status': 'ERROR', 'addresses': {
        'ctlplane': [{'addr': '192.0.2.11'}]}},
    {'id': 'node-3', 'status': 'ACTIVE', 'addresses': {
        'tenant': [{'addr': '10.0.0.3'}]}},
]


def test_tripleo_discovery_builds_snmp_resources(api, tmp_path):
    conf = _conf(tmp_path, '[hardware]\nreadonly_user_name = ro user\n'
                 'readonly_user_password = p@ss\n'
                 'readonly_user_auth_proto = sha\n'
                 'readonly_user_priv_proto = aes128\n'
                 'readonly_user_priv_password = priv\n'
                 '[service_credentials]\n' + api.auth_options())
    api.add_service('compute', '/compute/v2.1')
    api.add_json('/compute/v2.1/servers/detail', {'servers': SERVERS})
    disc = tripleo.NodesDiscoveryTripleO(conf)
    assert disc.KEYSTONE_REQUIRED_FOR_SERVICE == 'nova'
    [node] = disc.discover(Manager(conf))
    assert node == {
        'resource_id': 'node-1',
        'resource_url': 'snmp://ro%20user:p%40ss@192.0.2.10?auth_proto=sha'
                        '&priv_proto=aes128&priv_password=priv',
        'mac_addr': 'aa:bb', 'image_id': 'img', 'flavor_id': 'baremetal'}
    assert api.requests_to('/compute/v2.1/servers/detail')[0]['query'] == {
        'all_tenants': 'True'}
    # Incremental: the next call asks for changes since the first one and
    # forgets a node that went to error.
    api.add_json('/compute/v2.1/servers/detail', {'servers': [
        dict(SERVERS[0], status='ERROR')]})
    assert disc.discover(Manager(conf)) == []
    assert 'changes-since' in api.requests_to(
        '/compute/v2.1/servers/detail')[1]['query']


def test_naive_instance_discovery(api, tmp_path):
    conf = _conf(tmp_path, '[DEFAULT]\nhost = compute-1\n'
                 '[compute]\ninstance_discovery_method = naive\n'
                 'resource_update_interval = 3600\n'
                 '[service_credentials]\n' + api.auth_options())
    api.add_service('compute', '/compute')
    api.add_json('/compute/servers/detail', {'servers': [
        {'id': 'i-1', 'name': 'vm', 'status': 'ACTIVE',
         'flavor': {'name': 'small'}, 'tenant_id': 't', 'user_id': 'u'}]})
    disc = compute_discovery.InstanceDiscovery(conf)
    assert disc.group_id == 'compute-1'
    [instance] = disc.discover(Manager(conf))
    assert (instance.id, instance.name, instance.tenant_id) == (
        'i-1', 'vm', 't')
    assert api.requests_to('/compute/servers/detail')[0]['query'] == {
        'host': 'compute-1', 'all_tenants': 'True'}
    # within resource_update_interval the cached list is served
    assert disc.discover(Manager(conf)) == [instance]
    assert len(api.requests_to('/compute/servers/detail')) == 1
