"""The real telemeter-polling agent polling a real snmpd, libvirt's test
driver and HTTP APIs (a local Keystone v3 + API server), through the real
notification agent and collector over the real broker.

One deployment per module: one polling agent runs every kind of pollster
in one task (interval 6 s); the tests check what the collector received
(the file dispatcher keeps every metering dict as it arrived) and what the
agent logged.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from telemeter import messaging
from telemeter.publisher import utils as publisher_utils
from tests.functional import daemons
from tests.functional.fixtures import keystone

DATA = Path(__file__).parent / 'data'
LIBVIRT_URI = f'test://{DATA / "libvirt-node.xml"}'
RUNNING = '7c1d0a4e-0000-4000-8000-000000000001'
STOPPED = '7c1d0a4e-0000-4000-8000-000000000002'
INTERVAL = 6

SNMP_METERS = {
    # name: (unit, type)
    'hardware.cpu.load.1min': ('process', 'gauge'),
    'hardware.cpu.load.5min': ('process', 'gauge'),
    'hardware.cpu.load.15min': ('process', 'gauge'),
    'hardware.disk.size.total': ('KB', 'gauge'),
    'hardware.disk.size.used': ('KB', 'gauge'),
    'hardware.memory.total': ('KB', 'gauge'),
    'hardware.memory.used': ('KB', 'gauge'),
    'hardware.memory.swap.total': ('KB', 'gauge'),
    'hardware.memory.swap.avail': ('KB', 'gauge'),
    'hardware.memory.buffer': ('KB', 'gauge'),
    'hardware.memory.cached': ('KB', 'gauge'),
    'hardware.network.incoming.bytes': ('B', 'cumulative'),
    'hardware.network.outgoing.bytes': ('B', 'cumulative'),
    'hardware.network.outgoing.errors': ('packet', 'cumulative'),
    'hardware.network.ip.outgoing.datagrams': ('datagrams', 'cumulative'),
    'hardware.network.ip.incoming.datagrams': ('datagrams', 'cumulative'),
    'hardware.system_stats.io.outgoing.blocks': ('blocks', 'cumulative'),
    'hardware.system_stats.io.incoming.blocks': ('blocks', 'cumulative'),
}

DYNAMIC_POLLSTERS = """\
- name: dynamic.volume.size
  sample_type: gauge
  unit: MB
  value_attribute: size | value * 1024
  endpoint_type: fake-volume
  url_path: v1/volumes
  response_entries_key: volumes
  next_sample_url_attribute: next
  user_id_attribute: owner
  project_id_attribute: tenant
  metadata_fields: [name, status, "bootable | str(value).lower()"]
  metadata_mapping: {name: display_name}
  preserve_mapped_metadata: false
  base_metadata: {backend: fake}
  headers: {X-Test: dynamic}
- name: dynamic.volume.status
  sample_type: gauge
  unit: status
  value_attribute: status
  endpoint_type: fake-volume
  url_path: v1/volumes
  response_entries_key: volumes
  next_sample_url_attribute: next
  value_mapping: {available: 1, in-use: 2}
  default_value: -1
  skip_sample_values: [deleting]
- name: dynamic.usage.{category}
  sample_type: cumulative
  unit: request
  value_attribute: "[usage].count"
  endpoint_type: fake-volume
  url_path: v1/usage
  resource_id_attribute: service
  project_id_attribute: tenant
- name: dynamic.external.temperature
  sample_type: gauge
  unit: C
  value_attribute: value | float(value)
  module: requests.auth
  authentication_object: HTTPBasicAuth
  authentication_parameters: admin, s3cret
  url_path: '@EXTERNAL_URL@'
  response_handlers: [xml]
  response_entries_key: sensors.sensor
  resource_id_attribute: id
  metadata_fields: [room]
- name: dynamic.host.answer
  sample_type: gauge
  unit: answer
  value_attribute: answer
  host_command: "echo '{\\"id\\": \\"h-1\\", \\"answer\\": 42}'"
  resource_id_attribute: id
- name: dynamic.broken
  sample_type: gauge
  unit: thing
  value_attribute: value
  endpoint_type: fake-volume
  url_path: v1/broken
