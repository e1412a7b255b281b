"""``get_meter_statistics`` cases worked by hand, for every backend.

The data set (meter ``cpu``, unit ``ns``; BASE = 2024-05-01 12:00:00):

======  ========  ====  =======  =======  ===========  ======
sample  resource  user  project  time     volume       type
======  ========  ====  =======  =======  ===========  ======
s1      r1        u1    p1       12:00    1            m1.tiny
s2      r1        u1    p1       12:10    3            m1.tiny
s3      r2        u2    p1       12:20    5            m1.small
s7      r4        u2    p2       12:30    13           (none)
s4      r2        u2    p1       13:00    7            m1.small
s5      r3        u1    p2       13:10    9            m1.tiny
s6      r3        u1    p2       14:30    11           m1.tiny
======  ========  ====  =======  =======  ===========  ======

plus a ``mem`` sample (volume 1000) that no ``cpu`` statistic may count.
Over all seven: count 7, sum 1+3+5+13+7+9+11 = 49, avg 49/7 = 7, min 1,
max 13, population stddev sqrt(((-6)²+(-4)²+(-2)²+0²+2²+4²+6²)/7) =
sqrt(112/7) = 4, first 12:00, last 14:30, duration 9000 s.
"""

from __future__ import annotations

import datetime
import math

import pytest

import telemeter
from telemeter import storage
from tests.unit.storage.driver_suite import BASE, StorageFixtures, make_sample


def at(hour: int, minute: int = 0) -> datetime.datetime:
    """2024-05-01 hour:minute."""
    return BASE.replace(hour=hour, minute=minute)


SAMPLES = [
    # name, resource, user, project, time, volume, instance_type
    ('s1', 'r1', 'u1', 'p1', at(12, 0), 1, 'm1.tiny'),
    ('s2', 'r1', 'u1', 'p1', at(12, 10), 3, 'm1.tiny'),
    ('s3', 'r2', 'u2', 'p1', at(12, 20), 5, 'm1.small'),
    ('s7', 'r4', 'u2', 'p2', at(12, 30), 13, None),
    ('s4', 'r2', 'u2', 'p1', at(13, 0), 7, 'm1.small'),
    ('s5', 'r3', 'u1', 'p2', at(13, 10), 9, 'm1.tiny'),
    ('s6', 'r3', 'u1', 'p2', at(14, 30), 11, 'm1.tiny'),
]


def summary(stat) -> tuple:
    """(period_start, count, sum, min, max, avg) of one Statistics."""
    return (stat.period_start, stat.count, stat.sum, stat.min, stat.max,
            stat.avg)


