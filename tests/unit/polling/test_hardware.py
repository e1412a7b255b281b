"""SNMP hardware pollsters: definitions, resource URLs, conversions, the
inspector's reads and post operations (pysnmp requests replaced by canned
pysnmp values), and the samples."""

from __future__ import annotations

import logging

import pytest
from pysnmp.hlapi.v3arch import asyncio as snmp
from pysnmp.proto import rfc1902, rfc1905

from telemeter.polling.hardware import inspector, pollsters
from telemeter.polling.hardware import snmp as snmp_mod

# The spec's table: name -> (unit, type, matching, oid)
SPEC = {
    'hardware.cpu.load.1min': ('process', 'gauge', 'type_exact',
                               '1.3.6.1.4.1.2021.10.1.3.1'),
    'hardware.cpu.load.5min': ('process', 'gauge', 'type_exact',
                               '1.3.6.1.4.1.2021.10.1.3.2'),
    'hardware.cpu.load.15min': ('process', 'gauge', 'type_exact',
                                '1.3.6.1.4.1.2021.10.1.3.3'),
    'hardware.cpu.util': ('%', 'gauge', 'type_exact',
                          '1.3.6.1.4.1.2021.11.9.0'),
    'hardware.disk.size.total': ('KB', 'gauge', 'type_prefix',
                                 '1.3.6.1.4.1.2021.9.1.6'),
    'hardware.disk.size.used': ('KB', 'gauge', 'type_prefix',
                                '1.3.6.1.4.1.2021.9.1.8'),
    'hardware.memory.total': ('KB', 'gauge', 'type_exact',
                              '1.3.6.1.4.1.2021.4.5.0'),
    'hardware.memory.used': ('KB', 'gauge', 'type_exact',
                             '1.3.6.1.4.1.2021.4.6.0'),
    'hardware.memory.swap.total': ('KB', 'gauge', 'type_exact',
                                   '1.3.6.1.4.1.2021.4.3.0'),
    'hardware.memory.swap.avail': ('KB', 'gauge', 'type_exact',
                                   '1.3.6.1.4.1.2021.4.4.0'),
    'hardware.memory.buffer': ('KB', 'gauge', 'type_exact',
                               '1.3.6.1.4.1.2021.4.14.0'),
    'hardware.memory.cached': ('KB', 'gauge', 'type_exact',
                               '1.3.6.1.4.1.2021.4.15.0'),
    'hardware.network.incoming.bytes': ('B', 'cumulative', 'type_prefix',
                                        '1.3.6.1.2.1.2.2.1.10'),
    'hardware.network.outgoing.bytes': ('B', 'cumulative', 'type_prefix',
                                        '1.3.6.1.2.1.2.2.1.16'),
    'hardware.network.outgoing.errors': ('packet', 'cumulative',
                                         'type_prefix',
                                         '1.3.6.1.2.1.2.2.1.20'),
    'hardware.network.ip.outgoing.datagrams': ('datagrams', 'cumulative',
                                               'type_exact',
                                               '1.3.6.1.2.1.4.10.0'),
    'hardware.network.ip.incoming.datagrams': ('datagrams', 'cumulative',
                                               'type_exact',
                                               '1.3.6.1.2.1.4.3.0'),
    'hardware.system_stats.cpu.idle': ('%', 'gauge', 'type_exact',
                                       '1.3.6.1.4.1.2021.11.11.0'),
    'hardware.system_stats.io.outgoing.blocks': ('blocks', 'cumulative',
                                                 'type_exact',
                                                 '1.3.6.1.4.1.2021.11.57.0'),
    'hardware.system_stats.io.incoming.blocks': ('blocks', 'cumulative',
                                                 'type_exact',
                                                 '1.3.6.1.4.1.2021.11.58.0'),
}

URL = 'snmp://ro@10.0.0.9:1161'


def test_packaged_definitions_match_the_spec(conf):
    built = dict(pollsters.GenericHardwareDeclarativePollster
                 .build_pollsters(conf))
    assert set(built) == set(SPEC)
    for name, (unit, type_, matching, oid) in SPEC.items():
        d = built[name].definition
        assert (d['unit'], d['type'], d['snmp_inspector']['matching_type'],
                d['snmp_inspector']['oid']) == (unit, type_, matching, oid)
        assert built[name].default_discovery == 'tripleo_overcloud_nodes'


