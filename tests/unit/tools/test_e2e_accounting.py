"""tools/bench/e2e/accounting.py: numbered message ids, lost / duplicated
/ unexpected samples, derived samples expected."""

from __future__ import annotations

import random
import uuid

from tools.bench.e2e import accounting


def test_message_ids_are_uuids_that_give_their_number_back():
    prefix = accounting.make_id_prefix(random.Random(3))
    for seq in (0, 1, 123_456, 2 ** 40):
        message_id = accounting.make_message_id(prefix, seq)
        assert str(uuid.UUID(message_id)) == message_id
        assert accounting.parse_message_id(prefix, message_id) == seq
    assert accounting.parse_message_id(prefix, str(uuid.uuid4())) is None
    assert accounting.parse_message_id(prefix, None) is None
    assert accounting.parse_message_id(prefix, prefix + 'zz') is None


def test_count_delivery_lost_duplicated_unexpected():
    sent = [(0, 10), (20, 25)]
    stored = [0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 20, 21, 22, 23, 24, 24, 24, 99]
    result = accounting.count_delivery(sent, stored)
    assert result.sent == 15
    assert result.stored_rows == 18
    assert result.stored_distinct == 15
    assert result.lost == 1
    assert result.lost_examples == [9]
    assert result.duplicated == 3
    assert result.unexpected == 1


def test_count_delivery_everything_stored_once():
    result = accounting.count_delivery([(0, 1000)], range(1000))
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0)


def test_ranges_merge_and_membership():
    merged = accounting.merge_ranges(
        [(5, 8), (0, 3), (3, 4), (7, 10), (12, 12)])
    assert merged == [(0, 4), (5, 10)]
    assert [v for v in range(12) if accounting.in_ranges(merged, v)] == \
        [0, 1, 2, 3, 5, 6, 7, 8, 9]


def test_expected_derived_skips_each_resources_first_sample():
    counts = {'cpu': 3000, 'memory.usage': 3000, 'disk.read.bytes': 2500}
    resources = {'cpu': 1000, 'memory.usage': 1000, 'disk.read.bytes': 1000}
    assert accounting.expected_derived(counts, resources) == 2 * 2000 + 1500
