"""tools/bench/e2e/rates.py: counters, windows, bins, variation, slope."""

from __future__ import annotations

import pytest

from tools.bench.e2e import rates


def test_counter_rate_interpolates():
    series = [(100.0, 0), (101.0, 100), (103.0, 500), (104.0, 500)]
    assert rates.counter_at(series, 102.0) == pytest.approx(300)
    assert rates.counter_at(series, 50.0) == 0
    assert rates.counter_at(series, 200.0) == 500
    assert rates.counter_rate(series, 100.5, 102.5) == pytest.approx(175)
    assert rates.counter_rate(series, 5, 5) == 0.0


def test_window_rate_counts_half_open_window():
    times = [10.0, 10.5, 11.0, 19.99, 20.0, 25.0]
    assert rates.count_in_window(times, 10.0, 20.0) == 4
    assert rates.window_rate(times, 10.0, 20.0) == pytest.approx(0.4)
    assert rates.window_rate(times, 20.0, 20.0) == 0.0


def test_after_rate_runs_to_the_last_event():
    assert rates.after_rate([1.0, 5.0, 6.0, 10.0], 5.0) == pytest.approx(
        3 / 5)
    assert rates.after_rate([1.0, 2.0], 5.0) == 0.0


def test_binned_and_variation():
    times = [0.1, 0.2, 1.5, 2.2, 2.3, 2.4, 3.9]
    assert rates.binned(times, 0.0, 3.0) == [2, 1, 3]
    assert rates.binned(times, 0.0, 4.0, width=2.0) == [3, 4]
    assert rates.variation([5, 5, 5]) == 0.0
    assert rates.variation([1]) is None
    assert rates.variation([0, 0]) is None


def test_slope_and_flatness():
    assert rates.slope([(0, 10), (1, 12), (2, 14)]) == pytest.approx(2.0)
    assert rates.slope([(1, 5)]) is None
    assert rates.is_flat(0.5, 0.0)
    assert rates.is_flat(-3.0, 200.0)
    assert not rates.is_flat(30.0, 200.0)
    assert rates.is_flat(None, 10.0) is None


def test_steady_window_follows_the_warmup():
    assert rates.steady_window(100.0, 10.0, 60.0) == (110.0, 170.0)


def test_recent_rate_over_the_last_seconds():
    counts = [(0.0, 0, 0), (5.0, 100, 0), (10.0, 300, 0), (15.0, 700, 0)]
    assert rates.recent_rate(counts) == pytest.approx(600 / 10)
    assert rates.recent_rate(counts, span=100.0) == pytest.approx(700 / 15)
    assert rates.recent_rate(counts[:1]) == 0.0


def test_counts_settled_once_still_for_the_settle_time():
    moving = [(0.0, 0, 0), (5.0, 10, 1), (10.0, 10, 1)]
    assert not rates.counts_settled(moving, 10.0)
    assert rates.counts_settled(moving, 5.0)
    assert not rates.counts_settled(moving[:1], 5.0)
    assert not rates.counts_settled([], 1.0)