def test_invalid_definitions_are_logged_and_skipped(conf, tmp_path, caplog):
    path = tmp_path / 'snmp.yaml'
    path.write_text("""
metric:
  - {name: ok.meter, unit: B, type: gauge, colour: red,
     snmp_inspector: {matching_type: type_exact, oid: 1.2.3, type: int}}
  - {unit: B, type: gauge, snmp_inspector: {}}
  - {name: bad.type, unit: B, type: rate, snmp_inspector: {}}
  - {name: no.inspector, unit: B, type: gauge}
  - {name: bad.match, unit: B, type: gauge,
     snmp_inspector: {matching_type: fuzzy, oid: 1.2}}
  - {name: bad.conv, unit: B, type: gauge,
     snmp_inspector: {matching_type: type_exact, oid: 1.2,
                      type: "__import__('os')"}}
""")
    conf.set_override('meter_definitions_file', str(path), group='hardware')
    with caplog.at_level(logging.WARNING):
        built = pollsters.GenericHardwareDeclarativePollster.build_pollsters(
            conf)
    assert [name for name, _ in built] == ['ok.meter']
    text = caplog.text
    assert 'Ignore unrecognized field colour' in text
    assert 'Error loading meter definition: Missing field name' in text
    assert 'Unrecognized type value rate' in text
    assert 'Missing field <scheme>_inspector' in text
    assert 'matching_type' in text and 'fuzzy' in text
    assert 'bad.conv' in text


def test_definitions_file_lookup(conf, tmp_path, monkeypatch):
    assert pollsters.definitions_path(conf) == \
        pollsters.PACKAGED_DEFINITIONS
    found = tmp_path / 'found.yaml'
    found.write_text('metric: []')
    conf.set_override('meter_definitions_file', 'found.yaml',
                      group='hardware')
    monkeypatch.setattr(conf, 'find_file', lambda name: str(found))
    assert pollsters.definitions_path(conf) == found
    conf.set_override('meter_definitions_file', str(found),
                      group='hardware')
    assert pollsters.definitions_path(conf) == found
    found.write_text('[1, 2]')
    with pytest.raises(pollsters.MeterDefinitionException,
                       match='metric:'):
        pollsters.load_definitions(conf)


def test_resources():
    r = inspector.HardwareResource(URL)
    assert (r.scheme, r.hostname, r.resource_id, r.extra) == (
        'snmp', '10.0.0.9', '10.0.0.9', {})
    d = inspector.HardwareResource({'resource_id': 'node-1',
                                    'resource_url': URL, 'mac_addr': 'm'})
    assert (d.url, d.resource_id, d.extra) == (
        URL, 'node-1', {'resource_id': 'node-1', 'mac_addr': 'm'})
    with pytest.raises(ValueError, match='resource_url'):
        inspector.HardwareResource({'resource_id': 'x'})
    with pytest.raises(ValueError, match='is not a URL'):
        inspector.HardwareResource('just-a-host')


def test_authentication_from_the_url():
    v2 = snmp_mod.SNMPInspector._auth(inspector.HardwareResource(URL))
    assert isinstance(v2, snmp.CommunityData)
    assert v2.communityName == 'ro'
    assert v2.message_processing_model == 1  # v2c
    public = snmp_mod.SNMPInspector._auth(
        inspector.HardwareResource('snmp://10.0.0.9'))
    assert public.communityName == 'public'
    v3 = snmp_mod.SNMPInspector._auth(inspector.HardwareResource(
        'snmp://admin:authpass@h?auth_proto=sha&priv_proto=aes128'
        '&priv_password=privpass'))
    assert isinstance(v3, snmp.UsmUserData)
    assert (v3.userName, v3.authentication_key, v3.privacy_key) == (
        'admin', 'authpass', 'privpass')
    assert v3.authentication_protocol == snmp.USM_AUTH_HMAC96_SHA
    assert v3.privacy_protocol == snmp.USM_PRIV_CFB128_AES
    assert v3.security_level == 'authPriv'
    md5 = snmp_mod.SNMPInspector._auth(inspector.HardwareResource(
        'snmp://u:p@h?auth_proto=md5'))
    assert md5.authentication_protocol == snmp.USM_AUTH_HMAC96_MD5
    assert md5.security_level == 'authNoPriv'
    with pytest.raises(snmp_mod.SNMPException, match='auth_proto'):
        snmp_mod.SNMPInspector._auth(inspector.HardwareResource(
            'snmp://u:p@h?auth_proto=sha512'))


