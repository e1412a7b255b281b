"""SettlementWatch: delivered vs. settled tags, gaps, idle release."""

from __future__ import annotations

from telemeter.messaging import settlement


class Message:
    def __init__(self, channel: object, tag: int) -> None:
        self.channel, self.delivery_tag = channel, tag


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _watch() -> tuple[settlement.SettlementWatch, Clock]:
    clock = Clock()
    return settlement.SettlementWatch(grace=5.0, clock=clock), clock


def test_settled_deliveries_are_never_released():
    watch, clock = _watch()
    channel = object()
    batch = [Message(channel, tag) for tag in range(1, 4)]
    for message in batch:
        watch.delivered(message)
    watch.settled(batch)
    clock.now = 100.0
    assert watch.unsettled(channel, pending=0) is None
    assert watch.gaps == 0


def test_unsettled_deliveries_are_released_after_the_grace_period():
    watch, clock = _watch()
    channel = object()
    messages = [Message(channel, tag) for tag in range(1, 6)]
    for message in messages:
        watch.delivered(message)
    watch.settled(messages[:2])
    # Still waiting in the listener: not lost.
    assert watch.unsettled(channel, pending=3) is None
    assert watch.unsettled(channel, pending=0) is None  # idle starts
    clock.now = 4.9
    assert watch.unsettled(channel, pending=0) is None
    clock.now = 5.0
    assert watch.unsettled(channel, pending=0) == (3, 5)
    # Released means settled: not reported twice.
    clock.now = 100.0
    assert watch.unsettled(channel, pending=0) is None


def test_a_new_delivery_restarts_the_idle_spell():
    watch, clock = _watch()
    channel = object()
    watch.delivered(Message(channel, 1))
    assert watch.unsettled(channel, pending=0) is None
    clock.now = 4.0
    watch.delivered(Message(channel, 2))
    clock.now = 6.0
    assert watch.unsettled(channel, pending=0) is None
    clock.now = 11.0
    assert watch.unsettled(channel, pending=0) == (1, 2)


def test_a_new_channel_starts_counting_afresh():
    watch, clock = _watch()
    old, new = object(), object()
    watch.delivered(Message(old, 1))
    watch.delivered(Message(old, 2))
    watch.delivered(Message(new, 1))
    watch.settled([Message(new, 1)])
    clock.now = 50.0
    assert watch.unsettled(new, pending=0) is None
    # The old channel's deliveries went back with it.
    assert watch.unsettled(old, pending=0) is None
    assert watch.gaps == 0


def test_a_tag_gap_is_counted():
    watch, _clock = _watch()
    channel = object()
    watch.delivered(Message(channel, 1))
    watch.delivered(Message(channel, 3))
    assert watch.gaps == 1
