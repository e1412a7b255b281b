"""Collector bus endpoints (collector.md §2)."""

import oslo_messaging
import pytest

from telemeter.collector import endpoints
from tests.unit.collector.fakes import (
    SECRET,
    RecordingDispatcher,
    manager,
    notification,
    signed,
)


def test_batch_is_flattened_verified_and_dispatched_once():
    dispatcher = RecordingDispatcher()
    endpoint = endpoints.SampleEndpoint(SECRET, manager(dispatcher))
    forged = signed('forged', secret='other')
    result = endpoint.sample([notification([signed('a'), forged]),
                              notification([signed('b'), ['not a dict']]),
                              notification('not a list')])
    assert result is None
    [(method, goods)] = dispatcher.calls
    assert method == 'record_metering_data'
    assert [g['counter_name'] for g in goods] == ['a', 'b']
    # 2 + 2 dicts in the list payloads, plus 1 payload that is no list:
    # received 5; forged + 'not a dict' + the bad payload rejected = 3.
    assert endpoint.stats() == {'received': 5, 'rejected': 3,
                                'dispatched': 2, 'requeued': 0,
                                'requeued_items': 0}


def test_every_dispatcher_gets_the_same_list_in_order():
    first, second = RecordingDispatcher(), RecordingDispatcher()
    endpoint = endpoints.SampleEndpoint(SECRET, manager(first, second))
    endpoint.sample([notification([signed('a')])])
    assert first.calls == second.calls
    assert first.calls[0][1] is second.calls[0][1]


def test_all_forged_batch_still_calls_dispatchers_with_empty_list():
    dispatcher = RecordingDispatcher()
    endpoint = endpoints.SampleEndpoint(SECRET, manager(dispatcher))
    assert endpoint.sample([notification([signed('x', 'bad')])]) is None
    assert dispatcher.calls == [('record_metering_data', [])]


def test_without_secret_every_dict_is_accepted():
    dispatcher = RecordingDispatcher()
    endpoint = endpoints.SampleEndpoint('', manager(dispatcher))
    unsigned = signed('u', secret='')
    assert unsigned['message_signature'] == ''
    endpoint.sample([notification([unsigned, signed('other', 'x')])])
    assert dispatcher.names() == ['u', 'other']


def test_dispatcher_failure_requeues_the_whole_batch(caplog):
    failing = RecordingDispatcher(failures=1)
    after = RecordingDispatcher()
    endpoint = endpoints.EventEndpoint(SECRET, manager(failing, after))
    batch = [notification([signed('a')]), notification([signed('b')])]
    assert endpoint.sample(batch) == (
        oslo_messaging.NotificationResult.REQUEUE)
    assert 'Dispatcher failed to handle the notification, re-queuing it' \
        in caplog.text
    # The first failure stops the dispatchers after it.
    assert after.calls == []
    assert endpoint.sample(batch) is None
    assert [m for m, _ in failing.calls] == ['record_events']
    assert failing.names() == after.names() == ['a', 'b']
    assert endpoint.stats() == {'received': 4, 'rejected': 0,
                                'dispatched': 2, 'requeued': 1,
                                'requeued_items': 2}


def test_failed_batch_is_held_before_requeue(monkeypatch):
    slept = []
    monkeypatch.setattr(endpoints.time, 'sleep', slept.append)
    endpoint = endpoints.SampleEndpoint(
        SECRET, manager(RecordingDispatcher(failures=1)), requeue_delay=1.5)
    assert endpoint.sample([notification([signed('a')])]) == (
        oslo_messaging.NotificationResult.REQUEUE)
    assert endpoint.sample([notification([signed('a')])]) is None
    # Only the failure waits.
    assert slept == [1.5]


def test_an_error_of_the_data_is_raised_for_the_listener_to_isolate():
    poisoned = RecordingDispatcher(poison=('bad',))
    endpoint = endpoints.SampleEndpoint(SECRET, manager(poisoned))
    with pytest.raises(ValueError, match='poisoned'):
        endpoint.sample([notification([signed('good'), signed('bad')])])
    assert endpoint.stats()['requeued'] == 0
    assert endpoint.sample([notification([signed('good')])]) is None
