"""libvirt inspector, local_instances discovery and compute pollsters
against libvirt's in-process test:///default driver."""

from __future__ import annotations

import logging
import uuid

import libvirt
import pytest

from telemeter.polling import plugin_base
from telemeter.polling.compute import (
    devices,
    discovery,
    instance,
    pollsters,
    virt_libvirt,
)
from telemeter.polling.compute import inspector as virt_inspector

NOVA_XML = """
<domain type='test'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.0">
      <nova:name>unit-vm</nova:name>
      <nova:flavor name="m1.unit">
        <nova:memory>1024</nova:memory><nova:disk>10</nova:disk>
        <nova:swap>0</nova:swap><nova:ephemeral>0</nova:ephemeral>
        <nova:vcpus>3</nova:vcpus>
      </nova:flavor>
      <nova:owner>
        <nova:user uuid="u-unit">u</nova:user>
        <nova:project uuid="p-unit">p</nova:project>
      </nova:owner>
      <nova:root type="image" uuid="img-unit"/>
    </nova:instance>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <vcpu>3</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/tmp/unit.img'/><target dev='vdb' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='fa:16:3e:aa:bb:cc'/><source bridge='br0'/>
      <target dev='tapunit'/>
    </interface>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


@pytest.fixture
def conf(conf):
    conf.set_override('libvirt_uri', 'test:///default')
    conf.set_override('host', 'unit-host')
    yield conf
    virt_inspector._SHARED.clear()


@pytest.fixture
def nova_domain():
    """A running Nova-like domain defined on test:///default."""
    conn = libvirt.open('test:///default')
    ident = str(uuid.uuid4())
    name = f'instance-{ident[:8]}'
    domain = conn.defineXML(NOVA_XML.format(name=name, uuid=ident))
    domain.create()
    yield domain
    if domain.isActive():
        domain.destroy()
    domain.undefine()
    conn.close()


def test_uri_from_type(conf):
    conf.set_override('libvirt_uri', '')
    expected = {'kvm': 'qemu:///system', 'qemu': 'qemu:///system',
                'uml': 'uml:///system', 'xen': 'xen:///', 'lxc': 'lxc:///'}
    for libvirt_type, uri in expected.items():
        conf.set_override('libvirt_type', libvirt_type)
        assert virt_libvirt.libvirt_uri(conf) == uri


def test_libvirt_metadata_discovery(conf, nova_domain):
    disc = discovery.InstanceDiscovery(conf)
    assert disc.group_id == 'unit-host'
    found = {i.id: i for i in disc.discover(None)}
    # test:///default's own 'test' domain has no Nova metadata
    assert nova_domain.UUIDString() in found
    assert '6695eb01-f6a4-8304-79aa-97f2502e193f' not in found
    vm = found[nova_domain.UUIDString()]
    assert (vm.name, vm.user_id, vm.tenant_id, vm.status) == (
        'unit-vm', 'u-unit', 'p-unit', 'active')
    assert vm.flavor == {'name': 'm1.unit', 'vcpus': 3, 'ram': 1024,
                         'disk': 10, 'ephemeral': 0, 'swap': 0}
    assert instance.instance_name(vm) == nova_domain.name()
    md = instance.instance_metadata(conf, vm)
    assert (md['display_name'], md['instance_host'], md['image_ref'],
            md['architecture'], md['vcpus'], md['memory_mb']) == (
        'unit-vm', 'unit-host', 'img-unit', 'x86_64', 3, 1024)
    assert str(vm) == f'instance {vm.id}' and vm == found[vm.id]


