"""Notifications shaped like those OpenStack services send.

Written for these tests after the payloads nova (legacy unversioned
notifications), glance, cinder, the swift proxy's CADF middleware, keystone
(CADF), nova's compute monitors and ironic put on the bus. Each helper
returns a fresh dict in the form handlers receive (``ctxt``,
``publisher_id``, ``event_type``, ``payload``, ``metadata``); ``priority``
is added for the dry-run tool.
"""

from __future__ import annotations

import copy
from typing import Any

USER = '8d4b1f0c7d2e4e7c9a3f5b6d1e2c3a4b'
PROJECT = '5f0a9c2e8b7d4c1a9e3f6b2d7c8a1e4f'
OTHER_USER = '1c2d3e4f5a6b4c7d8e9f0a1b2c3d4e5f'
OTHER_PROJECT = '9a8b7c6d5e4f4a3b2c1d0e9f8a7b6c5d'
INSTANCE = 'f8e3c1b2-4d5a-4e6f-9a7b-1c2d3e4f5a6b'
IMAGE = '3b2c1d0e-9f8a-4b7c-8d6e-5f4a3b2c1d0e'
VOLUME = '6c5d4e3f-2a1b-4c0d-9e8f-7a6b5c4d3e2f'
SNAPSHOT = '0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b'
BACKUP = '7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d'
NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123'


def _context(user: str = USER, project: str = PROJECT) -> dict[str, Any]:
    # oslo.context's to_dict(): both the current and the legacy key names.
    return {'user_id': user, 'project_id': project, 'user': user,
            'tenant': project, 'project_name': 'demo', 'user_name': 'alice',
            'request_id': 'req-6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a',
            'is_admin': False, 'roles': ['member', 'reader'],
            'read_only': False, 'show_deleted': False,
            'auth_token': 'gAAAAABZ-token', 'global_request_id': None}


def _notification(event_type: str, publisher_id: str, payload: Any,
                  priority: str = 'INFO', ctxt: dict | None = None,
                  message_id: str = 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d',
                  timestamp: str = '2017-09-14 09:32:00.123456'
                  ) -> dict[str, Any]:
    return {'ctxt': _context() if ctxt is None else ctxt,
            'publisher_id': publisher_id,
            'event_type': event_type,
            'payload': payload,
            'metadata': {'message_id': message_id, 'timestamp': timestamp},
            'priority': priority}


def message(notification: dict) -> dict:
    """The dict an endpoint receives (no ``priority`` key)."""
    return {k: v for k, v in notification.items() if k != 'priority'}


_INSTANCE_PAYLOAD: dict[str, Any] = {
    'tenant_id': PROJECT,
    'user_id': USER,
    'instance_id': INSTANCE,
    'display_name': 'web-1',
    'reservation_id': 'r-1a2b3c4d',
    'hostname': 'web-1',
    'instance_type': 'm1.small',
    'instance_type_id': 5,
    'instance_flavor_id': '2',
    'memory_mb': 2048,
    'disk_gb': 20,
    'root_gb': 20,
    'ephemeral_gb': 0,
    'vcpus': 1,
    'host': 'compute-01',
    'node': 'compute-01.example.org',
    'architecture': 'x86_64',
    'os_type': None,
    'availability_zone': 'nova',
    'cell_name': '',
    'kernel_id': '',
    'ramdisk_id': '',
    'image_ref_url': f'http://glance.example.org:9292/images/{IMAGE}',
    'state': 'active',
    'state_description': '',
    'progress': '',
    'access_ip_v4': None,
    'access_ip_v6': None,
    'created_at': '2017-09-14 09:31:42+00:00',
    'launched_at': '2017-09-14T09:31:55.500000',
    'terminated_at': '',
    'deleted_at': '',
    'image_meta': {'base_image_ref': IMAGE, 'container_format': 'bare',
                   'disk_format': 'qcow2', 'min_disk': '20',
                   'min_ram': '0',
                   'org.openstack__1__architecture': 'x86_64',
                   'org.openstack__1__os_distro': 'ubuntu',
                   'org.openstack__1__os_version': '16.04'},
    'metadata': {'metering.stack': 'prod-stack',
                 'metering.server.group': 'web', 'owner': 'ops'},
    'fixed_ips': [{'address': '10.0.0.7', 'type': 'fixed', 'version': 4,
                   'label': 'private', 'vif_mac': 'fa:16:3e:00:00:07',
                   'meta': {}, 'floating_ips': []}],
    'message': 'Success',
}


