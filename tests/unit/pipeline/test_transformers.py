"""The six transformers, rule by rule (transformers.md §2-§7).

Every numeric case states its arithmetic in a comment.
"""

import datetime
import logging
import re

import pytest
from oslo_utils import timeutils

from telemeter import sample
from telemeter.transformer import (
    accumulator,
    arithmetic,
    conversions,
)

T0 = datetime.datetime(2031, 1, 1, 12, 0, 0)


def _s(name='cpu', volume=0.0, seconds=0, type='cumulative', unit='ns',
       resource='r1', metadata=None, monotonic=None, user='u', project='p',
       timestamp=None):
    ts = timestamp or (T0 + datetime.timedelta(seconds=seconds)).isoformat()
    return sample.Sample(name, type, unit, volume, user, project, resource,
                         timestamp=ts, resource_metadata=metadata or {},
                         source='src', monotonic_time=monotonic)


# -- unit_conversion ---------------------------------------------------------

def test_unit_conversion_numeric_scale_and_renaming():
    t = conversions.ScalingTransformer(
        source={'unit': 'B'},
        target={'name': 'disk.kilobytes', 'unit': 'KB', 'type': 'gauge',
                'scale': 1 / 1024.0})
    original = _s('disk.bytes', 2048, unit='B', monotonic=5.0)
    out = t.handle_sample(original)
    # 2048 B * (1/1024) = 2.0 KB
    assert (out.name, out.unit, out.type, out.volume) == (
        'disk.kilobytes', 'KB', 'gauge', 2.0)
    assert (out.user_id, out.project_id, out.resource_id, out.timestamp,
            out.resource_metadata) == (
        'u', 'p', 'r1', original.timestamp, original.resource_metadata)
    # A new sample: fresh id, default source, no monotonic time.
    assert out.id != original.id
    assert out.source == sample.Sample.SOURCE_DEFAULT
    assert out.monotonic_time is None
    assert t.flush() == []


def test_unit_conversion_leaves_other_units_alone():
    t = conversions.ScalingTransformer(source={'unit': 'B'},
                                       target={'scale': 2})
    original = _s('x', 3, unit='KB')
    assert t.handle_sample(original) is original


def test_unit_conversion_string_scale_and_max():
    t = conversions.ScalingTransformer(
        target={'scale': 'volume * 8 + resource_metadata.extra', 'max': 50})
    # 3 * 8 + 2 = 26, under the max of 50
    assert t.handle_sample(_s(volume=3, metadata={'extra': 2})).volume == 26
    # 10 * 8 + 0 = 80, capped at 50
    assert t.handle_sample(_s(volume=10, metadata={'extra': 0})).volume == 50


def test_unit_conversion_without_scale_keeps_volume():
    t = conversions.ScalingTransformer(target={'scale': 0})
    assert t.handle_sample(_s(volume=7)).volume == 7


def test_map_from_map_to_with_fallbacks():
    t = conversions.ScalingTransformer(
        source={'map_from': {'name': r'disk\.(read|write)\.bytes',
                             'unit': r'(B)'}},
        target={'map_to': {'name': r'disk.\1.kbytes', 'unit': r'K\1'},
                'name': 'fallback'})
    out = t.handle_sample(_s('disk.read.bytes', 1, unit='B'))
    assert (out.name, out.unit) == ('disk.read.kbytes', 'KB')
    # No match: re.sub leaves the name as is (not the fallback).
    assert t.handle_sample(_s('memory', 1, unit='MB')).name == 'memory'
    bad = conversions.ScalingTransformer(
        source={'map_from': {'name': r'(a)'}},
        target={'map_to': {'name': r'\2'}, 'name': 'fallback'})
    # An invalid group reference falls back to target.name.
    assert bad.handle_sample(_s('a', 1)).name == 'fallback'
    empty = conversions.ScalingTransformer(
        source={'map_from': {'name': r'.*'}}, target={'map_to': {'name': ''}})
    # An empty result falls back to the unchanged name.
    assert empty.handle_sample(_s('kept', 1)).name == 'kept'



