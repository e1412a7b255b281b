"""Local node pollsters against the real psutil of this machine."""

from __future__ import annotations

import os
import time

import psutil
import pytest
from stevedore import extension

from telemeter.polling.discovery import localnode
from telemeter.polling.host import pollsters as host

METERS = {
    'host.cpu.time': ('cumulative', 'ns', int),
    'host.memory.used': ('gauge', 'B', int),
    'host.memory.total': ('gauge', 'B', int),
    'host.disk.read.bytes': ('cumulative', 'B', int),
    'host.disk.write.bytes': ('cumulative', 'B', int),
    'host.network.incoming.bytes': ('cumulative', 'B', int),
    'host.network.outgoing.bytes': ('cumulative', 'B', int),
    'host.load.1min': ('gauge', 'process', float),
    'host.load.5min': ('gauge', 'process', float),
    'host.load.15min': ('gauge', 'process', float),
}
CUMULATIVE = [m for m, (t, _, _) in METERS.items() if t == 'cumulative']


@pytest.fixture
def pollsters(conf):
    mgr = extension.ExtensionManager('telemeter.poll.compute',
                                     invoke_on_load=True,
                                     invoke_args=(conf,))
    found = {e.name: e.obj for e in mgr if e.name.startswith('host.')}
    assert sorted(found) == sorted(METERS)
    return found


def poll(pollster, cache=None, resources=('local_host',)):
    return list(pollster.get_samples(manager=None,
                                     cache={} if cache is None else cache,
                                     resources=list(resources)))


@pytest.mark.parametrize('name', sorted(METERS))
def test_sample_shape(conf, pollsters, name):
    conf.set_override('host', 'node-7')
    pollster = pollsters[name]
    assert pollster.default_discovery == 'local_node'
    [sample] = poll(pollster, resources=['local_host', 'other'])
    sample_type, unit, volume_type = METERS[name]
    assert sample.name == name
    assert sample.type == sample_type
    assert sample.unit == unit
    assert type(sample.volume) is volume_type
    assert sample.volume >= 0
    assert sample.resource_id == 'node-7'
    assert sample.user_id is None and sample.project_id is None
    assert sample.resource_metadata['host'] == 'node-7'
    assert isinstance(sample.monotonic_time, float)
    assert sample.timestamp


def test_metadata_and_values(pollsters):
    cache: dict = {}
    by_name = {n: poll(p, cache)[0] for n, p in pollsters.items()}
    cpus = psutil.cpu_count()
    assert by_name['host.cpu.time'].resource_metadata['cpu_number'] == cpus
    assert by_name['host.load.5min'].resource_metadata['cpu_number'] == cpus

    total = psutil.virtual_memory().total
    assert by_name['host.memory.total'].volume == total
    used = by_name['host.memory.used']
    assert 0 < used.volume <= total
    assert used.resource_metadata['total'] == total

    load = os.getloadavg()
    for i, name in enumerate(['host.load.1min', 'host.load.5min',
                              'host.load.15min']):
        assert by_name[name].volume == pytest.approx(load[i], abs=1.0)

    for name in ('host.network.incoming.bytes',
                 'host.network.outgoing.bytes'):
        interfaces = by_name[name].resource_metadata['interfaces']
        assert 'lo' not in interfaces
        assert set(interfaces) == set(psutil.net_io_counters(pernic=True)) \
            - {'lo'}

    devices = by_name['host.disk.read.bytes'].resource_metadata['devices']
    assert devices == \
        by_name['host.disk.write.bytes'].resource_metadata['devices']
    assert not any(d.startswith(('loop', 'zram', 'ram', 'dm-'))
                   for d in devices)
    if os.path.isdir('/sys/block/vda') or os.path.isdir('/sys/block/sda'):
        assert devices


def test_cpu_time_close_to_psutil(pollsters):
    times = psutil.cpu_times()
    busy = (times.user + times.nice + times.system + times.irq
            + times.softirq + times.steal)
    [sample] = poll(pollsters['host.cpu.time'])
    assert sample.volume == pytest.approx(busy * 1e9, rel=0.05)


def test_counters_are_monotonic(pollsters):
    first = {n: poll(pollsters[n])[0] for n in CUMULATIVE}
    # Produce some CPU, network-independent activity.
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        sum(range(1000))
    second = {n: poll(pollsters[n])[0] for n in CUMULATIVE}
    for name in CUMULATIVE:
        assert second[name].volume >= first[name].volume, name
        assert second[name].monotonic_time > first[name].monotonic_time
    assert second['host.cpu.time'].volume > first['host.cpu.time'].volume


def test_one_psutil_read_per_cycle(pollsters, monkeypatch):
    calls: dict[str, int] = {}

    def counting(name):
        real = getattr(psutil, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)
        return wrapper

    for name in ('virtual_memory', 'getloadavg', 'net_io_counters',
                 'disk_io_counters', 'cpu_times'):
        monkeypatch.setattr(host.psutil, name, counting(name))

    cache: dict = {}
    samples = [poll(p, cache)[0] for p in pollsters.values()]
    assert calls == {'virtual_memory': 1, 'getloadavg': 1,
                     'net_io_counters': 1, 'disk_io_counters': 1,
                     'cpu_times': 1}
    by_name = {s.name: s for s in samples}
    assert by_name['host.memory.used'].monotonic_time == \
        by_name['host.memory.total'].monotonic_time
    # A new cycle (new cache) reads again.
    poll(pollsters['host.memory.total'], {})
    assert calls['virtual_memory'] == 2


def test_physical_disks(tmp_path):
    devices = tmp_path / 'devices'
    for rel in ('virtual/block/loop0', 'virtual/block/zram0',
                'pci0000:00/0000:00:05.0/virtio2/block/vda',
                'pci0000:00/0000:00:1f.2/ata1/block/sda',
                'pci0000:00/cciss/block/cciss!c0d0'):
        (devices / rel).mkdir(parents=True)
    sys_block = tmp_path / 'block'
    sys_block.mkdir()
    for target in devices.rglob('block/*'):
        (sys_block / target.name).symlink_to(target)
    assert host.physical_disks(str(sys_block)) == ['cciss/c0d0', 'sda',
                                                   'vda']
    assert host.physical_disks(str(tmp_path / 'missing')) is None


def test_disk_totals_without_sys_block(monkeypatch):
    monkeypatch.setattr(host, 'physical_disks', lambda: None)
    totals = host._disk_totals()
    whole = psutil.disk_io_counters(perdisk=False)
    assert totals['devices'] == []
    assert totals['read_bytes'] == pytest.approx(whole.read_bytes, rel=0.05)
    assert totals['write_bytes'] == pytest.approx(whole.write_bytes,
                                                  rel=0.05)
    assert isinstance(totals['read_bytes'], int)


def test_local_node_discovery(conf):
    for namespace in ('telemeter.discover.compute',
                      'telemeter.discover.ipmi'):
        mgr = extension.ExtensionManager(namespace, invoke_on_load=True,
                                         invoke_args=(conf,))
        [local] = [e for e in mgr if e.name == 'local_node']
        assert isinstance(local.obj, localnode.LocalNodeDiscovery)
        assert local.obj.discover(None) == ['local_host']
        assert local.obj.discover(None, 'param') == ['local_host']
        assert local.obj.group_id == 'global'
        assert local.obj.KEYSTONE_REQUIRED_FOR_SERVICE is None
