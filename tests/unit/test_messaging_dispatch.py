"""telemeter.messaging.dispatch follows oslo.messaging's batch rules."""

import oslo_messaging
import pytest

from telemeter.messaging import dispatch

REQUEUE = oslo_messaging.NotificationResult.REQUEUE


def _notification(event_type, n):
    return {'ctxt': {}, 'publisher_id': 'p', 'event_type': event_type,
            'payload': {'n': n}, 'metadata': {'message_id': str(n),
                                              'timestamp': None}}


class Recorder:
    def __init__(self, name, calls, result=None, event_types=None):
        self.name = name
        self.calls = calls
        self.result = result
        if event_types:
            self.filter_rule = oslo_messaging.NotificationFilter(
                event_type=event_types)

    def info(self, notifications):
        self.calls.append((self.name, 'info',
                           [n['payload']['n'] for n in notifications]))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    def sample(self, notifications):
        self.calls.append((self.name, 'sample',
                           [n['payload']['n'] for n in notifications]))


def _batch():
    return [('info', _notification('a.x', 1), 'h1'),
            ('sample', _notification('s', 2), 'h2'),
            ('info', _notification('b.y', 3), 'h3'),
            ('info', _notification('a.z', 4), 'h4')]


def test_groups_by_priority_and_screens_by_filter():
    calls = []
    dispatcher = dispatch.BatchDispatcher([
        Recorder('all', calls), Recorder('only_a', calls,
                                         event_types='^a\\.')])
    outcome = dispatcher.dispatch(_batch())
    assert (outcome.requeue, outcome.failures) == ([], [])
    assert calls == [('all', 'info', [1, 3, 4]), ('only_a', 'info', [1, 4]),
                     ('all', 'sample', [2])]
    assert dispatcher.priorities == ['info', 'sample']


def test_requeue_takes_the_whole_group_and_stops_it_there():
    calls = []
    dispatcher = dispatch.BatchDispatcher([
        Recorder('first', calls, result=REQUEUE), Recorder('second', calls)])
    outcome = dispatcher.dispatch(_batch())
    assert sorted(outcome.requeue) == ['h1', 'h3', 'h4']
    assert outcome.failures == []
    # The endpoints after it do not see the requeued group; other
    # priorities are handled.
    assert calls == [('first', 'info', [1, 3, 4]),
                     ('first', 'sample', [2]), ('second', 'sample', [2])]


def test_an_endpoint_failing_on_everything_fails_each_one_alone():
    calls = []
    dispatcher = dispatch.BatchDispatcher([
        Recorder('boom', calls, result=RuntimeError('down'))])
    outcome = dispatcher.dispatch(_info_batch(3))
    assert outcome.requeue == []
    assert [(f.handle, f.reason, f.alone) for f in outcome.failures] == [
        ('h0', 'RuntimeError: down', True),
        ('h1', 'RuntimeError: down', True),
        ('h2', 'RuntimeError: down', True)]
    # Nothing went through: the failures may be the next hop's.
    assert not outcome.path_works


class Picky(Recorder):
    """Raises on any group holding one of ``bad``; records the others."""

    def __init__(self, name, calls, bad):
        super().__init__(name, calls)
        self.bad = bad
        self.handled = []

    def info(self, notifications):
        numbers = [n['payload']['n'] for n in notifications]
        self.calls.append((self.name, numbers))
        if self.bad & set(numbers):
            raise ValueError(f'cannot store {sorted(self.bad & set(numbers))}')
        self.handled.extend(numbers)


def _info_batch(count):
    return [('info', _notification('a.x', n), f'h{n}')
            for n in range(count)]


@pytest.mark.parametrize('bad', [{0}, {7}, {15}, {3, 12}, {4, 5}])
def test_an_endpoint_raising_gets_the_failing_ones_isolated(bad):
    calls = []
    picky = Picky('p', calls, bad)
    after = Recorder('after', calls)
    dispatcher = dispatch.BatchDispatcher([picky, after])
    outcome = dispatcher.dispatch(_info_batch(16))
    assert outcome.requeue == []
    assert sorted(f.handle for f in outcome.failures) == sorted(
        f'h{n}' for n in bad)
    assert all(f.alone for f in outcome.failures)
    assert outcome.path_works
    # Every other notification was handled exactly once, by both
    # endpoints; the failing ones never reached the second endpoint.
    assert sorted(picky.handled) == sorted(set(range(16)) - bad)
    after_seen = [n for name, _, numbers in
                  (c for c in calls if c[0] == 'after') for n in numbers]
    assert sorted(after_seen) == sorted(set(range(16)) - bad)
    assert outcome.failures[0].reason.startswith('ValueError: cannot store')


def test_isolation_gives_up_when_nothing_succeeds():
    calls = []
    dispatcher = dispatch.BatchDispatcher([
        Recorder('down', calls, result=ConnectionError('refused'))])
    outcome = dispatcher.dispatch(_info_batch(1000))
    # Bounded work for an endpoint that fails on everything...
    assert len(calls) == dispatch.ISOLATION_LIMIT
    # ...and nobody is blamed alone.
    assert len(outcome.failures) == 1000
    assert not any(f.alone for f in outcome.failures)


def test_priorities_without_an_endpoint_are_handled_silently():
    calls = []
    dispatcher = dispatch.BatchDispatcher([Recorder('r', calls)])
    outcome = dispatcher.dispatch([('error', _notification('e', 9), 'h9')])
    assert (outcome.requeue, outcome.failures) == ([], [])
    assert calls == []


class Mutating(Picky):
    """Spoils what it is given, as the collector's dispatchers may."""

    spoiled_on_arrival = 0

    def info(self, notifications):
        self.spoiled_on_arrival += sum(
            1 for n in notifications if n['payload'].get('spoiled'))
        try:
            super().info(notifications)
        finally:
            for n in notifications:
                n['payload']['spoiled'] = True


def test_isolation_gives_the_halves_fresh_notifications():
    calls = []
    endpoint = Mutating('m', calls, {5})
    seen_fresh = []

    def reload(handle):
        seen_fresh.append(handle)
        return _notification('a.x', int(handle[1:]))
    dispatcher = dispatch.BatchDispatcher([endpoint], reload=reload)
    outcome = dispatcher.dispatch(_info_batch(8))
    assert [f.handle for f in outcome.failures] == ['h5']
    assert sorted(endpoint.handled) == [0, 1, 2, 3, 4, 6, 7]
    assert set(seen_fresh) == {f'h{n}' for n in range(8)}
    assert endpoint.spoiled_on_arrival == 0


def test_notifications_no_endpoint_takes_are_counted():
    calls = []
    dispatcher = dispatch.BatchDispatcher([
        Recorder('only_a', calls, event_types='^a\\.')])
    batch = [*_batch(), ('error', _notification('e', 9), 'h9')]
    outcome = dispatcher.dispatch(batch)
    # b.y and the sample (screened out by the filter) and the error (no
    # endpoint has a method for it).
    assert outcome.unhandled == 3
    assert calls == [('only_a', 'info', [1, 4])]