def test_mapping_stays_right_for_interleaved_and_many_names(monkeypatch):
    # Mapped values are remembered per (attribute, value); interleaving
    # names, units and a bound that is passed must not mix them up.
    monkeypatch.setattr(conversions, '_MAPPED_VALUES_MAX', 3)
    t = conversions.ScalingTransformer(
        source={'map_from': {'name': r'net\.(in|out)\.(\w+)',
                             'unit': r'(B|packet)'}},
        target={'map_to': {'name': r'net.\1.\2.rate', 'unit': r'\1/s'}})
    cases = [('net.in.bytes', 'B'), ('net.out.packets', 'packet'),
             ('net.in.bytes', 'packet'), ('other', 'B'), ('packet', 'packet')]
    cases += [(f'net.out.m{number}', 'B') for number in range(5)]
    for _round in range(2):
        for name, unit in cases:
            out = t.handle_sample(_s(name, 1, unit=unit))
            expected = (re.sub(r'net\.(in|out)\.(\w+)', r'net.\1.\2.rate',
                               name),
                        re.sub(r'(B|packet)', r'\1/s', unit))
            assert (out.name, out.unit) == expected
    assert len(t._mapped_values) <= 3


# -- rate_of_change ----------------------------------------------------------

CPU_UTIL = {'target': {'name': 'cpu_util', 'unit': '%', 'type': 'gauge',
                       'max': 100,
                       'scale': '100.0 / (10**9 * '
                                '(resource_metadata.cpu_number or 1))'}}


def test_cpu_util(caplog):
    t = conversions.RateOfChangeTransformer(**CPU_UTIL)
    meta = {'cpu_number': 2}
    with caplog.at_level(logging.WARNING):
        assert t.handle_sample(_s(volume=10e9, seconds=0,
                                  metadata=meta)) is None
    assert 'dropping sample with no predecessor' in caplog.text
    out = t.handle_sample(_s(volume=25e9, seconds=10, metadata=meta))
    # (25e9 - 10e9) ns / 10 s = 1.5e9 ns/s; * 100 / (1e9 * 2) = 75 %
    assert out.volume == pytest.approx(75.0)
    assert (out.name, out.unit, out.type) == ('cpu_util', '%', 'gauge')
    out = t.handle_sample(_s(volume=55e9, seconds=20, metadata={}))
    # (55e9 - 25e9) / 10 = 3e9 ns/s; * 100 / (1e9 * 1) = 300 % -> max 100
    assert out.volume == 100


def test_rate_counter_reset_and_gauge_decrease():
    t = conversions.RateOfChangeTransformer()
    t.handle_sample(_s('c', 50, 0))
    # cumulative 50 -> 20 is a reset: delta = 20; 20 / 10 s = 2.0
    assert t.handle_sample(_s('c', 20, 10)).volume == 2.0
    t.handle_sample(_s('g', 50, 0, type='gauge'))
    # gauge 50 -> 20: delta -30; -30 / 10 s = -3.0
    assert t.handle_sample(_s('g', 20, 10, type='gauge')).volume == -3.0


def test_rate_out_of_order_keeps_the_newer_sample(caplog):
    t = conversions.RateOfChangeTransformer()
    t.handle_sample(_s(volume=100, seconds=10))
    assert t.handle_sample(_s(volume=50, seconds=5)) is None
    assert 'dropping out of time order sample' in caplog.text
    # computed against the t=10 s sample: (130 - 100) / (20 - 10) = 3.0
    assert t.handle_sample(_s(volume=130, seconds=20)).volume == 3.0


def test_rate_output_ids_derive_from_the_source_and_survive_redelivery():
    t = conversions.RateOfChangeTransformer(target={'name': 'cpu_util'})
    first = _s(volume=100, seconds=0)
    second = _s(volume=130, seconds=10)
    t.handle_sample(first)
    out = t.handle_sample(second)
    # (130 - 100) / 10 s = 3.0, id derived from the source sample's
    assert out.volume == 3.0
    assert out.id == conversions.output_id(second, 'cpu_util')
    assert out.id != second.id
    # the same sample delivered again: same rate (not 0 / 0 s), same id
    again = t.handle_sample(second)
    assert (again.volume, again.id) == (3.0, out.id)
    # and the next one still rates against it: (160 - 130) / 10 = 3.0
    third = t.handle_sample(_s(volume=160, seconds=20))
    assert third.volume == 3.0 and third.id != out.id


def test_delta_output_id_derives_from_the_source():
    t = conversions.DeltaTransformer(target={'name': 'cpu.delta'})
    t.handle_sample(_s(volume=1, seconds=0))
    source = _s(volume=5, seconds=10)
    assert t.handle_sample(source).id == conversions.output_id(
        source, 'cpu.delta')


