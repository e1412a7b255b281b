"""tools/bench/e2e/notification_plan.py: corpus entries routed and
renumbered for telemeter, expected counts, the dry run's output."""

from __future__ import annotations

from telemeter.publisher import utils as publisher_utils
from tools.bench.e2e import accounting, notification_plan

SECRET = 'bench-secret'


def test_expected_totals():
    per = {'a': {'samples': 2, 'events': 1}, 'b': {'samples': 0,
                                                   'events': 1}}
    assert notification_plan.expected_totals(
        {'a': 3, 'b': 4, 'c': 1}, per) == (6, 7, ['c'])


def test_routed_entry_moves_polled_samples_to_the_telemeter_exchange():
    entry = {'exchange': 'ceilometer', 'key': 'k'}
    assert notification_plan.routed_entry(entry)['exchange'] == 'telemeter'
    assert entry['exchange'] == 'ceilometer'
    nova = {'exchange': 'nova'}
    assert notification_plan.routed_entry(nova) is nova


def test_renumbered_polled_samples_are_signed_again():
    payload = {'samples': [
        {'counter_name': 'cpu', 'message_id': 'fixed-1',
         'message_signature': 'bogus', 'resource_metadata': {'a': 1}},
        {'counter_name': 'memory.usage', 'message_id': 'fixed-2',
         'message_signature': 'bogus', 'resource_metadata': {}}]}
    prefix = 'a1b2c3d4-e5f6-4a7b-8c9d-'
    assert notification_plan.renumber_polled(payload, prefix, 7, SECRET) == 9
    ids = [s['message_id'] for s in payload['samples']]
    assert [accounting.parse_message_id(prefix, i) for i in ids] == [7, 8]
    assert all(publisher_utils.verify_signature(s, SECRET)
               for s in payload['samples'])


def test_parse_dryrun_attributes_records_between_markers():
    markers = {'m1': 'nova.exists', 'm2': 'polling'}
    lines = [
        '{"kind": "event", "message_id": "m1"}',
        '{"kind": "sample", "counter_name": "instance"}',
        '{"kind": "sample", "counter_name": "vcpus"}',
        '{"kind": "event", "message_id": "n1"}',
        '',
        '{"kind": "event", "message_id": "m2"}',
        '{"kind": "sample", "counter_name": "cpu"}',
    ]
    assert notification_plan.parse_dryrun(lines, markers) == {
        'nova.exists': {'samples': 2, 'events': 1},
        'polling': {'samples': 1, 'events': 0}}