def instance(event_type: str = 'compute.instance.create.end',
             **changes: Any) -> dict:
    """A nova ``compute.instance.*`` notification."""
    payload = copy.deepcopy(_INSTANCE_PAYLOAD)
    payload.update(changes)
    if event_type == 'compute.instance.create.start':
        payload.update(state='building', launched_at='', host=None)
    return _notification(event_type, 'compute.compute-01.example.org',
                         payload)


def instance_update(**changes: Any) -> dict:
    payload = copy.deepcopy(_INSTANCE_PAYLOAD)
    payload.update(old_state='building', state='active',
                   old_task_state='spawning', new_task_state=None,
                   audit_period_beginning='2017-09-14T09:00:00.000000',
                   audit_period_ending='2017-09-14T09:32:00.000000',
                   bandwidth={})
    payload.update(changes)
    return _notification('compute.instance.update',
                         'compute.compute-01.example.org', payload)


def instance_exists() -> dict:
    payload = copy.deepcopy(_INSTANCE_PAYLOAD)
    payload.update(audit_period_beginning='2017-09-14T09:00:00.000000',
                   audit_period_ending='2017-09-14T10:00:00.000000',
                   bandwidth={})
    return _notification('compute.instance.exists',
                         'compute.compute-01.example.org', payload)


def compute_metrics() -> dict:
    """nova's ``compute.metrics.update`` (compute_monitors =
    cpu.virt_driver); percentages are fractions of 1."""
    stamp = '2017-09-14T09:31:59.000000'
    source = 'libvirt.LibvirtDriver'
    values = [('cpu.frequency', 2400), ('cpu.user.time', 17421440000000),
              ('cpu.kernel.time', 7852600000000),
              ('cpu.idle.time', 1554074330000000),
              ('cpu.iowait.time', 11697470000000),
              ('cpu.user.percent', 0.012959045637294348),
              ('cpu.kernel.percent', 0.005841204961898534),
              ('cpu.idle.percent', 0.9733418241487496),
              ('cpu.iowait.percent', 0.008204925446049479),
              ('cpu.percent', 0.026584955048974804)]
    return _notification(
        'compute.metrics.update', 'compute.compute-01.example.org',
        {'nodename': 'compute-01.example.org', 'host': 'compute-01',
         'metrics': [{'name': name, 'value': value, 'timestamp': stamp,
                      'source': source} for name, value in values]},
        ctxt={'user_id': None, 'project_id': None, 'request_id':
              'req-0e9d8c7b-6a5f-4e4d-3c2b-1a0f9e8d7c6b'})


def image(event_type: str = 'image.upload', **changes: Any) -> dict:
    """A glance v2 image notification."""
    payload: dict[str, Any] = {
        'id': IMAGE, 'name': 'ubuntu-16.04', 'status': 'active',
        'owner': OTHER_PROJECT, 'size': 297795584, 'virtual_size': None,
        'disk_format': 'qcow2', 'container_format': 'bare',
        'checksum': '4a2c8f26b0f9d1c1c7ab3b2c5a1ef3b4',
        'created_at': '2017-09-14T09:20:01Z',
        'updated_at': '2017-09-14T09:21:37Z', 'deleted_at': None,
        'deleted': False, 'visibility': 'public', 'protected': False,
        'min_disk': 0, 'min_ram': 0, 'tags': [], 'properties': {},
        'is_public': True}
    payload.update(changes)
    return _notification(event_type, 'image.glance-01', payload)