def test_rate_prefers_monotonic_time_and_zero_elapsed():
    t = conversions.RateOfChangeTransformer()
    t.handle_sample(_s(volume=0, seconds=0, monotonic=100.0))
    # timestamps say 10 s, monotonic clocks say 4 s: 20 / 4 = 5.0
    assert t.handle_sample(_s(volume=20, seconds=10,
                              monotonic=104.0)).volume == 5.0
    # same monotonic time: elapsed 0 -> rate 0.0
    assert t.handle_sample(_s(volume=30, seconds=11,
                              monotonic=104.0)).volume == 0.0


def test_rate_numeric_scale_multiplies_by_volume_too():
    t = conversions.RateOfChangeTransformer(target={'scale': 2})
    t.handle_sample(_s(volume=10, seconds=0))
    # rate (30 - 10) / 10 = 2.0; scaled value 30 * 2 = 60; 60 * 2.0 = 120
    assert t.handle_sample(_s(volume=30, seconds=10)).volume == 120.0


def test_rate_keeps_type_unless_target_sets_it_and_ignores_source_unit():
    t = conversions.RateOfChangeTransformer(source={'unit': 'other'})
    t.handle_sample(_s(volume=0, seconds=0, unit='B'))
    out = t.handle_sample(_s(volume=10, seconds=5, unit='B'))
    # 10 / 5 = 2.0; the source unit filter does not apply here
    assert (out.volume, out.type, out.unit) == (2.0, 'cumulative', 'B')


def test_rate_mixed_timezone_spellings():
    t = conversions.RateOfChangeTransformer()
    t.handle_sample(_s(volume=0, timestamp='2031-01-01T12:00:00Z'))
    # 13:00:10+01:00 is 12:00:10 UTC: 10 / 10 s = 1.0
    assert t.handle_sample(_s(
        volume=10, timestamp='2031-01-01T13:00:10+01:00')).volume == 1.0


def test_disk_rate_mapping_of_the_packaged_sink():
    t = conversions.RateOfChangeTransformer(
        source={'map_from': {
            'name': r'(disk\.device|disk)\.(read|write)\.(bytes|requests)',
            'unit': '(B|request)'}},
        target={'map_to': {'name': r'\1.\2.\3.rate', 'unit': r'\1/s'},
                'type': 'gauge'})
    t.handle_sample(_s('disk.device.write.requests', 100, 0,
                       unit='request'))
    out = t.handle_sample(_s('disk.device.write.requests', 160, 30,
                             unit='request'))
    # (160 - 100) / 30 s = 2.0 requests/s
    assert (out.name, out.unit, out.type, out.volume) == (
        'disk.device.write.requests.rate', 'request/s', 'gauge', 2.0)


# -- delta -------------------------------------------------------------------

def test_delta(caplog):
    t = conversions.DeltaTransformer(target={'name': 'cpu.delta'})
    assert t.handle_sample(_s(volume=5, seconds=0)) is None
    assert 'Dropping sample with no predecessor' in caplog.text
    out = t.handle_sample(_s(volume=12, seconds=10, unit='ns'))
    # 12 - 5 = 7, type delta, unit unchanged, no scaling
    assert (out.name, out.type, out.unit, out.volume) == (
        'cpu.delta', 'delta', 'ns', 7)
    # decrease without growth_only: 3 - 12 = -9 (no reset handling)
    assert t.handle_sample(_s(volume=3, seconds=20)).volume == -9


def test_delta_growth_only_and_out_of_order(caplog):
    t = conversions.DeltaTransformer(growth_only=True)
    t.handle_sample(_s(volume=10, seconds=10))
    assert t.handle_sample(_s(volume=20, seconds=5)) is None
    assert 'Dropping out of time order sample' in caplog.text
    assert t.handle_sample(_s(volume=4, seconds=20)) is None
    assert 'Negative delta detected, dropping value' in caplog.text
    # the t=20 sample (4) is now cached: 9 - 4 = 5
    assert t.handle_sample(_s(volume=9, seconds=30)).volume == 5


def test_delta_maps_name_from_source():
    t = conversions.DeltaTransformer(
        source={'map_from': {'name': r'(.*)\.bytes'}},
        target={'map_to': {'name': r'\1.delta'}})
    t.handle_sample(_s('net.bytes', 1))
    assert t.handle_sample(_s('net.bytes', 2, 1)).name == 'net.delta'


# -- accumulator -------------------------------------------------------------

def test_accumulator_releases_when_size_is_reached():
    t = accumulator.TransformerAccumulator(size=3)
    held = [_s(volume=i) for i in range(2)]
    assert [t.handle_sample(s) for s in held] == [None, None]
    assert t.flush() == []
    third = _s(volume=2)
    t.handle_sample(third)
    assert t.flush() == [*held, third]
    assert t.flush() == []