class StatisticsTests(StorageFixtures):
    """get_meter_statistics semantics (storage.md §3)."""

    @pytest.fixture
    def stats_conn(self, conn):
        batch = []
        for name, resource, user, project, when, volume, itype in SAMPLES:
            metadata = {'display_name': name}
            if itype:
                metadata['instance_type'] = itype
            batch.append(make_sample('cpu', volume, resource_id=resource,
                                     user_id=user, project_id=project,
                                     timestamp=when, metadata=metadata,
                                     message_id=name))
        batch.append(make_sample('mem', 1000, resource_id='r1',
                                 user_id='u1', project_id='p1',
                                 timestamp=at(12, 5), unit='MB',
                                 message_id='mem'))
        conn.record_metering_data_batch(batch)
        return conn

    @staticmethod
    def stats(conn, period=None, groupby=None, aggregate=None, **filter_):
        return list(conn.get_meter_statistics(
            storage.SampleFilter(meter=filter_.pop('meter', 'cpu'),
                                 **filter_),
            period=period, groupby=groupby, aggregate=aggregate))

    # -- no period -----------------------------------------------------

    def test_whole_range_without_period(self, stats_conn):
        [stat] = self.stats(stats_conn)
        assert stat.unit == 'ns'
        assert (stat.count, stat.sum, stat.min, stat.max, stat.avg) == (
            7, 49.0, 1.0, 13.0, 7.0)
        assert isinstance(stat.count, int)
        assert stat.period == 0
        assert (stat.period_start, stat.period_end) == (at(12), at(14, 30))
        assert (stat.duration_start, stat.duration_end) == (at(12),
                                                            at(14, 30))
        assert stat.duration == 9000.0  # 2 h 30 min
        assert stat.groupby is None
        assert not hasattr(stat, 'aggregate')

    def test_filter_narrows_the_samples(self, stats_conn):
        # r1 and r3 are m1.tiny: 1 + 3 + 9 + 11 = 24 over 4 samples.
        [stat] = self.stats(stats_conn, metaquery={
            'metadata.instance_type': 'm1.tiny'})
        assert (stat.count, stat.sum, stat.avg) == (4, 24.0, 6.0)
        [stat] = self.stats(stats_conn, user='u2')  # s3, s7, s4: 5+13+7
        assert (stat.count, stat.sum, stat.min, stat.max) == (3, 25.0, 5.0,
                                                              13.0)

    def test_no_matching_sample_gives_nothing(self, stats_conn):
        assert self.stats(stats_conn, meter='no.such.meter') == []
        assert self.stats(stats_conn, meter='no.such.meter',
                          period=60) == []

    # -- periods -------------------------------------------------------

    def test_hourly_buckets_from_the_first_sample(self, stats_conn):
        # start 12:00 (first), end 14:30 (last): ceil(2.5) = 3 buckets.
        result = self.stats(stats_conn, period=3600)
        assert [summary(s) for s in result] == [
            (at(12), 4, 22.0, 1.0, 13.0, 5.5),   # 1+3+5+13
            (at(13), 2, 16.0, 7.0, 9.0, 8.0),    # 7+9
            (at(14), 1, 11.0, 11.0, 11.0, 11.0),
        ]
        assert [s.period_end for s in result] == [at(13), at(14), at(15)]
        assert all(s.period == 3600 for s in result)
        first, second, third = result
        assert (first.duration_start, first.duration_end,
                first.duration) == (at(12), at(12, 30), 1800.0)
        assert (second.duration_start, second.duration_end,
                second.duration) == (at(13), at(13, 10), 600.0)
        assert third.duration == 0.0

    def test_empty_buckets_are_omitted(self, stats_conn):
        # 9000 s / 1800 = 5 buckets: 12:00, 12:30, 13:00, 13:30, 14:00.
        # 13:30-14:00 is empty; 14:00-14:30 too, because the last sample
        # (14:30 = the end) lies on the end bound of the last bucket.
        result = self.stats(stats_conn, period=1800)
        assert [summary(s) for s in result] == [
            (at(12), 3, 9.0, 1.0, 5.0, 3.0),     # 1+3+5
            (at(12, 30), 1, 13.0, 13.0, 13.0, 13.0),
            (at(13), 2, 16.0, 7.0, 9.0, 8.0),    # 7+9
        ]

    def test_buckets_start_at_an_unaligned_filter_start(self, stats_conn):
        # start 12:05, end = last sample 14:30: 8700 s / 3600 → 3 buckets
        # 12:05-13:05 (3+5+13+7 = 28), 13:05-14:05 (9), 14:05-15:05 (11).
        result = self.stats(stats_conn, period=3600,
                            start_timestamp=at(12, 5))
        assert [summary(s) for s in result] == [
            (at(12, 5), 4, 28.0, 3.0, 13.0, 7.0),
            (at(13, 5), 1, 9.0, 9.0, 9.0, 9.0),
            (at(14, 5), 1, 11.0, 11.0, 11.0, 11.0),
        ]
        assert [s.period_end for s in result] == [at(13, 5), at(14, 5),
                                                  at(15, 5)]
        assert (result[0].duration_start, result[0].duration_end,
                result[0].duration) == (at(12, 10), at(13), 3000.0)

    def test_buckets_honour_the_filter_end(self, stats_conn):
        # 12:00 to 13:00 by 1200 s: 12:00 (1+3), 12:20 (5+13), 12:40
        # empty; the 13:00 sample is outside (end is exclusive).
        result = self.stats(stats_conn, period=1200,
                            start_timestamp=at(12), end_timestamp=at(13))
        assert [summary(s) for s in result] == [
            (at(12), 2, 4.0, 1.0, 3.0, 2.0),
            (at(12, 20), 2, 18.0, 5.0, 13.0, 9.0),
        ]
        # 'le' admits 13:00 to the filter, but no bucket reaches it.
        result = self.stats(stats_conn, period=1200,
                            start_timestamp=at(12), end_timestamp=at(13),
                            end_timestamp_op='le')
        assert sum(s.count for s in result) == 4

    def test_start_op_gt_excludes_the_start_sample(self, stats_conn):
        # > 12:00: s1 is out; bucket 12:00-13:00 holds 3+5+13.
        result = self.stats(stats_conn, period=3600,
                            start_timestamp=at(12), start_timestamp_op='gt')
        assert summary(result[0]) == (at(12), 3, 21.0, 3.0, 13.0, 7.0)

    def test_start_equal_to_end_gives_no_bucket(self, stats_conn):
        assert self.stats(stats_conn, period=60, start_timestamp=at(13),
                          end_timestamp=at(13)) == []
        # One sample only: first == last, no bucket either.
        assert self.stats(stats_conn, period=60, resource='r4') == []

    @pytest.mark.parametrize('spelling', [
        '2024-05-01T12:05:00',
        '2024-05-01T12:05:00Z',
        '2024-05-01T12:05:00+00:00',
        '2024-05-01T14:05:00+02:00',
        '2024-05-01T07:05:00-05:00',
        datetime.datetime(2024, 5, 1, 17, 35, tzinfo=datetime.timezone(
            datetime.timedelta(hours=5, minutes=30))),
    ])
    def test_timezone_spellings_of_the_same_instant(self, stats_conn,
                                                    spelling):
        result = self.stats(stats_conn, period=3600,
                            start_timestamp=spelling)
        assert [summary(s) for s in result] == [
            (at(12, 5), 4, 28.0, 3.0, 13.0, 7.0),
            (at(13, 5), 1, 9.0, 9.0, 9.0, 9.0),
            (at(14, 5), 1, 11.0, 11.0, 11.0, 11.0),
        ]
        assert result[0].period_start.tzinfo is None

    # -- groupby -------------------------------------------------------

    def test_groupby_two_keys(self, stats_conn):
        result = self.stats(stats_conn, groupby=['user_id', 'project_id'])
        by_group = {(s.groupby['user_id'], s.groupby['project_id']):
                    (s.count, s.sum, s.avg, s.duration) for s in result}
        assert by_group == {
            ('u1', 'p1'): (2, 4.0, 2.0, 600.0),      # 1+3, 12:00-12:10
            ('u2', 'p1'): (2, 12.0, 6.0, 2400.0),    # 5+7, 12:20-13:00
            ('u1', 'p2'): (2, 20.0, 10.0, 4800.0),   # 9+11, 13:10-14:30
            ('u2', 'p2'): (1, 13.0, 13.0, 0.0),
        }
        assert all(list(s.groupby) == ['user_id', 'project_id']
                   for s in result)

    def test_groupby_resource_with_period(self, stats_conn):
        result = self.stats(stats_conn, period=3600,
                            groupby=['resource_id'])
        got = [(s.period_start, s.groupby['resource_id'], s.count, s.sum)
               for s in result]
        assert got == [
            (at(12), 'r1', 2, 4.0),     # 1+3
            (at(12), 'r2', 1, 5.0),
            (at(12), 'r4', 1, 13.0),
            (at(13), 'r2', 1, 7.0),
            (at(13), 'r3', 1, 9.0),
            (at(14), 'r3', 1, 11.0),
        ]

    def test_groupby_three_keys_with_period(self, stats_conn):
        result = self.stats(stats_conn, period=7200,
                            groupby=['project_id', 'user_id',
                                     'resource_id'])
        # 12:00-14:00: (p1,u1,r1) 1+3, (p1,u2,r2) 5+7, (p2,u2,r4) 13,
        # (p2,u1,r3) 9; 14:00-16:00: (p2,u1,r3) 11.
        got = sorted((s.period_start, s.groupby['project_id'],
                      s.groupby['user_id'], s.groupby['resource_id'],
                      s.sum) for s in result)
        assert got == [
            (at(12), 'p1', 'u1', 'r1', 4.0),
            (at(12), 'p1', 'u2', 'r2', 12.0),
            (at(12), 'p2', 'u1', 'r3', 9.0),
            (at(12), 'p2', 'u2', 'r4', 13.0),
            (at(14), 'p2', 'u1', 'r3', 11.0),
        ]

    def test_groupby_instance_type_counts_resources_having_it(
            self, stats_conn):
        result = self.stats(stats_conn,
                            groupby=['resource_metadata.instance_type'])
        got = {s.groupby['resource_metadata.instance_type']:
               (s.count, s.sum) for s in result}
        # r4 (13) has no instance_type and is left out.
        assert got == {'m1.tiny': (4, 24.0), 'm1.small': (2, 12.0)}

    def test_bad_groupby_field(self, stats_conn):
        with pytest.raises(telemeter.NotImplementedError,
                           match='Unable to group by these fields'):
            self.stats(stats_conn, groupby=['source'])

    def test_missing_meter(self, stats_conn):
        with pytest.raises(RuntimeError,
                           match='Missing required meter specifier'):
            list(stats_conn.get_meter_statistics(storage.SampleFilter()))

    def test_units_are_separate_groups(self, stats_conn):
        stats_conn.record_metering_data(make_sample(
            'cpu', 500, resource_id='r1', timestamp=at(12, 1), unit='ms'))
        result = self.stats(stats_conn)
        assert {s.unit: (s.count, s.sum) for s in result} == {
            'ns': (7, 49.0), 'ms': (1, 500.0)}

    # -- aggregates ----------------------------------------------------

    @pytest.mark.parametrize('func, param, key, expected', [
        ('min', None, 'min', 1.0),
        ('max', None, 'max', 13.0),
        ('sum', None, 'sum', 49.0),
        ('avg', None, 'avg', 7.0),
        ('count', None, 'count', 7),
        ('stddev', None, 'stddev', 4.0),
        ('cardinality', 'resource_id', 'cardinality/resource_id', 4),
        ('cardinality', 'user_id', 'cardinality/user_id', 2),
        ('cardinality', 'project_id', 'cardinality/project_id', 2),
    ])
    def test_each_aggregate(self, stats_conn, func, param, key, expected):
        [stat] = self.stats(stats_conn,
                            aggregate=[storage.Aggregate(func, param)])
        assert stat.aggregate == {key: pytest.approx(expected)}
        assert type(stat.aggregate[key]) is type(expected)
        standard = {'min', 'max', 'sum', 'avg', 'count'}
        for name in standard:
            assert hasattr(stat, name) == (name == func)
        if func in standard:
            assert getattr(stat, func) == pytest.approx(expected)

    def test_several_aggregates_per_bucket(self, stats_conn):
        result = self.stats(stats_conn, period=3600, aggregate=[
            storage.Aggregate('stddev'), storage.Aggregate('sum'),
            storage.Aggregate('cardinality', 'resource_id')])
        # 12:00 bucket: 1, 3, 5, 13 of r1, r2, r4: mean 5.5, squared
        # deviations 20.25 + 6.25 + 0.25 + 56.25 = 83, 83/4 = 20.75.
        first = result[0].aggregate
        assert first['stddev'] == pytest.approx(math.sqrt(20.75))
        assert first['sum'] == 22.0
        assert first['cardinality/resource_id'] == 3
        assert result[0].sum == 22.0
        # 13:00 bucket: 7 and 9: stddev 1; 14:00: one sample, stddev 0.
        assert [r.aggregate['stddev'] for r in result[1:]] == [
            pytest.approx(1.0), pytest.approx(0.0)]

    def test_aggregates_with_groupby(self, stats_conn):
        result = self.stats(stats_conn, groupby=['project_id'], aggregate=[
            storage.Aggregate('cardinality', 'user_id'),
            storage.Aggregate('max')])
        got = {s.groupby['project_id']: s.aggregate for s in result}
        assert got == {
            'p1': {'cardinality/user_id': 2, 'max': 7.0},   # u1, u2
            'p2': {'cardinality/user_id': 2, 'max': 13.0},  # u1, u2
        }

    def test_bad_cardinality_parameter(self, stats_conn):
        with pytest.raises(storage.StorageBadAggregate,
                           match=r'Bad aggregate: cardinality\.volume'):
            self.stats(stats_conn, aggregate=[
                storage.Aggregate('cardinality', 'volume')])

    def test_unknown_aggregate(self, stats_conn):
        with pytest.raises(storage.StorageBadAggregate,
                           match='Invalid aggregation function: median'):
            self.stats(stats_conn, aggregate=[storage.Aggregate('median')])
        assert storage.StorageBadAggregate.code == 400