def image_send() -> dict:
    return _notification('image.send', 'image.glance-01', {
        'bytes_sent': 297795584, 'image_id': IMAGE,
        'owner_id': OTHER_PROJECT, 'receiver_tenant_id': PROJECT,
        'receiver_user_id': USER, 'destination_ip': '10.0.0.21'})


def volume(event_type: str = 'volume.create.end', **changes: Any) -> dict:
    """A cinder volume notification."""
    payload: dict[str, Any] = {
        'tenant_id': PROJECT, 'user_id': USER,
        'host': 'cinder-vol-01@lvm#lvm', 'availability_zone': 'nova',
        'volume_id': VOLUME, 'volume_type':
            'b1a2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
        'status': 'available', 'snapshot_id': None,
        'display_name': 'data-vol', 'size': 10,
        'created_at': '2017-09-14T09:40:11+00:00',
        'launched_at': '2017-09-14T09:40:13+00:00',
        'replication_status': None, 'replication_extended_status': None,
        'replication_driver_data': None, 'volume_attachment': [],
        'metadata': [], 'glance_metadata': []}
    payload.update(changes)
    return _notification(event_type, 'volume.cinder-vol-01@lvm', payload)


def snapshot(event_type: str = 'snapshot.create.end') -> dict:
    return _notification(event_type, 'snapshot.cinder-vol-01@lvm', {
        'tenant_id': PROJECT, 'user_id': USER, 'availability_zone': 'nova',
        'snapshot_id': SNAPSHOT, 'display_name': 'data-vol-snap',
        'volume_id': VOLUME, 'volume_size': 10, 'status': 'available',
        'created_at': '2017-09-14T09:45:00+00:00', 'deleted': '',
        'metadata': {}})


def backup(event_type: str = 'backup.create.end') -> dict:
    return _notification(event_type, 'backup.cinder-backup-01', {
        'tenant_id': PROJECT, 'user_id': USER, 'availability_zone': 'nova',
        'backup_id': BACKUP, 'host': 'cinder-backup-01',
        'display_name': 'nightly', 'created_at': '2017-09-14T10:00:00',
        'status': 'available', 'volume_id': VOLUME, 'size': 10,
        'service_metadata': 'volume_' + VOLUME, 'service':
            'cinder.backup.drivers.swift', 'fail_reason': None,
        'parent_id': None, 'num_dependent_backups': 0,
        'snapshot_id': None})


def swift_request(incoming: int = 1048576, outgoing: int = 0,
                  action: str = 'update') -> dict:
    """What the swift proxy's CADF middleware sends for one request."""
    measurements = [
        {'result': incoming, 'metric': {
            'metricId': 'storage.objects.incoming.bytes',
            'name': 'storage.objects.incoming.bytes', 'unit': 'B'}},
        {'result': outgoing, 'metric': {
            'metricId': 'storage.objects.outgoing.bytes',
            'name': 'storage.objects.outgoing.bytes', 'unit': 'B'}},
        {'result': 1, 'metric': {
            'metricId': 'storage.api.request',
            'name': 'storage.api.request', 'unit': 'request'}},
    ]
    return _notification('objectstore.http.request',
                         'ceilometermiddleware', {
        'typeURI': 'http://schemas.dmtf.org/cloud/audit/1.0/event',
        'id': '4f2c3a1e-8b7d-4e6c-9a5b-0d1e2f3a4b5c',
        'eventTime': '2017-09-14T09:50:00.000000+0000',
        'eventType': 'activity', 'action': action, 'outcome': 'success',
        'requestPath': f'/v1/AUTH_{PROJECT}/backups/db.tar.gz',
        'initiator': {'typeURI': 'service/security/account/user',
                      'id': USER, 'project_id': PROJECT,
                      'host': {'address': '10.0.0.31',
                               'agent': 'python-swiftclient-3.4.0'}},
        'target': {'typeURI': 'service/storage/object', 'id': PROJECT,
                   'action': 'public',
                   'metadata': {'path': f'/v1/AUTH_{PROJECT}/backups/'
                                        f'db.tar.gz',
                                'version': 'v1', 'container': 'backups',
                                'object': 'db.tar.gz'}},
        'observer': {'id': 'target'},
        'measurements': measurements,
    }, ctxt={})