def test_accumulator_size_below_one_passes_through():
    t = accumulator.TransformerAccumulator(size=0)
    s = _s()
    assert t.handle_sample(s) is s
    assert t.flush() == []


# -- aggregator --------------------------------------------------------------

def test_aggregator_averages_gauges_sums_deltas_keeps_last_cumulative():
    t = conversions.AggregatorTransformer(size=6)
    for volume in (10, 20):
        t.handle_sample(_s('g', volume, type='gauge'))
    for volume in (1, 2):
        t.handle_sample(_s('d', volume, type='delta'))
    for volume in (100, 130):
        t.handle_sample(_s('c', volume, type='cumulative'))
    out = {s.name: s.volume for s in t.flush()}
    # gauge (10 + 20) / 2 = 15; delta 1 + 2 = 3; cumulative: latest 130
    assert out == {'g': 15, 'd': 3, 'c': 130}
    assert t.flush() == []


def test_aggregator_size_counts_all_samples_and_resets():
    t = conversions.AggregatorTransformer(size=3)
    t.handle_sample(_s('a', 1, type='delta'))
    t.handle_sample(_s('b', 1, type='delta'))
    assert t.flush() == []
    t.handle_sample(_s('a', 1, type='delta'))
    # 3 samples handled: a = 1 + 1 = 2, b = 1
    assert sorted((s.name, s.volume) for s in t.flush()) == [
        ('a', 2), ('b', 1)]
    t.handle_sample(_s('a', 5, type='delta'))
    assert t.flush() == []


def test_aggregator_groups_by_unmerged_ids():
    t = conversions.AggregatorTransformer(size=4, user_id='last')
    t.handle_sample(_s(volume=1, type='delta', project='p1', user='u1'))
    t.handle_sample(_s(volume=2, type='delta', project='p1', user='u2'))
    t.handle_sample(_s(volume=4, type='delta', project='p2', user='u3'))
    t.handle_sample(_s(volume=8, type='delta', project=None, user='u4'))
    out = sorted((s.project_id or '', s.volume, s.user_id)
                 for s in t.flush())
    # project split: p1 = 1 + 2 (user: last = u2), p2 = 4, None = 8
    assert out == [('', 8, 'u4'), ('p1', 3, 'u2'), ('p2', 4, 'u3')]
    assert t._group_key(_s(project=None)) == 'cpu-r1-<undefined>'


def test_aggregator_merge_policies(caplog):
    t = conversions.AggregatorTransformer(
        size=2, project_id='first', user_id='bogus',
        resource_metadata='drop', timestamp='last')
    assert 'user_id is unknown (bogus), using last' in caplog.text
    t.handle_sample(_s(volume=1, seconds=0, type='delta', project='p1',
                       user='u1', metadata={'a': 1}))
    t.handle_sample(_s(volume=1, seconds=5, type='delta', project='p2',
                       user='u2', metadata={'a': 2}))
    [out] = t.flush()
    assert (out.project_id, out.user_id, out.resource_metadata) == (
        'p1', 'u2', {})
    assert out.timestamp == (T0 + datetime.timedelta(seconds=5)).isoformat()


def test_aggregator_first_sample_is_converted_later_ones_scaled():
    t = conversions.AggregatorTransformer(
        size=2, target={'name': 'renamed', 'scale': 10, 'max': 15})
    t.handle_sample(_s('g', 2, type='gauge'))
    t.handle_sample(_s('g', 3, type='gauge'))
    [out] = t.flush()
    # first: min(2 * 10, 15) = 15; then + 3 * 10 = 45 (no max);
    # gauge average over its own 2 samples despite the rename: 45 / 2
    assert (out.name, out.volume) == ('renamed', 22.5)


def test_aggregator_retention_measured_from_sample_timestamps():
    now = timeutils.utcnow()
    t = conversions.AggregatorTransformer(size=None, retention_time=60)
    assert t.size is None
    recent = (now - datetime.timedelta(seconds=30)).isoformat()
    t.handle_sample(_s(volume=1, type='delta', timestamp=recent))
    assert t.flush() == []  # 30 s old < 60 s
    t2 = conversions.AggregatorTransformer(size=None, retention_time=60)
    old = (now - datetime.timedelta(seconds=90)).isoformat()
    t2.handle_sample(_s(volume=1, type='delta', timestamp=old))
    assert [s.volume for s in t2.flush()] == [1]  # 90 s old > 60 s


