"""The packaged meters.yaml and event_definitions.yaml against notifications
shaped like those nova, glance, cinder, swift, keystone and others send."""

from __future__ import annotations

import datetime
import filecmp
import os

import pytest
import yaml
from stevedore import extension

from telemeter.notification import event_converter, meters
from tests.unit.notification import payloads

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.fixture
def plugins():
    return extension.ExtensionManager('telemeter.event.trait_plugin')


@pytest.fixture
def packaged_meters(conf, plugins):
    conf.set_override('meter_definitions_dirs', [meters.PACKAGED_METERS_DIR],
                      group='meter')
    definitions, errors = meters.load_definitions(conf, plugins)
    assert errors == []
    return definitions


@pytest.fixture
def converter(conf, plugins):
    return event_converter.setup_events(conf, plugins)


def _samples(definitions, notification):
    message = payloads.message(notification)
    return [meters.sample_util.Sample.from_notification(**kwargs)
            for d in definitions if d.match_type(message['event_type'])
            for kwargs in d.to_samples(message)]


def _by_name(samples):
    found = {}
    for sample in samples:
        assert sample.name not in found, sample.name
        found[sample.name] = sample
    return found


def _traits(converter, notification):
    event = converter.to_event('info', payloads.message(notification))
    return {t.name: t.value for t in event.traits}


def test_packaged_files_load_without_errors(packaged_meters, converter):
    names = {d.name for d in packaged_meters}
    assert {'image.size', 'image.download', 'image.serve', 'volume.size',
            'snapshot.size', 'backup.size', 'memory', 'vcpus',
            'disk.root.size', 'disk.ephemeral.size',
            'compute.instance.booting.time', 'bandwidth',
            'dns.domain.exists', 'trove.instance.exists',
            'manila.share.size'} <= names
    assert len([n for n in names if n.startswith('compute.node.cpu.')]) == 10
    assert converter.definition_errors == []
    assert converter.catchall is not None


def test_etc_copy_of_event_definitions_is_identical():
    assert filecmp.cmp(event_converter.PACKAGED_DEFINITIONS,
                       os.path.join(REPO, 'etc', 'telemeter',
                                    'event_definitions.yaml'),
                       shallow=False)


def test_meters_yaml_is_a_metric_list():
    with open(os.path.join(meters.PACKAGED_METERS_DIR, 'meters.yaml')) as f:
        content = yaml.safe_load(f)
    assert isinstance(content['metric'], list)


# -- nova ----------------------------------------------------------------

def test_instance_create_end(packaged_meters):
    samples = _by_name(_samples(packaged_meters, payloads.instance()))
    assert {n: (s.type, s.unit, s.volume) for n, s in samples.items()} == {
        'memory': ('gauge', 'MB', 2048),
        'vcpus': ('gauge', 'vcpu', 1),
        'disk.root.size': ('gauge', 'GB', 20),
        'disk.ephemeral.size': ('gauge', 'GB', 0),
        # launched 09:31:55.5 - created 09:31:42 = 13.5 s
        'compute.instance.booting.time': ('gauge', 'sec', 13.5),
    }
    memory = samples['memory']
    assert (memory.resource_id, memory.user_id, memory.project_id) == (
        payloads.INSTANCE, payloads.USER, payloads.PROJECT)
    assert memory.resource_metadata == {
        'host': 'compute-01', 'flavor_id': '2', 'flavor_name': 'm1.small',
        'display_name': 'web-1', 'image_ref': payloads.IMAGE,
        'state': 'active', 'availability_zone': 'nova',
        # metering.* keys of the instance metadata.
        'user_metadata': {'stack': 'prod-stack', 'server_group': 'web'}}


def test_instance_create_start_makes_no_size_samples(packaged_meters):
    assert _samples(packaged_meters,
                    payloads.instance('compute.instance.create.start')) == []


@pytest.mark.parametrize('notification', [
    payloads.instance_update(), payloads.instance_exists(),
    payloads.instance('compute.instance.delete.end'),
    payloads.instance('compute.instance.resize.confirm.end',
                      memory_mb=4096, vcpus=2, instance_type='m1.medium'),
])
def test_other_instance_notifications_report_sizes(packaged_meters,
                                                   notification):
    samples = _by_name(_samples(packaged_meters, notification))
    assert set(samples) == {'memory', 'vcpus', 'disk.root.size',
                            'disk.ephemeral.size'}
    payload = notification['payload']
    assert samples['memory'].volume == payload['memory_mb']
    assert samples['vcpus'].volume == payload['vcpus']


