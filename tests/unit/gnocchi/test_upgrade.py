"""telemeter-upgrade's Gnocchi part: resource types created, completed or
left alone; when it runs at all."""

from __future__ import annotations

import pytest
import yaml
from gnocchiclient import exceptions as gexc

from telemeter.cmd import storage as storage_cmd
from telemeter.gnocchi import resources
from telemeter.gnocchi import upgrade as gnocchi_upgrade


class FakeResourceTypes:
    def __init__(self, existing: dict[str, dict]) -> None:
        self.types = existing
        self.patches: list[tuple[str, list]] = []

    def get(self, name):
        if name not in self.types:
            raise gexc.ResourceTypeNotFound(code=404, message=name)
        return {'name': name, 'attributes': self.types[name]}

    def create(self, body):
        self.types[body['name']] = body['attributes']

    def update(self, name, operations):
        self.patches.append((name, operations))
        for op in operations:
            self.types[name][op['path'].rsplit('/', 1)[1]] = op['value']


class FakeClient:
    def __init__(self, existing):
        self.resource_type = FakeResourceTypes(existing)


@pytest.fixture(scope='module')
def definitions():
    with open(resources.PACKAGED) as handle:
        return resources.Definitions(yaml.safe_load(handle))


def test_creates_completes_and_is_idempotent(definitions):
    client = FakeClient({'instance': {'display_name': {'type': 'string'}},
                         'network': {}})
    done = gnocchi_upgrade.upgrade_resource_types(client, definitions)
    assert done['image'] == 'created'
    assert done['instance'] == ('updated (+flavor_id, +flavor_name, +host, '
                                '+image_ref, +server_group)')
    assert done['network'] == 'unchanged'  # no attributes to add
    # Added attributes are optional, whatever the file says.
    assert all(op['value']['required'] is False
               for _, ops in client.resource_type.patches for op in ops)
    assert set(client.resource_type.types['instance_disk']) == {
        'name', 'instance_id'}
    again = gnocchi_upgrade.upgrade_resource_types(client, definitions)
    assert set(again.values()) == {'unchanged'}


@pytest.fixture
def ran(monkeypatch):
    calls = []
    monkeypatch.setattr(gnocchi_upgrade, 'run',
                        lambda conf: calls.append(conf))
    return calls


def _config(tmp_path, text):
    path = tmp_path / 'telemeter.conf'
    path.write_text(text)
    return str(path)


def test_upgrade_runs_gnocchi_when_configured(tmp_path, ran):
    path = _config(tmp_path, '[gnocchi]\nauth_mode = basic\n'
                             'url = http://127.0.0.1:9\n')
    # No database: only Gnocchi.
    storage_cmd.upgrade(['telemeter-upgrade', '--config-file', path])
    assert len(ran) == 1
    # Skipped, and no database either: nothing to do is an error, as for
    # telemeter-dbsync.
    with pytest.raises(SystemExit, match='no database configured'):
        storage_cmd.upgrade(['telemeter-upgrade', '--config-file', path,
                             '--skip-gnocchi-resource-types'])
    assert len(ran) == 1


def test_upgrade_without_gnocchi_is_dbsync(tmp_path, ran):
    path = _config(tmp_path, f'[database]\nconnection = sqlite:///'
                             f'{tmp_path}/t.db\n')
    storage_cmd.upgrade(['telemeter-upgrade', '--config-file', path])
    assert ran == []
    assert (tmp_path / 't.db').exists()
    path = _config(tmp_path, '[DEFAULT]\nmeter_dispatchers = gnocchi\n'
                             f'[database]\nconnection = sqlite:///'
                             f'{tmp_path}/t.db\n')
    storage_cmd.upgrade(['telemeter-upgrade', '--config-file', path])
    assert len(ran) == 1
