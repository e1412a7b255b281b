"""Property-based checks of the transformers.

1. No transformer raises on arbitrary well-typed samples: any numeric
   volume, timestamps in any order and any timezone spelling, monotonic
   times or not, metadata present or missing.
2. rate_of_change and delta outputs follow their formulas, checked against
   a small independent model of the cache rules (transformers.md §3, §4).
"""

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemeter import sample
from telemeter.transformer import (
    accumulator,
    arithmetic,
    conversions,
)

FINITE = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False,
                   allow_infinity=False)
VOLUMES = st.one_of(st.integers(min_value=-10**12, max_value=10**12), FINITE)
MOMENTS = st.datetimes(min_value=datetime.datetime(2000, 1, 1),
                       max_value=datetime.datetime(2040, 1, 1))
OFFSETS = st.sampled_from([None, 0, 60, -330, 840])


@st.composite
def timestamps(draw):
    moment = draw(MOMENTS)
    offset = draw(OFFSETS)
    if offset is None:
        return moment.isoformat()
    zone = datetime.timezone(datetime.timedelta(minutes=offset))
    return moment.replace(tzinfo=datetime.UTC).astimezone(zone).isoformat()


@st.composite
def samples(draw):
    metadata = draw(st.one_of(
        st.just({}),
        st.fixed_dictionaries({}, optional={
            'cpu_number': st.integers(min_value=0, max_value=512),
            'flavor': st.fixed_dictionaries(
                {}, optional={'ram': st.integers(1, 10**6)}),
            'host': st.text(max_size=5)})))
    return sample.Sample(
        name=draw(st.sampled_from(['a', 'b', 'cpu'])),
        type=draw(st.sampled_from(['gauge', 'delta', 'cumulative'])),
        unit=draw(st.sampled_from(['ns', 'B', None])),
        volume=draw(VOLUMES),
        user_id=draw(st.sampled_from(['u1', None])),
        project_id=draw(st.sampled_from(['p1', 'p2', None])),
        resource_id=draw(st.sampled_from(['r1', 'r2'])),
        timestamp=draw(timestamps()),
        resource_metadata=metadata,
        monotonic_time=draw(st.one_of(st.none(), st.floats(
            min_value=0, max_value=1e9, allow_nan=False))))


def _transformers():
    return [
        accumulator.TransformerAccumulator(size=2),
        conversions.ScalingTransformer(
            source={'map_from': {'name': r'(a|b)'}},
            target={'map_to': {'name': r'\1.x'}, 'scale': 'volume * 2',
                    'max': 100}),
        conversions.RateOfChangeTransformer(target={
            'name': 'cpu_util', 'type': 'gauge', 'max': 100,
            'scale': '100.0 / (10**9 * (resource_metadata.cpu_number '
                     'or 1))'}),
        conversions.RateOfChangeTransformer(target={'scale': 3}),
        conversions.DeltaTransformer(growth_only=True),
        conversions.AggregatorTransformer(size=3, user_id='last'),
        conversions.AggregatorTransformer(size=None, retention_time=5,
                                          resource_metadata='drop',
                                          timestamp='last'),
        arithmetic.ArithmeticTransformer(target={
            'expr': '$(a) * 2 + $(b) / ($(cpu).resource_metadata.'
                    'cpu_number or 1)'}),
    ]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(samples(), st.booleans()), max_size=25))
def test_no_transformer_raises(steps):
    for transformer in _transformers():
        for s, flush in steps:
            transformer.handle_sample(s)
            if flush:
                for out in transformer.flush():
                    assert isinstance(out, sample.Sample)
        transformer.flush()


def _ts(s):
    moment = datetime.datetime.fromisoformat(s.timestamp)
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment


@settings(max_examples=300, deadline=None)
@given(st.lists(samples(), max_size=30))
def test_rate_of_change_formula(stream):
    t = conversions.RateOfChangeTransformer()
    model: dict[str, tuple] = {}
    for s in stream:
        key = s.name + s.resource_id
        prev = model.get(key)
        model[key] = (s.volume, _ts(s), s.monotonic_time)
        out = t.handle_sample(s)
        if prev is None:
            assert out is None
            continue
        if s.monotonic_time is not None and prev[2] is not None:
            elapsed = s.monotonic_time - prev[2]
        else:
            elapsed = (_ts(s) - prev[1]).total_seconds()
        if elapsed < 0:
            assert out is None
            model[key] = prev
            continue
        if prev[0] <= s.volume or s.type != 'cumulative':
            delta = s.volume - prev[0]
        else:
            delta = s.volume
        expected = delta / elapsed if elapsed else 0.0
        assert out.volume == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert (out.name, out.type, out.resource_id) == (
            s.name, s.type, s.resource_id)


@settings(max_examples=300, deadline=None)
@given(st.lists(samples(), max_size=30), st.booleans())
def test_delta_formula(stream, growth_only):
    t = conversions.DeltaTransformer(growth_only=growth_only)
    model: dict[str, tuple] = {}
    for s in stream:
        key = s.name + s.resource_id
        prev = model.get(key)
        model[key] = (s.volume, _ts(s))
        out = t.handle_sample(s)
        if prev is None:
            assert out is None
            continue
        if (_ts(s) - prev[1]).total_seconds() < 0:
            assert out is None
            model[key] = prev
            continue
        delta = s.volume - prev[0]
        if growth_only and delta < 0:
            assert out is None
            continue
        assert out.volume == delta
        assert (out.type, out.unit) == ('delta', s.unit)