@pytest.mark.parametrize('spec,raw,expected', [
    ('int', rfc1902.Counter32(7), 7),
    ('float(str(x))', rfc1902.OctetString(b'0.34'), 0.34),
    ('lambda x: float(str(x))', rfc1902.OctetString(b'1.5'), 1.5),
    ('str', rfc1902.OctetString(b'/dev/vda'), '/dev/vda'),
    ('int(x) / 8', rfc1902.Gauge32(10000000), 1250000.0),  # 10 Mbit/s
    ('mac', rfc1902.OctetString(b'\x02\xfc\x00\x00\x00\x01'),
     '02fc00000001'),
    ('mac', rfc1902.OctetString(b''), ''),
])
def test_converters(spec, raw, expected):
    assert snmp_mod.make_converter(spec)(raw) == expected


def test_bad_converters():
    with pytest.raises(ValueError, match='lambda x'):
        snmp_mod.make_converter('lambda y: y')
    with pytest.raises(ValueError, match='invalid'):
        snmp_mod.make_converter('int(')
    assert snmp_mod.native(rfc1905.NoSuchInstance()) is None
    assert snmp_mod.native(rfc1902.IpAddress('10.1.2.3')) == '10.1.2.3'


class CannedInspector(snmp_mod.SNMPInspector):
    """The SNMP inspector over canned agent data instead of the network."""

    def __init__(self, conf, data, fail=None):
        super().__init__(conf)
        self.data = data
        self.fail = fail
        self.gets: list[list[str]] = []
        self.walks: list[str] = []

    def _get(self, host, oids):
        if self.fail:
            raise self.fail
        self.gets.append(list(oids))
        return {o: self.data.get(o, rfc1905.NoSuchObject()) for o in oids}

    def _walk(self, host, prefix):
        if self.fail:
            raise self.fail
        self.walks.append(prefix)
        return {o: v for o, v in self.data.items()
                if o.startswith(prefix + '.')}


AGENT = {
    '1.3.6.1.4.1.2021.4.5.0': rfc1902.Integer(16000000),   # memTotalReal
    '1.3.6.1.4.1.2021.4.6.0': rfc1902.Integer(12000000),   # memAvailReal
    # ifTable rows 1 (lo) and 2 (eth0)
    '1.3.6.1.2.1.2.2.1.2.1': rfc1902.OctetString(b'lo'),
    '1.3.6.1.2.1.2.2.1.2.2': rfc1902.OctetString(b'eth0'),
    '1.3.6.1.2.1.2.2.1.5.1': rfc1902.Gauge32(10000000),
    '1.3.6.1.2.1.2.2.1.5.2': rfc1902.Gauge32(1000000000),
    '1.3.6.1.2.1.2.2.1.6.1': rfc1902.OctetString(b''),
    '1.3.6.1.2.1.2.2.1.6.2': rfc1902.OctetString(b'\xfa\x16\x3e\x00\x00\x01'),
    '1.3.6.1.2.1.2.2.1.10.1': rfc1902.Counter32(500),
    '1.3.6.1.2.1.2.2.1.10.2': rfc1902.Counter32(900),
    # ipAdEntIfIndex: 127.0.0.1 -> 1, 192.0.2.5 -> 2
    '1.3.6.1.2.1.4.20.1.2.127.0.0.1': rfc1902.Integer(1),
    '1.3.6.1.2.1.4.20.1.2.192.0.2.5': rfc1902.Integer(2),
    # dskTable row 1
    '1.3.6.1.4.1.2021.9.1.2.1': rfc1902.OctetString(b'/'),
    '1.3.6.1.4.1.2021.9.1.3.1': rfc1902.OctetString(b'/dev/vda1'),
    '1.3.6.1.4.1.2021.9.1.6.1': rfc1902.Integer(20000),
    '1.3.6.1.4.1.2021.9.1.2.2': rfc1902.OctetString(b'/srv'),
    '1.3.6.1.4.1.2021.9.1.3.2': rfc1902.OctetString(b''),
    '1.3.6.1.4.1.2021.9.1.6.2': rfc1902.Integer(500),
}


def _built(conf):
    return dict(pollsters.GenericHardwareDeclarativePollster
                .build_pollsters(conf))


def _poll(conf, canned, names, resources, cache=None):
    built = _built(conf)
    cache = {} if cache is None else cache
    out = {}
    for name in names:
        pollster = built[name]
        pollster._inspectors['snmp'] = canned
        out[name] = list(pollster.get_samples(None, cache, resources))
    return out