- name: bad name!
  sample_type: gauge
  unit: x
  value_attribute: v
  endpoint_type: fake-volume
  url_path: x
"""

PAGE_1 = {'volumes': [
    {'id': 'vol-1', 'name': 'data', 'size': 10, 'status': 'available',
     'owner': 'user-1', 'tenant': 'project-1', 'bootable': True},
    {'id': 'vol-2', 'name': 'logs', 'size': 2, 'status': 'in-use',
     'owner': 'user-2', 'tenant': 'project-1', 'bootable': False}],
    'next': 'v1/volumes-page-2'}
PAGE_2 = {'volumes': [
    {'id': 'vol-3', 'name': 'old', 'size': 1, 'status': 'error',
     'owner': 'user-1', 'tenant': 'project-2', 'bootable': False},
    {'id': 'vol-4', 'name': 'gone', 'size': 5, 'status': 'deleting',
     'owner': 'user-1', 'tenant': 'project-2', 'bootable': False}]}
USAGE = [{'service': 'api', 'tenant': 'project-1',
          'usage': [{'category': 'read', 'count': 7},
                    {'category': 'write', 'count': 3}]}]
SENSORS = ('<sensors><sensor id="s-1" value="21.5" room="a"/>'
           '<sensor id="s-2" value="-3" room="b"/></sensors>')


def _dead_udp_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def api():
    server = keystone.FakeKeystone().start()
    server.add_service('fake-volume', '/volume')
    server.add_json('/volume/v1/volumes', PAGE_1)
    server.add_json('/volume/v1/volumes-page-2', PAGE_2)
    server.add_json('/volume/v1/usage', USAGE)
    server.add_json('/volume/v1/broken', {'error': 'boom'}, status=500)
    server.add_text('/external/sensors', SENSORS, 'application/xml')
    yield server
    server.stop()


@pytest.fixture(scope='module')
def deployment(tmp_path_factory, rabbit_url, snmpd_target, api):
    workdir = tmp_path_factory.mktemp('polling-sources')
    pollsters_dir = workdir / 'pollsters.d'
    pollsters_dir.mkdir()
    (pollsters_dir / 'fake.yaml').write_text(DYNAMIC_POLLSTERS.replace(
        '@EXTERNAL_URL@', api.url + '/external/sensors'))
    dead = f'snmp://telemeter-ro@127.0.0.1:{_dead_udp_port()}'
    polling = f"""\
sources:
  - name: snmp
    interval: {INTERVAL}
    meters: ["hardware.*"]
    resources: ["{snmpd_target}", "{dead}"]
  - name: instances
    interval: {INTERVAL}
    meters: [cpu, vcpus, memory.usage, memory.resident, "disk.device.*",
             disk.read.bytes, disk.capacity, "network.*", cpu_util]
  - name: dynamic
    interval: {INTERVAL}
    meters: ["dynamic.*"]
