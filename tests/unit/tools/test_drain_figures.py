"""tools/bench/drain/figures.py: rates, CPU per message, medians per
worker count, ratios, the order of the runs."""

from __future__ import annotations

import pytest

from tools.bench.drain import figures


def test_drain_rates_count_what_was_made_after_the_first_look():
    rates = figures.drain_rates(
        1000, {'samples': 3000, 'events': 1000},
        {'samples': 200, 'events': 100}, t_spawn=10.0, t_first=12.5,
        t_done=16.5)
    assert rates['startup_s'] == 2.5
    assert rates['drain_s'] == 4.0
    assert rates['samples_per_s'] == 700.0
    assert rates['events_per_s'] == 225.0
    # 3,700 of the 4,000 outputs were made in the window: 925 messages.
    assert rates['messages_in_window'] == 925.0
    assert rates['messages_per_s'] == pytest.approx(231.2, abs=0.1)


def test_drain_rates_from_nothing_seen_before():
    rates = figures.drain_rates(2000, {'samples': 200_000}, {}, 0.0, 1.0,
                                11.0)
    assert rates['messages_per_s'] == 200.0
    assert rates['samples_per_s'] == 20_000.0


def test_drain_of_no_length_has_no_rate():
    rates = figures.drain_rates(10, {'samples': 5}, {}, 0.0, 1.0, 1.0)
    assert rates['messages_per_s'] is None
    assert rates['samples_per_s'] is None


def test_window_messages_without_outputs_is_every_message():
    assert figures.window_messages(50, {}, {}) == 50.0


def test_cpu_figures():
    cpu = figures.cpu_figures(3.0, 2.0, 1500)
    assert cpu == {'daemon_cpu_drain_s': 3.0, 'daemon_cores': 1.5,
                   'cpu_ms_per_message': 2.0}
    assert figures.cpu_figures(1.0, 0.0, 0) == {
        'daemon_cpu_drain_s': 1.0, 'daemon_cores': None,
        'cpu_ms_per_message': None}


def test_other_cores_never_negative():
    assert figures.other_cores(10.0, [4.0, 2.0, 1.0], 5.0) == 0.6
    assert figures.other_cores(1.0, [4.0], 5.0) == 0.0
    assert figures.other_cores(1.0, [], 0.0) is None


def test_median_ignores_missing_values():
    assert figures.median([3.0, None, 1.0, 2.0]) == 2.0
    assert figures.median([1.0, 4.0]) == 2.5
    assert figures.median([None]) is None


def test_medians_by_workers_take_complete_runs_only():
    runs = [
        {'workers': 1, 'complete': True, 'messages_per_s': 100.0},
        {'workers': 2, 'complete': True, 'messages_per_s': 170.0},
        {'workers': 1, 'complete': True, 'messages_per_s': 120.0},
        {'workers': 2, 'complete': False, 'messages_per_s': 5.0},
        {'workers': 2, 'complete': True, 'messages_per_s': 190.0},
    ]
    medians = figures.medians_by_workers(runs, keys=('messages_per_s',
                                                     'drain_s'))
    assert medians == {1: {'messages_per_s': 110.0, 'drain_s': None},
                       2: {'messages_per_s': 180.0, 'drain_s': None}}


def test_ratio():
    assert figures.ratio(180.0, 110.0) == 1.636
    assert figures.ratio(None, 1.0) is None
    assert figures.ratio(1.0, None) is None
    assert figures.ratio(1.0, 0.0) is None


def test_scaling_ratios_against_the_smallest_worker_count():
    medians = {1: {'messages_per_s': 100.0, 'cpu_ms_per_message': 1.0},
               2: {'messages_per_s': 150.0, 'cpu_ms_per_message': 1.2},
               4: {'messages_per_s': 160.0, 'cpu_ms_per_message': None}}
    ratios = figures.scaling_ratios(
        medians, keys=('messages_per_s', 'cpu_ms_per_message'))
    assert ratios == {
        '2/1': {'messages_per_s': 1.5, 'cpu_ms_per_message': 1.2},
        '4/1': {'messages_per_s': 1.6, 'cpu_ms_per_message': None}}
    assert figures.scaling_ratios({}) == {}


def test_run_order_alternates():
    assert figures.run_order([1, 2], 3) == [1, 2, 1, 2, 1, 2]
    assert figures.run_order([2], 2) == [2, 2]