def keystone_authenticate(outcome: str = 'success') -> dict:
    """keystone's CADF ``identity.authenticate``."""
    return _notification('identity.authenticate', 'identity.keystone-01', {
        'typeURI': 'http://schemas.dmtf.org/cloud/audit/1.0/event',
        'id': 'e9a1b2c3-d4e5-4f6a-8b7c-9d0e1f2a3b4c',
        'eventTime': '2017-09-14T09:30:00.123456+0000',
        'eventType': 'activity', 'action': 'authenticate',
        'outcome': outcome,
        'initiator': {'typeURI': 'service/security/account/user',
                      'id': USER,
                      'host': {'agent': 'python-keystoneclient',
                               'address': '10.0.0.2'}},
        'target': {'typeURI': 'service/security/account/user',
                   'id': 'f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b'},
        'observer': {'typeURI': 'service/security',
                     'id': '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d'},
    }, ctxt={})


def ipmi_metrics() -> dict:
    """ironic's ``hardware.ipmi.metrics`` (ipmitool sdr readings)."""
    def sensor(sensor_id: str, reading: str, kind: str) -> dict:
        return {'Sensor ID': sensor_id, 'Sensor Reading': reading,
                'Sensor Type (Analog)': kind, 'Status': 'ok',
                'Entity ID': '7.1 (System Board)',
                'Assertions Enabled': 'unc+ ucr+ unr+'}
    return _notification('hardware.ipmi.metrics', 'ironic.conductor-01', {
        'instance_uuid': INSTANCE, 'node_uuid': NODE,
        'event_type': 'hardware.ipmi.metrics.update',
        'timestamp': '20170914093200', 'message_id': 'abc',
        'payload': {
            'Temperature': {
                'DIMM GH VR Temp (0x3b)': sensor(
                    'DIMM GH VR Temp (0x3b)',
                    '26 (+/- 0.500) degrees C', 'Temperature'),
                'CPU1 VR Temp (0x36)': sensor(
                    'CPU1 VR Temp (0x36)', '32 (+/- 0.500) degrees C',
                    'Temperature'),
                'PCH Temp (0x3c)': sensor('PCH Temp (0x3c)', 'Disabled',
                                          'Temperature'),
            },
            'Current': {
                'Avg Power (0x2e)': sensor('Avg Power (0x2e)',
                                           '130 (+/- 0) Watts', 'Current'),
                'PS1 Curr Out % (0x58)': sensor(
                    'PS1 Curr Out % (0x58)', '11 (+/- 0) unspecified',
                    'Current'),
                'Pwr Consumption (0x5c)': sensor(
                    'Pwr Consumption (0x5c)', '160 (+/- 0) Watts',
                    'Current'),
            },
            'Fan': {
                'Fan 4A Tach (0x46)': sensor('Fan 4A Tach (0x46)',
                                             '6900 (+/- 0) RPM', 'Fan'),
                'Fan 5A Tach (0x48)': sensor('Fan 5A Tach (0x48)',
                                             'no reading', 'Fan'),
            },
            'Voltage': {
                'Planar 3.3V (0x30)': sensor('Planar 3.3V (0x30)',
                                             '3.263 (+/- 0) Volts',
                                             'Voltage'),
            },
        }}, ctxt={})


def http_request() -> dict:
    return _notification('http.request', 'ceilometermiddleware', {
        'request': {'HTTP_X_USER_ID': USER, 'HTTP_X_PROJECT_ID': PROJECT,
                    'HTTP_X_SERVICE_NAME': 'nova',
                    'REQUEST_METHOD': 'GET', 'PATH_INFO': '/v2.1/servers'}},
        ctxt={})
