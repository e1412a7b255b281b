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


def test_a_queue_with_messages_and_no_consumer_twice_is_unconsumed():
    watch = backlog.Backlog(driver=None, queues=['a', 'b', 'c'], interval=30,
                            warning=100)

    def look(depths, consumers):
        watch.consumers = consumers
        watch.judge(depths)

    # a: messages, no consumer; b: empty, no consumer; c: consumed.
    look({'a': 5, 'b': 0, 'c': 9}, {'a': 0, 'b': 0, 'c': 1})
    assert watch.unconsumed() == []          # once may be a reconnection
    look({'a': 7, 'b': 0, 'c': 9}, {'a': 0, 'b': 0, 'c': 1})
    assert watch.unconsumed() == ['a']
    watch.forget_unconsumed()
    assert watch.unconsumed() == []
    look({'a': 7, 'b': 0, 'c': 9}, {'a': 1, 'b': 0, 'c': 1})
    look({'a': 3, 'b': 0, 'c': 9}, {'a': 0, 'b': 0, 'c': 1})
    assert watch.unconsumed() == []          # a consumer came back between
