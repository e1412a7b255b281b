"""telemeter.messaging.dispatch follows oslo.messaging's batch rules."""

import oslo_messaging

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
    assert dispatcher.dispatch(_batch()) == []
    assert calls == [('all', 'info', [1, 3, 4]), ('only_a', 'info', [1, 4]),
                     ('all', 'sample', [2])]
    assert dispatcher.priorities == ['info', 'sample']


def test_requeue_takes_the_whole_group_and_stops_it_there():
    calls = []
    dispatcher = dispatch.BatchDispatcher([
        Recorder('first', calls, result=REQUEUE), Recorder('second', calls)])
    assert sorted(dispatcher.dispatch(_batch())) == ['h1', 'h3', 'h4']
    # The endpoints after it do not see the requeued group; other
    # priorities are handled.
    assert calls == [('first', 'info', [1, 3, 4]),
                     ('first', 'sample', [2]), ('second', 'sample', [2])]


def test_an_exception_requeues_like_oslo_messaging():
    calls = []
    dispatcher = dispatch.BatchDispatcher([
        Recorder('boom', calls, result=RuntimeError('down'))])
    assert sorted(dispatcher.dispatch(_batch())) == ['h1', 'h3', 'h4']


def test_priorities_without_an_endpoint_are_handled_silently():
    calls = []
    dispatcher = dispatch.BatchDispatcher([Recorder('r', calls)])
    assert dispatcher.dispatch(
        [('error', _notification('e', 9), 'h9')]) == []
    assert calls == []