def test_compute_node_cpu_meters(packaged_meters):
    samples = _by_name(_samples(packaged_meters, payloads.compute_metrics()))
    assert len(samples) == 10
    assert {s.resource_id for s in samples.values()} == {
        'compute-01_compute-01.example.org'}
    assert samples['compute.node.cpu.frequency'].volume == 2400
    assert samples['compute.node.cpu.frequency'].unit == 'MHz'
    assert samples['compute.node.cpu.user.time'].type == 'cumulative'
    assert samples['compute.node.cpu.user.time'].volume == 17421440000000
    # nova reports fractions: 0.9733418241487496 * 100 = 97.334...
    assert samples['compute.node.cpu.idle.percent'].volume == pytest.approx(
        97.33418241487496)
    assert samples['compute.node.cpu.percent'].unit == 'percent'
    # The metric's own timestamp.
    assert samples['compute.node.cpu.percent'].timestamp == (
        '2017-09-14T09:31:59+00:00')
    assert samples['compute.node.cpu.percent'].resource_metadata == {
        'event_type': 'compute.metrics.update',
        'host': 'compute.compute-01.example.org',
        'source': 'libvirt.LibvirtDriver'}


def test_instance_events(converter):
    traits = _traits(converter, payloads.instance())
    assert traits['instance_id'] == traits['resource_id'] == (
        payloads.INSTANCE)
    assert traits['host'] == 'compute-01.example.org'
    assert traits['service'] == 'compute'
    assert (traits['memory_mb'], traits['vcpus'], traits['root_gb'],
            traits['disk_gb'], traits['ephemeral_gb']) == (2048, 1, 20, 20,
                                                           0)
    assert traits['instance_type_id'] == 5
    assert traits['instance_type'] == 'm1.small'
    assert traits['state'] == 'active'
    assert traits['os_distro'] == 'ubuntu'
    assert traits['os_architecture'] == 'x86_64'
    assert traits['os_version'] == '16.04'
    assert traits['launched_at'] == datetime.datetime(2017, 9, 14, 9, 31,
                                                      55, 500000)
    assert 'deleted_at' not in traits  # '' in the payload
    assert traits['booting_time'] == 13.5
    assert traits['tenant_id'] == payloads.PROJECT
    assert traits['user_id'] == payloads.USER
    assert traits['request_id'] == ('req-6d5c4b3a-2f1e-4d0c-9b8a-'
                                    '7f6e5d4c3b2a')


def test_instance_update_and_exists_events(converter):
    update = _traits(converter, payloads.instance_update())
    assert update['old_state'] == 'building'
    assert update['old_task_state'] == 'spawning'
    assert update['memory_mb'] == 2048
    exists = _traits(converter, payloads.instance_exists())
    assert exists['audit_period_beginning'] == datetime.datetime(
        2017, 9, 14, 9)
    assert exists['audit_period_ending'] == datetime.datetime(
        2017, 9, 14, 10)
    assert 'old_state' not in exists


# -- glance ----------------------------------------------------------------

def test_image_upload(packaged_meters, converter):
    [sample] = _samples(packaged_meters, payloads.image())
    assert (sample.name, sample.type, sample.unit, sample.volume) == (
        'image.size', 'gauge', 'B', 297795584)
    assert (sample.resource_id, sample.project_id) == (
        payloads.IMAGE, payloads.OTHER_PROJECT)
    assert sample.resource_metadata['disk_format'] == 'qcow2'
    traits = _traits(converter, payloads.image())
    assert traits['resource_id'] == payloads.IMAGE
    assert traits['project_id'] == payloads.OTHER_PROJECT
    assert traits['size'] == 297795584
    assert traits['created_at'] == datetime.datetime(2017, 9, 14, 9, 20, 1)


def test_image_send(packaged_meters, converter):
    samples = _by_name(_samples(packaged_meters, payloads.image_send()))
    download, serve = samples['image.download'], samples['image.serve']
    assert download.volume == serve.volume == 297795584
    assert download.type == serve.type == 'delta'
    # Downloaded by the receiver, served by the owner.
    assert (download.user_id, download.project_id) == (payloads.USER,
                                                       payloads.PROJECT)
    assert serve.project_id == payloads.OTHER_PROJECT
    traits = _traits(converter, payloads.image_send())
    assert traits['bytes_sent'] == 297795584
    assert traits['receiver_project'] == payloads.PROJECT


# -- cinder ----------------------------------------------------------------

@pytest.mark.parametrize('event_type', [
    'volume.create.end', 'volume.create.start', 'volume.exists',
    'volume.resize.end', 'volume.attach.end', 'volume.detach.end',
    'volume.delete.end', 'volume.update.end'])
def test_volume_size(packaged_meters, event_type):
    [sample] = _samples(packaged_meters, payloads.volume(event_type))
    assert (sample.name, sample.type, sample.unit, sample.volume,
            sample.resource_id, sample.project_id) == (
        'volume.size', 'gauge', 'GB', 10, payloads.VOLUME,
        payloads.PROJECT)
    assert sample.resource_metadata['display_name'] == 'data-vol'


