"""The packaged gnocchi_resources.yaml covers the packaged meters."""

from __future__ import annotations

import configparser
import pathlib

import pytest
import yaml

from telemeter.gnocchi import resources

REPO = pathlib.Path(__file__).resolve().parents[3]
DATA = REPO / 'telemeter'


def packaged_meters() -> set[str]:
    names = set()
    meters = yaml.safe_load(
        (DATA / 'data' / 'meters.d' / 'meters.yaml').read_text())
    names.update(m['name'] for m in meters['metric']
                 if not m['name'].startswith(('$', "'")))
    snmp = yaml.safe_load(
        (DATA / 'data' / 'snmp.yaml').read_text())
    names.update(m['name'] for m in snmp['metric'])
    setup = configparser.ConfigParser()
    setup.read(REPO / 'setup.cfg')
    pollsters = setup['entry_points']['telemeter.poll.compute']
    names.update(line.split('=')[0].strip()
                 for line in pollsters.strip().splitlines())
    names.update(f'hardware.ipmi.{kind}' for kind in
                 ('temperature', 'voltage', 'current', 'fan'))
    names.update(('identity.authenticate.success', 'storage.objects.'
                  'incoming.bytes', 'storage.api.request'))
    return names


@pytest.fixture(scope='module')
def definitions():
    with open(resources.PACKAGED) as handle:
        return resources.Definitions(yaml.safe_load(handle))


def test_every_packaged_meter_has_a_resource_type(definitions):
    missing = sorted(n for n in packaged_meters()
                     if definitions.lookup(n) is None)
    assert missing == []


@pytest.mark.parametrize('meter, resource_type', [
    ('memory', 'instance'), ('cpu', 'instance'),
    ('disk.device.read.bytes', 'instance_disk'),
    ('network.incoming.bytes.rate', 'instance_network_interface'),
    ('host.cpu.time', 'host'), ('hardware.cpu.load.1min', 'host'),
    ('hardware.network.ip.incoming.datagrams', 'host'),
    ('hardware.network.incoming.bytes', 'host_network_interface'),
    ('hardware.disk.size.total', 'host_disk'),
    ('compute.node.cpu.percent', 'nova_compute'),
    ('hardware.ipmi.fan', 'ipmi_sensor'), ('volume.size', 'volume'),
    ('image.size', 'image'), ('bandwidth', 'network')])
def test_resource_type_of_meter(definitions, meter, resource_type):
    assert definitions.lookup(meter)[0].resource_type == resource_type


def test_archive_policy_override_applies_to_every_metric():
    with open(resources.PACKAGED) as handle:
        content = yaml.safe_load(handle)
    overridden = resources.Definitions(content, policy_override='x')
    assert overridden.lookup('cpu')[1] == 'x'
    assert resources.Definitions(content).lookup('cpu')[1] == \
        'telemeter-low-rate'
    assert resources.Definitions(content).lookup('memory')[1] == \
        'telemeter-low'


def test_resource_types_schema(definitions):
    types = definitions.resource_types()
    assert types['instance']['display_name'] == \
        resources.DEFAULT_ATTRIBUTE_TYPE
    assert types['instance_network_interface']['instance_id'] == {
        'type': 'uuid', 'required': False}
    assert types['network'] == {}


def test_bad_entries_are_refused():
    with pytest.raises(resources.ResourceDefinitionError):
        resources.Definitions({'resources': [{'metrics': {'a': None}}]})
    with pytest.raises(resources.ResourceDefinitionError,
                       match='event_attributes'):
        resources.Definitions({'resources': [
            {'resource_type': 't', 'event_delete': 'x.delete'}]})
