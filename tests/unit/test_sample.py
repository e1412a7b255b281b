"""telemeter.sample.Sample and its helpers (interfaces.md §1)."""

import datetime
import uuid

import pytest
from oslo_config import cfg

from telemeter import sample

KEYS = {'name', 'type', 'unit', 'volume', 'user_id', 'project_id',
        'resource_id', 'timestamp', 'resource_metadata', 'source', 'id',
        'monotonic_time'}


def _sample(**kwargs):
    args = {'name': 'cpu', 'type': sample.TYPE_CUMULATIVE, 'unit': 'ns',
            'volume': 1, 'user_id': 'u', 'project_id': 'p',
            'resource_id': 'r'}
    args.update(kwargs)
    return sample.Sample(**args)


def test_defaults():
    s = _sample()
    assert s.resource_metadata == {}
    assert s.source == sample.Sample.SOURCE_DEFAULT == 'openstack'
    assert uuid.UUID(s.id).version == 1
    assert s.timestamp is None and s.monotonic_time is None
    assert _sample().id != s.id


def test_type_is_not_validated_and_constants():
    assert _sample(type='weird').type == 'weird'
    assert sample.TYPES == ('gauge', 'delta', 'cumulative')


def test_as_dict_has_exactly_the_twelve_keys_and_is_a_new_dict():
    s = _sample(resource_metadata={'a': 1})
    d = s.as_dict()
    assert set(d) == KEYS
    d['name'] = 'changed'
    assert s.name == 'cpu'
    assert d['resource_metadata'] is s.resource_metadata


def test_repr():
    s = _sample(timestamp='2031-01-01T00:00:00')
    assert repr(s) == ('<name: cpu, volume: 1, resource_id: r, '
                       'timestamp: 2031-01-01T00:00:00>')


def test_timestamps():
    s = _sample()
    s.set_timestamp('2031-05-06T07:08:09.101112')
    assert s.timestamp == '2031-05-06T07:08:09.101112'
    assert s.get_iso_timestamp() == datetime.datetime(
        2031, 5, 6, 7, 8, 9, 101112, tzinfo=datetime.UTC)
    s.set_timestamp('2031-05-06T09:08:09+02:00')
    assert s.get_iso_timestamp() == datetime.datetime(
        2031, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    s.set_timestamp(None)
    with pytest.raises(ValueError, match='has no timestamp'):
        s.get_iso_timestamp()


def test_setup_changes_default_source():
    conf = cfg.ConfigOpts()
    conf.register_opts(sample.OPTS)
    conf([], default_config_files=[])
    conf.set_override('sample_source', 'elsewhere')
    try:
        sample.setup(conf)
        assert _sample().source == 'elsewhere'
        assert _sample(source='given').source == 'given'
    finally:
        sample.Sample.SOURCE_DEFAULT = 'openstack'


def _notification(payload):
    return {'event_type': 'image.update', 'publisher_id': 'images.host1',
            'payload': payload,
            'metadata': {'timestamp': '2031-01-02 03:04:05.000006',
                         'message_id': 'x'}}


def test_from_notification_copies_payload_into_metadata():
    payload = {'size': 12, 'id': 'img'}
    s = sample.Sample.from_notification(
        'image.size', 'gauge', 12, 'B', 'u', 'p', 'img',
        _notification(payload))
    assert s.resource_metadata == {'size': 12, 'id': 'img',
                                   'event_type': 'image.update',
                                   'host': 'images.host1'}
    assert 'event_type' not in payload
    assert s.timestamp == '2031-01-02T03:04:05.000006+00:00'


def test_from_notification_non_dict_payload_and_explicit_values():
    s = sample.Sample.from_notification(
        'n', 'delta', 1, 'x', None, None, 'r', _notification(['a']),
        timestamp='2031-01-02T05:04:05+02:00', metadata={'given': True},
        source='src')
    assert s.resource_metadata == {'given': True}
    assert s.timestamp == '2031-01-02T05:04:05+02:00'
    assert s.source == 'src'
    s = sample.Sample.from_notification(
        'n', 'delta', 1, 'x', None, None, 'r', _notification('text'))
    assert s.resource_metadata == {'event_type': 'image.update',
                                   'host': 'images.host1'}


def test_add_reserved_user_metadata():
    conf = cfg.ConfigOpts()
    conf.register_opts(sample.OPTS)
    conf([], default_config_files=[])
    conf.set_override('reserved_metadata_keys', ['extra.key'])
    conf.set_override('reserved_metadata_length', 5)
    src = {'metering.a.b': 'abcdefgh', 'metering.n': 3, 'other': 'x',
           'extra.key': 'y', 'metering.clash': 1}
    dest = {'clash': 'kept'}
    result = sample.add_reserved_user_metadata(conf, src, dest)
    assert result is dest
    assert dest['user_metadata'] == {'a_b': 'abcde', 'n': 3,
                                     'extra_key': 'y'}
    assert sample.add_reserved_user_metadata(conf, {'x': 1}, {}) == {}


def test_from_metering_dict_round_trips_the_measurement():
    from telemeter.publisher import utils

    original = _sample(timestamp='2031-01-01T00:00:00',
                       resource_metadata={'k': 'v'}, source='src',
                       monotonic_time=4.5)
    wire = utils.meter_message_from_counter(original, 'secret')
    rebuilt = sample.from_metering_dict(wire, id=wire['message_id'])
    assert rebuilt.as_dict() == {**original.as_dict(), 'monotonic_time': None}
    fresh = sample.from_metering_dict(wire, monotonic_time=4.5)
    assert fresh.id != original.id and fresh.monotonic_time == 4.5


def test_new_ids_are_version_1_and_unique():
    ids = [sample.new_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {1}
    # A random node: the multicast bit says it is not a MAC address.
    assert uuid.UUID(ids[0]).node & (1 << 40)


def test_forked_workers_draw_their_own_node(monkeypatch):
    import os
    parent = uuid.UUID(sample.new_id()).node
    assert uuid.UUID(sample.new_id()).node == parent
    # What a forked worker sees: another process id.
    child_pid = os.getpid() + 1
    monkeypatch.setattr(sample.os, 'getpid', lambda: child_pid)
    assert uuid.UUID(sample.new_id()).node != parent


def test_derived_ids_are_the_uuid5_of_their_parts():
    namespace = uuid.UUID(bytes=sample.ID_NAMESPACE)
    assert sample.derived_id('m-1', 'handler', '0') == str(
        uuid.uuid5(namespace, 'm-1/handler/0'))
    assert sample.derived_id('m-1', 'handler', '0') != sample.derived_id(
        'm-1', 'handler', '1')
    assert uuid.UUID(sample.derived_id('é')).version == 5