def test_snapshot_and_backup_sizes(packaged_meters, converter):
    [snap] = _samples(packaged_meters, payloads.snapshot())
    assert (snap.name, snap.volume, snap.resource_id) == (
        'snapshot.size', 10, payloads.SNAPSHOT)
    [backup] = _samples(packaged_meters, payloads.backup())
    assert (backup.name, backup.volume, backup.resource_id) == (
        'backup.size', 10, payloads.BACKUP)
    assert _traits(converter, payloads.snapshot())['resource_id'] == (
        payloads.SNAPSHOT)
    backup_traits = _traits(converter, payloads.backup())
    assert backup_traits['resource_id'] == payloads.BACKUP
    assert backup_traits['volume_id'] == payloads.VOLUME


def test_volume_events(converter):
    traits = _traits(converter, payloads.volume())
    assert traits['resource_id'] == payloads.VOLUME
    assert traits['size'] == 10
    assert traits['host'] == 'cinder-vol-01@lvm#lvm'
    assert traits['status'] == 'available'
    assert traits['created_at'] == datetime.datetime(2017, 9, 14, 9, 40,
                                                     11)
    attached = payloads.volume('volume.attach.end', volume_attachment=[
        {'instance_uuid': payloads.INSTANCE, 'attach_status': 'attached'}])
    assert _traits(converter, attached)['instance_id'] == payloads.INSTANCE


# -- swift and keystone ------------------------------------------------------

def test_swift_request_meters(packaged_meters, converter):
    samples = _by_name(_samples(packaged_meters, payloads.swift_request(
        incoming=0, outgoing=65536, action='read')))
    assert {n: (s.type, s.unit, s.volume) for n, s in samples.items()} == {
        'storage.objects.incoming.bytes': ('delta', 'B', 0),
        'storage.objects.outgoing.bytes': ('delta', 'B', 65536),
        'storage.api.request': ('delta', 'request', 1)}
    for sample in samples.values():
        assert (sample.resource_id, sample.user_id, sample.project_id) == (
            payloads.PROJECT, payloads.USER, payloads.PROJECT)
        assert sample.resource_metadata['container'] == 'backups'
        assert sample.resource_metadata['action'] == 'read'
    traits = _traits(converter, payloads.swift_request())
    assert traits['object'] == 'db.tar.gz'
    assert traits['eventTime'] == datetime.datetime(2017, 9, 14, 9, 50)


@pytest.mark.parametrize('outcome', ['success', 'failure', 'pending'])
def test_keystone_authentication(packaged_meters, converter, outcome):
    [sample] = _samples(packaged_meters,
                        payloads.keystone_authenticate(outcome))
    assert (sample.name, sample.type, sample.unit, sample.volume) == (
        f'identity.authenticate.{outcome}', 'delta', 'user', 1)
    assert sample.resource_id == sample.user_id == payloads.USER
    assert sample.resource_metadata['host_address'] == '10.0.0.2'
    traits = _traits(converter, payloads.keystone_authenticate(outcome))
    assert traits['outcome'] == outcome
    assert traits['resource_id'] == payloads.USER


# -- the other services ------------------------------------------------------

def _note(event_type, payload, publisher_id='service.host-1'):
    return {'ctxt': {}, 'publisher_id': publisher_id,
            'event_type': event_type, 'payload': payload,
            'metadata': {'message_id': 'm-1',
                         'timestamp': '2017-09-14T12:00:00'}}


def test_audit_period_meters(packaged_meters):
    audit = {'audit_period_beginning': '2017-09-14T11:00:00',
             'audit_period_ending': '2017-09-14T12:00:00'}
    [dns] = _samples(packaged_meters, _note('dns.domain.exists', dict(
        audit, id='zone-1', tenant_id='p', status='ACTIVE',
        pool_id='pool-1', name='example.org.')))
    # 12:00 - 11:00 = 3600 s
    assert (dns.name, dns.type, dns.unit, dns.volume, dns.resource_id) == (
        'dns.domain.exists', 'cumulative', 's', 3600.0, 'zone-1')
    [trove] = _samples(packaged_meters, _note('trove.instance.exists', dict(
        audit, instance_id='db-1', tenant_id='p', user_id='u',
        state='active', instance_type='m1.db', nova_instance_id='n-1')))
    assert (trove.name, trove.volume, trove.resource_id,
            trove.user_id) == ('trove.instance.exists', 3600.0, 'db-1', 'u')


