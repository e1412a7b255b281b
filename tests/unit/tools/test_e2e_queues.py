"""tools/bench/e2e/queues.py: the per-queue report."""

from __future__ import annotations

import pytest

from tools.bench.e2e import queues


def test_queue_report():
    d = queues.QueueDepth
    series = [(100.0, {'q': d(0, 0, 1)}), (105.0, {'q': d(40, 10, 1)}),
              (107.0, {'q': d(70, 0, 1)}), (110.0, {'q': d(90, 10, 1)}),
              (120.0, {'q': d(0, None, 1)})]
    report = queues.queue_report(series, (104.0, 111.0), 100.0, 20.0)['q']
    assert report['max'] == 100
    assert report['at_window_start'] == 50
    assert report['at_window_end'] == 100
    assert report['samples_in_window'] == 3
    assert report['growth_per_s_in_window'] == pytest.approx(10.0)
    assert report['flat_in_window'] is False
    assert report['series'][0] == [0.0, 0]
    assert report['last'] == 0
    # Too few samples in the window to judge.
    short = queues.queue_report(series, (104.0, 108.0), 100.0, 20.0)['q']
    assert short['growth_per_s_in_window'] is None
    assert short['flat_in_window'] is None


def test_queued_keeps_the_queues_that_hold_messages():
    d = queues.QueueDepth
    snap = {'a': d(0, 0, 1), 'b': d(3, None, 1), 'c': d(0, 2, 1)}
    assert queues.queued(snap) == {'b': 3, 'c': 2}