"""
    dep = daemons.Deployment(workdir / 'deployment', rabbit_url,
                             polling=polling, extra_conf=(
                                 f'[DEFAULT]\n'
                                 f'libvirt_uri = {LIBVIRT_URI}\n'
                                 f'[polling]\n'
                                 f'pollsters_definitions_dirs = '
                                 f'{pollsters_dir}\n'
                                 f'[hardware]\n'
                                 f'snmp_timeout = 0.5\n'
                                 f'snmp_retries = 0\n'
                                 f'[service_credentials]\n'
                                 + api.auth_options()))
    try:
        _start(dep)
    except BaseException:
        dep.cleanup()
        raise
    yield dep
    dep.cleanup()
    messaging.cleanup()


def _start(dep: daemons.Deployment) -> None:
    dep.run('telemeter-dbsync')
    collector = dep.start('telemeter-collector')
    notification = dep.start('telemeter-agent-notification')
    collector.wait_for_log('Collector listening on topic')
    notification.wait_for_log('Notification agent listening')
    dep.polling = dep.start('telemeter-polling')
    # Two full cycles: the first, and one after black-listing.
    dep.polling.wait_for_log(r'Polling pollster vcpus in the context',
                             timeout=90, count=2)
    dep.polling.wait_for_log(r'Skip pollster cpu_util', timeout=60)
    expected = set(SNMP_METERS) | {
        'cpu', 'vcpus', 'memory.usage', 'network.incoming.bytes',
        'disk.device.read.bytes', 'dynamic.volume.size',
        'dynamic.volume.status', 'dynamic.usage.read',
        'dynamic.external.temperature', 'dynamic.host.answer'}
    _wait_received(dep, lambda r: _names(r) >= expected)


def _names(received: dict) -> set[str]:
    return {m['counter_name'] for m in received.values()}


def _wait_received(dep, predicate, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    received: dict = {}
    while time.monotonic() < deadline:
        received = dep.received()
        if predicate(received):
            return received
        time.sleep(0.5)
    raise AssertionError(f'condition not met within {timeout}s; received '
                         f'{sorted(_names(received))}')


def _by_name(dep, name: str) -> list[dict]:
    return [m for m in dep.received().values() if m['counter_name'] == name]


def _snmp(target: str, *args: str, command: str = 'snmpget') -> str:
    """Ask snmpd directly (net-snmp tools) for the reference values."""
    community, _, address = target[len('snmp://'):].partition('@')
    return subprocess.run(
        [command, '-v2c', '-c', community, '-On', '-Oq', '-Ov', address,
         *args], capture_output=True, text=True, check=True,
        timeout=10).stdout


# -- SNMP ----------------------------------------------------------------


def test_every_snmp_meter_arrives_with_unit_type_and_source(deployment):
    received = deployment.received().values()
    for name, (unit, type_) in SNMP_METERS.items():
        samples = [m for m in received if m['counter_name'] == name]
        assert samples, f'no {name} sample reached the collector'
        for m in samples:
            assert (m['counter_unit'], m['counter_type'], m['source']) == (
                unit, type_, 'hardware'), name
            assert isinstance(m['counter_volume'], (int, float)), name
            assert publisher_utils.verify_signature(m, daemons.SECRET)


def test_snmp_memory_total_equals_snmpget(deployment, snmpd_target):
    # memTotalReal does not change while the machine runs.
    expected = int(_snmp(snmpd_target, '1.3.6.1.4.1.2021.4.5.0'))
    samples = _by_name(deployment, 'hardware.memory.total')
    assert {m['counter_volume'] for m in samples} == {expected}
    m = samples[0]
    assert m['resource_id'] == '127.0.0.1'
    assert m['resource_metadata'] == {'resource_url': snmpd_target}
    # memory.used = memTotalReal - memAvailReal, so 0 < used < total
    for used in _by_name(deployment, 'hardware.memory.used'):
        assert 0 < used['counter_volume'] < expected


def test_snmp_interface_rows_metadata_and_resource_ids(deployment,
                                                       snmpd_target):
    names = _snmp(snmpd_target, '1.3.6.1.2.1.2.2.1.2',
                  command='snmpwalk').split()
    samples = _by_name(deployment, 'hardware.network.incoming.bytes')
    by_name = {m['resource_metadata']['name']: m for m in samples}
    assert set(by_name) == {n.strip('"') for n in names}
    lo = by_name['lo']
    assert lo['resource_id'] == '127.0.0.1.lo'
    assert lo['resource_metadata']['ip'] == '127.0.0.1'
    # ifSpeed of lo is 10 Mbit/s = 10000000 bit/s -> / 8 = 1250000.0 B/s
    assert lo['resource_metadata']['speed'] == 10000000 / 8
    assert lo['resource_metadata']['mac'] == ''
    assert lo['counter_volume'] > 0


def test_snmp_disk_rows_carry_path_and_device(deployment, snmpd_target):
    paths = {p.strip('"') for p in _snmp(
        snmpd_target, '1.3.6.1.4.1.2021.9.1.2', command='snmpwalk').split()}
    samples = _by_name(deployment, 'hardware.disk.size.total')
    assert {m['resource_metadata']['path'] for m in samples} == paths
    for m in samples:
        device = m['resource_metadata']['device']
        assert m['resource_id'] == f'127.0.0.1.{device}'


@pytest.mark.parametrize('name,oid', [
    ('hardware.cpu.util', '1.3.6.1.4.1.2021.11.9.0'),
    ('hardware.system_stats.cpu.idle', '1.3.6.1.4.1.2021.11.11.0')])
def test_snmp_cpu_percentages(deployment, snmpd_target, name, oid):
    """snmpd answers ssCpuUser/ssCpuIdle only after about a minute of
    history; before that the value is noSuchInstance and no sample is
    made (a warning is logged instead)."""
    samples = _by_name(deployment, name)
    if samples:
        assert {(m['counter_unit'], m['counter_type']) for m in samples} \
            == {('%', 'gauge')}
        assert all(0 <= m['counter_volume'] <= 100 for m in samples)
    else:
        assert 'No Such Instance' in _snmp(snmpd_target, oid) or \
            f'{name}: no value from host 127.0.0.1' in \
            deployment.polling.log()
        assert f'{name}: no value from host 127.0.0.1' in \
            deployment.polling.log()


def test_unreachable_snmp_host_is_logged_and_others_still_run(deployment):
    log = deployment.polling.log()
    assert re.search(r'inspector call failed for hardware\.\S+ host '
                     r'127\.0\.0\.1: .*No SNMP response', log)
    # The reachable host of the same source was polled for every meter.
    assert set(SNMP_METERS) <= _names(deployment.received())
    assert deployment.polling.alive()


# -- libvirt -------------------------------------------------------------


def test_libvirt_instance_meters(deployment):
    cpu = _by_name(deployment, 'cpu')
    assert cpu and {m['resource_id'] for m in cpu} == {RUNNING}
    m = cpu[0]
    assert (m['counter_type'], m['counter_unit']) == ('cumulative', 'ns')
    assert m['counter_volume'] > 0
    assert (m['user_id'], m['project_id']) == ('user-0001', 'project-0001')
    md = m['resource_metadata']
    assert md['cpu_number'] == 2
    assert (md['display_name'], md['name'], md['instance_id']) == (
        'web-1', 'instance-00000001', RUNNING)
    assert md['flavor'] == {'name': 'm1.small', 'vcpus': 2, 'ram': 2048,
                            'disk': 20, 'ephemeral': 1, 'swap': 0}
    assert (md['instance_type'], md['vcpus'], md['memory_mb'],
            md['root_gb'], md['ephemeral_gb'], md['image_ref'],
            md['status']) == ('m1.small', 2, 2048, 20, 1, 'image-0001',
                              'active')
    [vcpus] = _by_name(deployment, 'vcpus')[:1]
    assert (vcpus['counter_volume'], vcpus['counter_unit'],
            vcpus['counter_type']) == (2, 'vcpu', 'gauge')
    # test driver balloon: available 2097152 KiB, unused 1048576 KiB,
    # rss 1048576 KiB -> usage (2097152 - 1048576) / 1024 = 1024.0 MB
    for name in ('memory.usage', 'memory.resident'):
        samples = _by_name(deployment, name)
        assert samples and {(s['counter_volume'], s['counter_unit'])
                            for s in samples} == {(1024.0, 'MB')}


def test_libvirt_disk_and_vnic_meters(deployment):
    reads = _by_name(deployment, 'disk.device.read.bytes')
    assert {m['resource_id'] for m in reads} == {f'{RUNNING}-vda'}
    assert reads[0]['resource_metadata']['disk_name'] == 'vda'
    assert (reads[0]['counter_unit'], reads[0]['counter_type']) == (
        'B', 'cumulative')
    [total] = _by_name(deployment, 'disk.read.bytes')[:1]
    assert total['resource_id'] == RUNNING
    assert total['resource_metadata']['device'] == ['vda']
    capacity = _by_name(deployment, 'disk.device.capacity')[0]
    assert capacity['counter_type'] == 'gauge'
    assert capacity['counter_volume'] > 0

    incoming = _by_name(deployment, 'network.incoming.bytes')
    by_vnic = {m['resource_metadata']['vnic_name']: m for m in incoming}
    assert set(by_vnic) == {'tap0001', 'tap0002'}
    filtered = by_vnic['tap0001']
    assert filtered['resource_id'] == \
        'nova-instance-instance-00000001-fa163e000001'
    assert filtered['resource_metadata']['mac'] == 'fa:16:3e:00:00:01'
    assert filtered['resource_metadata']['parameters'] == {'IP': '10.0.0.5'}
    assert by_vnic['tap0002']['resource_id'] == \
        f'instance-00000001-{RUNNING}-tap0002'
    assert {m['counter_unit'] for m in _by_name(
        deployment, 'network.outgoing.packets')} == {'packet'}


def test_libvirt_skips_stopped_and_non_nova_domains(deployment):
    resources = {m['resource_metadata'].get('instance_id')
                 for m in deployment.received().values()
                 if m['counter_name'] in ('cpu', 'vcpus', 'memory.usage')}
    assert resources == {RUNNING}


def test_unsupported_meter_blacklists_the_instance(deployment):
    log = deployment.polling.log()
    # Every instance given to the call is black-listed (in any order).
    assert len(re.findall(r'Prevent pollster cpu_util from polling '
                          r'\[[^\]]*instance ' + RUNNING, log)) == 1
    assert len(re.findall(r'Polling pollster cpu_util in the context',
                          log)) == 1
    assert 'Skip pollster cpu_util, no new resources found this cycle' \
        in log
    assert not _by_name(deployment, 'cpu_util')


# -- dynamic pollsters ---------------------------------------------------


def test_dynamic_openstack_pollster_with_pages_and_mapping(deployment, api):
    sizes = {m['resource_id']: m for m in _by_name(deployment,
                                                   'dynamic.volume.size')}
    assert set(sizes) == {'vol-1', 'vol-2', 'vol-3', 'vol-4'}
    vol1 = sizes['vol-1']
    # size 10 GB | value * 1024 -> 10240 MB
    assert (vol1['counter_volume'], vol1['counter_unit'],
            vol1['counter_type']) == (10240, 'MB', 'gauge')
    assert (vol1['user_id'], vol1['project_id']) == ('user-1', 'project-1')
    assert vol1['resource_metadata'] == {
        'backend': 'fake', 'display_name': 'data', 'status': 'available',
        'bootable': 'true'}
    status = {m['resource_id']: m['counter_volume']
              for m in _by_name(deployment, 'dynamic.volume.status')}
    # available -> 1, in-use -> 2, error -> default -1, deleting skipped
    assert status == {'vol-1': 1, 'vol-2': 2, 'vol-3': -1}
    calls = api.requests_to('/volume/v1/volumes')
    assert calls and calls[0]['headers']['x-test'] == 'dynamic'
    assert calls[0]['headers']['x-auth-token'] == api.token


def test_dynamic_multi_metric_xml_and_command_pollsters(deployment, api):
    read = _by_name(deployment, 'dynamic.usage.read')
    write = _by_name(deployment, 'dynamic.usage.write')
    assert {m['counter_volume'] for m in read} == {7}
    assert {m['counter_volume'] for m in write} == {3}
    assert read[0]['resource_id'] == 'api'
    assert read[0]['counter_type'] == 'cumulative'

    temps = {m['resource_id']: m for m in _by_name(
        deployment, 'dynamic.external.temperature')}
    assert {k: v['counter_volume'] for k, v in temps.items()} == {
        's-1': 21.5, 's-2': -3.0}
    assert temps['s-1']['resource_metadata'] == {'room': 'a'}
    sensor_calls = api.requests_to('/external/sensors')
    # HTTPBasicAuth('admin', 's3cret') -> base64 'admin:s3cret'
    assert sensor_calls[0]['headers']['authorization'] == \
        'Basic YWRtaW46czNjcmV0'

    answer = _by_name(deployment, 'dynamic.host.answer')
    assert {(m['resource_id'], m['counter_volume']) for m in answer} == {
        ('h-1', 42)}


def test_dynamic_errors_are_logged_and_do_not_stop_the_cycle(deployment):
    log = deployment.polling.log()
    assert 'Error [' in log and 'while loading dynamic pollster [bad name!]' \
        in log
    assert re.search(r'Dynamic pollster dynamic\.broken cannot read '
                     r'http://127\.0\.0\.1:\d+/volume: .*500', log)
    assert not _by_name(deployment, 'dynamic.broken')
    # Pollsters after the broken one in the same cycle still ran.
    assert {'dynamic.external.temperature', 'dynamic.host.answer',
            'dynamic.usage.read', 'dynamic.volume.size'} <= _names(
        deployment.received())