def test_manila_magnum_and_bandwidth(packaged_meters):
    [share] = _samples(packaged_meters, _note('share.create.end', {
        'share_id': 'share-1', 'size': 50, 'user_id': 'u',
        'project_id': 'p', 'name': 'home', 'host': 'manila@generic',
        'status': 'available', 'availability_zone': 'nova',
        'proto': 'NFS'}))
    assert (share.name, share.volume, share.resource_id,
            share.project_id) == ('manila.share.size', 50, 'share-1', 'p')
    magnum = _samples(packaged_meters, _note('magnum.bay.metrics.update', {
        'user_id': 'u', 'project_id': 'p', 'resource_id': 'bay-1',
        'metrics': [{'name': 'memory.util', 'unit': '%', 'value': 40.5},
                    {'name': 'cpu.util', 'unit': '%', 'value': 12}]}))
    assert [(s.name, s.unit, s.volume, s.resource_id) for s in magnum] == [
        ('memory.util', '%', 40.5, 'bay-1'), ('cpu.util', '%', 12, 'bay-1')]
    [bandwidth] = _samples(packaged_meters, _note('l3.meter', {
        'tenant_id': 'p', 'label_id': 'label-1', 'bytes': 123456,
        'pkts': 100, 'first_update': 1, 'last_update': 2,
        'host': 'net-1'}))
    assert (bandwidth.name, bandwidth.type, bandwidth.volume,
            bandwidth.resource_id) == ('bandwidth', 'delta', 123456,
                                       'label-1')


@pytest.mark.parametrize('event_type, payload, expected', [
    ('orchestration.stack.create.end',
     {'tenant_id': 'p', 'stack_identity': 'arn:heat:stack-1',
      'stack_name': 'web', 'state': 'CREATE_COMPLETE',
      'create_at': '2017-09-14T11:00:00'},
     {'resource_id': 'arn:heat:stack-1', 'state': 'CREATE_COMPLETE',
      'name': 'web'}),
    ('sahara.cluster.create',
     {'cluster_id': 'c-1', 'project_id': 'p', 'name': 'hadoop',
      'status': 'Active'},
     {'resource_id': 'c-1', 'status': 'Active'}),
    ('network.create.end', {'network': {'id': 'net-1', 'name': 'private',
                                        'status': 'ACTIVE'}},
     {'resource_id': 'net-1', 'name': 'private'}),
    ('port.update.end', {'port': {'id': 'port-1', 'network_id': 'net-1',
                                  'device_owner': 'compute:nova',
                                  'status': 'ACTIVE'}},
     {'resource_id': 'port-1', 'device_owner': 'compute:nova'}),
    ('share.extend.end', {'share_id': 's-1', 'size': 20, 'proto': 'NFS'},
     {'resource_id': 's-1', 'size': 20}),
    ('trove.instance.create', {'instance_id': 'db-1', 'tenant_id': 'p',
                               'state': 'building'},
     {'resource_id': 'db-1', 'state': 'building'}),
    ('dns.domain.create', {'id': 'zone-1', 'name': 'example.org.',
                           'tenant_id': 'p'},
     {'resource_id': 'zone-1', 'project_id': 'p'}),
    ('profiler.nova', {'base_id': 'b', 'trace_id': 't', 'parent_id': 'x',
                       'name': 'wsgi-start', 'service': 'api',
                       'project': 'nova',
                       'info': {'host': 'api-1',
                                'request': {'path': '/v2.1/servers',
                                            'method': 'GET'}}},
     {'trace_id': 't', 'service': 'api', 'method': 'GET'}),
    ('magnum.cluster.create', {'initiator': {'id': 'u', 'project_id': 'p'},
                               'target': {'id': 'cl-1'},
                               'outcome': 'success'},
     {'resource_id': 'cl-1', 'outcome': 'success'}),
    ('http.request', {'request': {'HTTP_X_PROJECT_ID': 'p',
                                  'HTTP_X_USER_ID': 'u',
                                  'HTTP_X_SERVICE_NAME': 'nova',
                                  'REQUEST_METHOD': 'GET'}},
     {'resource_id': 'nova', 'method': 'GET', 'project_id': 'p'}),
    ('identity.project.created', {'resource_info': 'proj-9',
                                  'action': 'created.project',
                                  'initiator': {'id': 'admin'}},
     {'resource_id': 'proj-9', 'user_id': 'admin'}),
])
def test_event_groups(converter, event_type, payload, expected):
    traits = _traits(converter, _note(event_type, payload))
    assert {k: traits.get(k) for k in expected} == expected


def test_dry_run_style_sample_of_ipmi_and_http_is_not_from_meters(
        packaged_meters):
    # Those come from their own handlers, not from meters.yaml.
    assert _samples(packaged_meters, payloads.ipmi_metrics()) == []
    assert _samples(packaged_meters, payloads.http_request()) == []