def test_aggregator_default_size_is_one_when_only_retention_given():
    t = conversions.AggregatorTransformer(retention_time=3600)
    assert (t.size, t.retention_time) == (1, 3600.0)
    t.handle_sample(_s(volume=1, type='delta'))
    assert len(t.flush()) == 1


# -- arithmetic --------------------------------------------------------------

@pytest.mark.parametrize('name, escaped', [
    ('disk.read.bytes', '_disk_read_bytes_ESC'), ('import', '_import_ESC'),
    ('myESC', '_myESC_ESC'), ('memory', 'memory'), ('cpu-x', 'cpu-x')])
def test_escape(name, escaped):
    assert arithmetic.escape(name) == escaped


def test_arithmetic_memory_percent():
    t = arithmetic.ArithmeticTransformer(target={
        'name': 'memory_util', 'unit': '%', 'type': 'gauge',
        'expr': '100 * $(memory.usage) / $(memory)'})
    assert t.required_meters == ['memory.usage', 'memory']
    assert t.reference_meter == 'memory.usage'
    t.handle_sample(_s('memory', 2048, 0, type='gauge', unit='MB'))
    assert t.flush() == []  # memory.usage still missing: stays cached
    t.handle_sample(_s('memory.usage', 512, 5, type='gauge', unit='MB',
                       metadata={'m': 1}))
    t.handle_sample(_s('unrelated', 1, 7))  # consumed, sets the timestamp
    [out] = t.flush()
    # 100 * 512 / 2048 = 25.0
    assert (out.name, out.unit, out.type, out.volume) == (
        'memory_util', '%', 'gauge', 25.0)
    assert out.resource_metadata == {'m': 1}
    assert out.timestamp == (T0 + datetime.timedelta(seconds=7)).isoformat()
    assert t.flush() == []  # the resource's cache entry is gone


def test_arithmetic_attribute_reference_and_defaults_from_reference():
    t = arithmetic.ArithmeticTransformer(target={
        'expr': '$(memory.usage) / $(memory).resource_metadata.flavor.ram'})
    t.handle_sample(_s('memory', 0, type='gauge', unit='MB',
                       metadata={'flavor': {'ram': 4096}}))
    t.handle_sample(_s('memory.usage', 1024, type='gauge', unit='MB'))
    [out] = t.flush()
    # 1024 / 4096 = 0.25; name/unit/type from memory.usage
    assert (out.name, out.unit, out.type, out.volume) == (
        'memory.usage', 'MB', 'gauge', 0.25)


def test_arithmetic_per_resource_and_errors(caplog):
    t = arithmetic.ArithmeticTransformer(target={'expr': '$(a) / $(b)'})
    t.handle_sample(_s('a', 1, resource='r1'))
    t.handle_sample(_s('b', 0, resource='r1'))
    t.handle_sample(_s('a', 6, resource='r2'))
    t.handle_sample(_s('b', 3, resource='r2'))
    out = t.flush()
    # r1: 1 / 0 fails and is dropped; r2: 6 / 3 = 2.0
    assert [(s.resource_id, s.volume) for s in out] == [('r2', 2.0)]
    assert 'Unable to evaluate expression $(a) / $(b)' in caplog.text
    assert t.cache == {}


def test_arithmetic_nan_and_dash_names_give_no_output(caplog):
    t = arithmetic.ArithmeticTransformer(target={'expr': '$(a) * 0.0'})
    t.handle_sample(_s('a', float('inf')))
    assert t.flush() == []  # inf * 0.0 is NaN
    dash = arithmetic.ArithmeticTransformer(target={'expr': '$(cpu-x) + 1'})
    dash.handle_sample(_s('cpu-x', 1))
    assert dash.flush() == []
    assert caplog.text.count('Unable to evaluate expression') == 2


def test_arithmetic_without_meter_reference_swallows_everything(caplog):
    t = arithmetic.ArithmeticTransformer(target={'expr': '1 + 1'})
    assert t.misconfigured
    assert ("Arithmetic transformer must use at least one meter in "
            "expression '1 + 1'") in caplog.text
    assert t.handle_sample(_s()) is None
    assert t.flush() == []
    assert arithmetic.ArithmeticTransformer().misconfigured


def test_every_transformer_groups_by_resource():
    for cls in (accumulator.TransformerAccumulator,
                conversions.ScalingTransformer,
                conversions.RateOfChangeTransformer,
                conversions.DeltaTransformer,
                conversions.AggregatorTransformer,
                arithmetic.ArithmeticTransformer):
        assert cls().grouping_keys == ['resource_id']