def test_inspector_reads_the_domain(conf, nova_domain):
    vm = discovery.InstanceDiscovery(conf)
    [server] = [i for i in vm.discover(None)
                if i.id == nova_domain.UUIDString()]
    insp = virt_libvirt.LibvirtInspector(conf)
    stats = insp.inspect_instance(server)
    assert stats.cpu_number == 3
    assert stats.cpu_time > 0
    balloon = nova_domain.memoryStats()
    # (available - unused) / 1024 and rss / 1024, in MiB
    assert stats.memory_usage == (balloon['available']
                                  - balloon['unused']) / 1024
    assert stats.memory_resident == balloon['rss'] / 1024
    assert stats.cpu_l3_cache_usage is None  # no perf events here
    [vnic] = list(insp.inspect_vnics(server))
    assert (vnic.name, vnic.mac, vnic.fref, vnic.parameters) == (
        'tapunit', 'fa:16:3e:aa:bb:cc', None, {})
    assert vnic.rx_bytes > 0
    [disk] = list(insp.inspect_disks(server))
    assert disk.device == 'vdb' and disk.read_requests > 0
    [info] = list(insp.inspect_disk_info(server))
    assert (info.capacity, info.allocation, info.physical) == tuple(
        nova_domain.blockInfo('vdb'))
    with pytest.raises(NotImplementedError):
        insp.inspect_disk_latency(server)

    nova_domain.destroy()
    with pytest.raises(virt_inspector.InstanceShutOffException):
        insp.inspect_instance(server)
    gone = instance.NovaLikeServer(id=str(uuid.uuid4()))
    with pytest.raises(virt_inspector.InstanceNotFoundException):
        insp.inspect_instance(gone)


class FlakyConnectionError(libvirt.libvirtError):
    def __init__(self):
        Exception.__init__(self, 'connection lost')

    def get_error_code(self):
        return libvirt.VIR_ERR_SYSTEM_ERROR

    def get_error_domain(self):
        return libvirt.VIR_FROM_REMOTE


def test_disconnection_is_retried_once_on_a_new_connection(conf,
                                                           monkeypatch):
    insp = virt_libvirt.LibvirtInspector(conf)
    first = insp.connection
    calls = []
    original = type(first).listAllDomains

    def flaky(conn, *args):
        calls.append(conn)
        if len(calls) == 1:
            raise FlakyConnectionError()
        return original(conn, *args)

    monkeypatch.setattr(type(first), 'listAllDomains', flaky)
    assert [d.name() for d in insp.list_domains()] >= ['test']
    assert len(calls) == 2 and calls[1] is not first
    assert virt_libvirt.is_disconnection(FlakyConnectionError())
    assert not virt_libvirt.is_disconnection(ValueError())


class FakeInspector(virt_inspector.Inspector):
    def __init__(self, conf, result=None, error=None):
        super().__init__(conf)
        self.result, self.error, self.calls = result, error, 0

    def inspect_instance(self, instance, duration=None):
        self.calls += 1
        if self.error:
            raise self.error
        return self.result

    def inspect_vnics(self, instance, duration=None):
        return iter([virt_inspector.InterfaceStats(
            name='tap1', mac='m', fref=None, parameters={}, rx_bytes=10,
            tx_bytes=20, rx_packets=1, tx_packets=2, rx_drop=0, tx_drop=0,
            rx_errors=0, tx_errors=0)])

    def inspect_disks(self, instance, duration=None):
        return iter([virt_inspector.DiskStats('vda', 1, 100, 2, 200, 0),
                     virt_inspector.DiskStats('vdb', 3, 300, 4, 400, 0)])


VM = instance.NovaLikeServer(**{
    'id': 'vm-1', 'name': 'one', 'flavor': {'name': 'f', 'vcpus': 1},
    'user_id': 'u', 'tenant_id': 't', 'status': 'ACTIVE',
    'metadata': {'metering.team': 'blue'},
    'OS-EXT-SRV-ATTR:instance_name': 'instance-1'})


def _pollster(conf, cls, fake):
    p = cls(conf)
    p._inspector = fake
    return p


