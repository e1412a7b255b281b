"""The log storage driver."""

from __future__ import annotations

import datetime
import logging

from telemeter import storage
from telemeter.storage import impl_log, models


def test_record_metering_data_logs(conf, caplog):
    connection = impl_log.Connection(conf, 'log://')
    with caplog.at_level(logging.INFO):
        connection.record_metering_data_batch([
            {'counter_name': 'cpu', 'resource_id': 'vm-1',
             'counter_volume': 42}])
    assert 'metering data cpu for vm-1: 42' in caplog.text


def test_queries_return_nothing(conf):
    connection = impl_log.Connection(conf, 'log://')
    assert connection.get_samples(storage.SampleFilter()) == []
    assert connection.get_resources() == []
    assert connection.get_meters() == []
    assert connection.query_samples() == []
    assert connection.get_meter_statistics(storage.SampleFilter()) == []
    events = impl_log.EventConnection(conf, 'log://')
    assert events.get_events(storage.EventFilter()) == []
    assert events.get_event_types() == []
    assert events.get_trait_types('x') == []
    assert events.get_traits('x') == []


def test_expiry_only_logs(conf, caplog):
    with caplog.at_level(logging.INFO):
        impl_log.Connection(conf, 'log://').clear_expired_metering_data(60)
        impl_log.EventConnection(conf, 'log://').clear_expired_event_data(5)
    assert 'Dropping metering data with TTL 60' in caplog.text
    assert 'Dropping event data with TTL 5' in caplog.text


def test_record_events_logs(conf, caplog):
    event = models.Event('m-1', 'compute.create',
                         datetime.datetime(2024, 1, 1), [], {})
    with caplog.at_level(logging.INFO):
        impl_log.EventConnection(conf, 'log://').record_events([event])
    assert 'compute.create' in caplog.text
    assert 'm-1' in caplog.text


def _leaves(tree):
    for value in tree.values():
        if isinstance(value, dict):
            yield from _leaves(value)
        else:
            yield value


def test_capabilities_all_false():
    caps = impl_log.Connection.get_capabilities()
    assert set(caps) == {'meters', 'resources', 'samples', 'statistics'}
    assert set(caps['statistics']['aggregation']['selectable']) == {
        'max', 'min', 'sum', 'avg', 'count', 'stddev', 'cardinality'}
    assert list(_leaves(caps)) and not any(_leaves(caps))
    assert impl_log.Connection.get_storage_capabilities() == {
        'storage': {'production_ready': False}}
    assert impl_log.EventConnection.get_capabilities() == {
        'events': {'query': {'simple': False}}}
    assert impl_log.EventConnection.get_storage_capabilities() == {
        'storage': {'production_ready': False}}