def test_memory_used_is_total_minus_available(conf):
    canned = CannedInspector(conf, AGENT)
    out = _poll(conf, canned, ['hardware.memory.total',
                               'hardware.memory.used'], [URL])
    # used = memTotalReal - memAvailReal = 16000000 - 12000000 = 4000000
    assert [s.volume for s in out['hardware.memory.used']] == [4000000]
    [total] = out['hardware.memory.total']
    assert (total.volume, total.unit, total.type, total.source,
            total.resource_id, total.user_id, total.project_id,
            total.resource_metadata) == (
        16000000, 'KB', 'gauge', 'hardware', '10.0.0.9', None, None,
        {'resource_url': URL})
    # One cycle cache: memTotalReal was fetched once for both meters.
    assert sum(o.count('1.3.6.1.4.1.2021.4.5.0') for o in canned.gets) == 1


def test_memory_used_without_total_is_no_sample(conf, caplog):
    data = {k: v for k, v in AGENT.items() if k != '1.3.6.1.4.1.2021.4.5.0'}
    with caplog.at_level(logging.WARNING):
        out = _poll(conf, CannedInspector(conf, data),
                    ['hardware.memory.used'], [URL])
    assert out['hardware.memory.used'] == []
    assert 'hardware.memory.used: no value from host 10.0.0.9' \
        in caplog.text


def test_interface_rows_with_ip_and_resource_ids(conf):
    resource = {'resource_id': 'node-1', 'resource_url': URL,
                'mac_addr': 'aa:bb'}
    out = _poll(conf, CannedInspector(conf, AGENT),
                ['hardware.network.incoming.bytes'], [resource])
    samples = {s.resource_id: s for s in out[
        'hardware.network.incoming.bytes']}
    assert set(samples) == {'node-1.lo', 'node-1.eth0'}
    eth0 = samples['node-1.eth0']
    assert eth0.volume == 900
    # speed 1000000000 bit/s / 8 = 125000000.0 B/s
    assert eth0.resource_metadata == {
        'name': 'eth0', 'speed': 125000000.0, 'mac': 'fa163e000001',
        'ip': '192.0.2.5', 'resource_url': URL, 'mac_addr': 'aa:bb'}
    assert samples['node-1.lo'].resource_metadata['ip'] == '127.0.0.1'


def test_disk_rows_and_device_resource_ids(conf):
    out = _poll(conf, CannedInspector(conf, AGENT),
                ['hardware.disk.size.total'], [URL])
    assert sorted((s.resource_id, s.volume, s.resource_metadata['path'])
                  for s in out['hardware.disk.size.total']) == [
        ('10.0.0.9', 500, '/srv'), ('10.0.0.9./dev/vda1', 20000, '/')]


def test_errors_per_host_are_logged_and_other_hosts_polled(conf, caplog):
    bad = CannedInspector(conf, AGENT, fail=snmp_mod.SNMPException(
        'No SNMP response received before timeout'))
    good = CannedInspector(conf, AGENT)
    pollster = _built(conf)['hardware.memory.total']

    class ByHost:
        def prepare_params(self, param):
            return good.prepare_params(param)

        def inspect_generic(self, host, cache, extra, param):
            target = bad if host.hostname == 'dead' else good
            return target.inspect_generic(host, cache, extra, param)

    pollster._inspectors['snmp'] = ByHost()
    with caplog.at_level(logging.WARNING):
        samples = list(pollster.get_samples(
            None, {}, ['snmp://dead', URL, 'nope://x', 'not a url']))
    assert [s.resource_id for s in samples] == ['10.0.0.9']
    assert ('WARNING' in caplog.text and 'inspector call failed for '
            'hardware.memory.total host dead: No SNMP response' in
            caplog.text)
    assert 'host x:' in caplog.text  # unknown scheme: no inspector
    assert 'host not a url:' in caplog.text


def test_timeout_is_remembered_for_the_cycle(conf):
    canned = CannedInspector(conf, AGENT, fail=snmp_mod.SNMPException(
        'No SNMP response received before timeout'))
    calls = []
    original = canned._get

    def counting(host, oids):
        calls.append(oids)
        return original(host, oids)

    canned._get = counting
    cache: dict = {}
    _poll(conf, canned, ['hardware.memory.total', 'hardware.memory.used',
                         'hardware.memory.swap.total'], [URL], cache)
    assert len(calls) == 1
    # a new cycle asks again
    _poll(conf, canned, ['hardware.memory.total'], [URL], {})
    assert len(calls) == 2