def test_instance_pollsters_share_one_inspection_per_cycle(conf):
    stats = virt_inspector.InstanceStats(cpu_number=2, cpu_time=5000,
                                         memory_usage=None)
    fake = FakeInspector(conf, result=stats)
    cache: dict = {}
    [cpu] = _pollster(conf, pollsters.CPUPollster, fake).get_samples(
        None, cache, [VM])
    [vcpus] = _pollster(conf, pollsters.VCPUsPollster, fake).get_samples(
        None, cache, [VM])
    assert fake.calls == 1
    assert (cpu.name, cpu.type, cpu.unit, cpu.volume, cpu.resource_id,
            cpu.user_id, cpu.project_id) == (
        'cpu', 'cumulative', 'ns', 5000, 'vm-1', 'u', 't')
    assert cpu.resource_metadata['cpu_number'] == 2
    assert cpu.resource_metadata['user_metadata'] == {'team': 'blue'}
    assert cpu.monotonic_time == vcpus.monotonic_time is not None
    assert (vcpus.volume, vcpus.unit) == (2, 'vcpu')


def test_instance_pollster_outcomes(conf, caplog):
    usage = pollsters.MemoryUsagePollster
    with caplog.at_level(logging.DEBUG):
        none = FakeInspector(conf, result=virt_inspector.InstanceStats())
        assert list(_pollster(conf, usage, none).get_samples(
            None, {}, [VM])) == []
        assert 'memory.usage statistic in not available for instance vm-1' \
            in caplog.text
        for error in (virt_inspector.InstanceNotFoundException('gone'),
                      virt_inspector.InstanceShutOffException('off'),
                      RuntimeError('weird')):
            fake = FakeInspector(conf, error=error)
            assert list(_pollster(conf, usage, fake).get_samples(
                None, {}, [VM, VM])) == []
    assert 'Could not get memory.usage events for vm-1: weird' in caplog.text
    for error in (virt_inspector.NoDataException('never'),
                  NotImplementedError()):
        fake = FakeInspector(conf, error=error)
        with pytest.raises(plugin_base.PollsterPermanentError) as info:
            list(_pollster(conf, usage, fake).get_samples(None, {}, [VM]))
        assert info.value.fail_res_list == [VM]
    with pytest.raises(plugin_base.PollsterPermanentError):
        list(_pollster(conf, pollsters.CPUUtilPollster,
                       FakeInspector(conf)).get_samples(None, {}, [VM]))


def test_disk_and_vnic_pollsters(conf):
    fake = FakeInspector(conf)
    cache: dict = {}
    per_disk = _pollster(conf, devices.DISK_POLLSTERS[
        'disk.device.read.bytes'], fake).get_samples(None, cache, [VM])
    assert [(s.resource_id, s.volume, s.resource_metadata['disk_name'])
            for s in per_disk] == [('vm-1-vda', 100, 'vda'),
                                   ('vm-1-vdb', 300, 'vdb')]
    [total] = _pollster(conf, devices.DISK_POLLSTERS['disk.read.bytes'],
                        fake).get_samples(None, cache, [VM])
    # 100 + 300 bytes over both disks
    assert (total.resource_id, total.volume,
            total.resource_metadata['device']) == ('vm-1', 400,
                                                   ['vda', 'vdb'])
    [out] = _pollster(conf, devices.NETWORK_POLLSTERS[
        'network.outgoing.bytes'], fake).get_samples(None, cache, [VM])
    assert (out.resource_id, out.volume, out.unit) == (
        'instance-1-vm-1-tap1', 20, 'B')
    assert out.resource_metadata['vnic_name'] == 'tap1'
    with pytest.raises(plugin_base.PollsterPermanentError):
        list(_pollster(conf, devices.NETWORK_POLLSTERS[
            'network.outgoing.bytes.rate'], fake).get_samples(None, {}, [VM]))


def test_unknown_hypervisor_inspector_is_an_error(conf):
    conf.set_override('hypervisor_inspector', 'nosuch')
    with pytest.raises(Exception, match='nosuch'):
        virt_inspector.get_hypervisor_inspector(conf)
