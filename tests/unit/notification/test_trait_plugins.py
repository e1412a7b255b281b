"""The split, bitfield, timedelta and map trait plugins."""

from __future__ import annotations

import logging

import pytest
from stevedore import extension

from telemeter.notification import trait_plugins


def test_entry_points_name_the_four_plugins():
    manager = extension.ExtensionManager('telemeter.event.trait_plugin')
    assert {ext.name: ext.plugin for ext in manager} == {
        'split': trait_plugins.SplitterTraitPlugin,
        'bitfield': trait_plugins.BitfieldTraitPlugin,
        'timedelta': trait_plugins.TimedeltaPlugin,
        'map': trait_plugins.MapTraitPlugin,
    }


def test_legacy_trait_value_is_honoured():
    class Legacy(trait_plugins.TraitPluginBase):
        def trait_value(self, match_list):
            return sum(v for _p, v in match_list)

    assert Legacy().trait_values([('a', 1), ('b', 2)]) == [3]
    assert not Legacy.support_return_all_values
    with pytest.raises(NotImplementedError):
        trait_plugins.TraitPluginBase().trait_values([])


class TestSplit:
    def test_defaults_take_the_first_dotted_segment(self, caplog):
        with caplog.at_level(logging.WARNING):
            plugin = trait_plugins.SplitterTraitPlugin()
        assert 'deprecated' in caplog.text
        assert plugin.support_return_all_values
        assert plugin.trait_values(
            [('publisher_id', 'compute.compute-01.example.org')]) == [
            'compute']

    @pytest.mark.parametrize('params, value, expected', [
        ({'segment': 1}, 'compute.compute-01.example.org', 'compute-01'),
        ({'segment': 1, 'max_split': 1}, 'compute.compute-01.example.org',
         'compute-01.example.org'),
        ({'segment': -1}, 'compute.compute-01.example.org', 'org'),
        ({'separator': '@', 'segment': 1}, 'cinder-vol-01@lvm#lvm',
         'lvm#lvm'),
        ({'segment': 5}, 'a.b', None),
        ({'segment': 0}, 42, '42'),
    ])
    def test_segments(self, params, value, expected):
        plugin = trait_plugins.SplitterTraitPlugin(**params)
        assert plugin.trait_values([('x', value)]) == [expected]

    def test_one_value_per_match_and_none_kept(self):
        plugin = trait_plugins.SplitterTraitPlugin(segment=1)
        assert plugin.trait_values([('a', 'x.y'), ('b', None),
                                    ('c', 'p.q')]) == ['y', None, 'q']
        assert plugin.trait_values([]) == []


class TestBitfield:
    FLAGS = [{'path': 'payload.enabled', 'bit': 0},
             {'path': 'payload.state', 'bit': 1, 'value': 'active'},
             {'path': 'payload.state', 'bit': 2, 'value': 'error'},
             {'path': 'payload.locked', 'bit': 3, 'value': True}]

    def test_flags_set_bits(self):
        plugin = trait_plugins.BitfieldTraitPlugin(initial_bitfield=16,
                                                   flags=self.FLAGS)
        # 16 | 2**0 (enabled present) | 2**1 (state == active) = 19;
        # locked is False, not True, so bit 3 stays clear.
        assert plugin.trait_values([('payload.enabled', 'yes'),
                                    ('payload.state', 'active'),
                                    ('payload.locked', False)]) == [19]

    def test_none_matches_do_not_count_and_no_match_keeps_initial(self):
        plugin = trait_plugins.BitfieldTraitPlugin(initial_bitfield=4,
                                                   flags=self.FLAGS)
        assert plugin.trait_values([('payload.enabled', None)]) == [4]
        assert plugin.trait_values([]) == [4]
        # error sets bit 2, which is already set in 4: stays 4.
        assert plugin.trait_values([('payload.state', 'error')]) == [4]
        assert plugin.trait_values([('payload.locked', True)]) == [12]

    def test_flags_need_path_and_bit(self):
        with pytest.raises(ValueError, match='needs a path and a bit'):
            trait_plugins.BitfieldTraitPlugin(flags=[{'path': 'x'}])
        assert not trait_plugins.BitfieldTraitPlugin.support_return_all_values


class TestTimedelta:
    def test_seconds_between_two_timestamps(self):
        plugin = trait_plugins.TimedeltaPlugin()
        # 09:31:55.5 - 09:31:42 = 13.5 s, whatever their formats.
        assert plugin.trait_values([
            ('payload.created_at', '2017-09-14 09:31:42+00:00'),
            ('payload.launched_at', '2017-09-14T09:31:55.500000')]) == [13.5]

    def test_order_does_not_matter_and_offsets_are_applied(self):
        plugin = trait_plugins.TimedeltaPlugin()
        # 10:00+02:00 is 08:00 UTC; 08:00:30 UTC - 08:00 = 30 s.
        assert plugin.trait_values([
            ('a', '2017-09-14T08:00:30Z'),
            ('b', '2017-09-14T10:00:00+02:00')]) == [30.0]

    @pytest.mark.parametrize('matches', [
        [], [('a', '2017-09-14T08:00:30Z')],
        [('a', '2017-09-14T08:00:30Z')] * 3,
    ])
    def test_needs_exactly_two(self, matches, caplog):
        assert trait_plugins.TimedeltaPlugin().trait_values(matches) == [
            None]
        assert 'two timestamp fields' in caplog.text

    def test_unparsable_dates_give_none(self, caplog):
        assert trait_plugins.TimedeltaPlugin().trait_values(
            [('payload.launched_at', ''),
             ('payload.created_at', '2017-09-14T08:00:30Z')]) == [None]
        assert 'Failed to parse date' in caplog.text


class TestMap:
    def test_values_are_mapped_and_unknown_ones_get_the_default(
            self, caplog):
        plugin = trait_plugins.MapTraitPlugin(
            values={'active': 1, 'error': 2}, default=-1)
        assert plugin.trait_values([('s', 'active'), ('s', 'error'),
                                    ('s', 'paused')]) == [1, 2, -1]
        assert 'no mapping' in caplog.text

    def test_case_sensitive_by_default(self):
        plugin = trait_plugins.MapTraitPlugin(values={'ACTIVE': 'up'})
        assert plugin.trait_values([('s', 'active')]) == [None]

    def test_case_insensitive_folds_keys_and_values(self):
        plugin = trait_plugins.MapTraitPlugin(
            values={'ACTIVE': 'Up', 'Error': 'DOWN'}, case_sensitive=False)
        assert plugin.trait_values([('s', 'active'), ('s', 'ERROR')]) == [
            'up', 'down']

    def test_unhashable_values_get_the_default(self):
        plugin = trait_plugins.MapTraitPlugin(values={'a': 1}, default=0)
        assert plugin.trait_values([('s', ['a'])]) == [0]

    @pytest.mark.parametrize('values', [None, ['a'], 'a'])
    def test_values_mapping_is_required(self, values):
        with pytest.raises(ValueError, match='"values" mapping'):
            trait_plugins.MapTraitPlugin(values=values)
