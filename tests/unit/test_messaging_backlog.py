"""Backlog.judge: a queue is falling behind while it is above the
warning level and growing; caught up once back at or below it."""

from __future__ import annotations

import logging

from telemeter.messaging import backlog


def _judge(watch, caplog, depth):
    caplog.clear()
    watch.judge({'q': depth})
    return [r.levelname for r in caplog.records]


def test_warns_while_above_and_growing_then_caught_up(caplog):
    watch = backlog.Backlog(driver=None, queues=['q'], interval=30,
                            warning=100)
    with caplog.at_level(logging.INFO, logger=backlog.__name__):
        assert _judge(watch, caplog, 500) == []      # nothing to compare
        assert _judge(watch, caplog, 700) == ['WARNING']
        assert 'q holds 700 messages (+200 in 30s)' in caplog.text
        assert _judge(watch, caplog, 650) == []      # above, but shrinking
        assert _judge(watch, caplog, 90) == ['INFO']
        assert 'Queue q has caught up: 90 messages' in caplog.text
        assert _judge(watch, caplog, 95) == []       # below the level
    assert watch.depth == {'q': 95}


def test_a_growing_queue_below_the_level_is_quiet(caplog):
    watch = backlog.Backlog(driver=None, queues=['q'], interval=30,
                            warning=100)
    with caplog.at_level(logging.INFO, logger=backlog.__name__):
        for depth in (10, 50, 99, 100):
            assert _judge(watch, caplog, depth) == []


def test_interval_zero_never_starts():
    watch = backlog.Backlog(driver=None, queues=['q'], interval=0,
                            warning=100)
    watch.start()
    assert watch._thread is None
