"""tools/bench/e2e/sender_group.py: several senders seen as one."""

from __future__ import annotations

from tools.bench.e2e import accounting, sender_group


def test_merge_series_sums_senders_at_every_report_time():
    one = [(0.0, 0, 0), (2.0, 2, 100)]
    two = [(1.0, 0, 0), (3.0, 4, 200)]
    merged = sender_group.merge_series([one, two])
    assert [m[0] for m in merged] == [0.0, 1.0, 2.0, 3.0]
    assert merged[1] == (1.0, 1.0, 50.0)
    assert merged[2] == (2.0, 4.0, 200.0)
    assert merged[3] == (3.0, 6.0, 300.0)


def test_merge_finals():
    finals = [
        {'notifications': 2, 'samples': 100, 'errors': 0, 'done': True,
         'sent_ranges': [[0, 50], [50, 100]], 'meter_counts': {'cpu': 100},
         'meter_resources': {'cpu': 60}},
        {'notifications': 1, 'samples': 50, 'errors': 1, 'done': True,
         'sent_ranges': [[accounting.SEQ_SPAN, accounting.SEQ_SPAN + 50]],
         'meter_counts': {'cpu': 50}, 'meter_resources': {'cpu': 40}}]
    merged = sender_group.merge_finals(finals)
    assert merged['samples'] == 150 and merged['errors'] == 1
    span = accounting.SEQ_SPAN
    assert merged['sent_ranges'] == [(0, 100), (span, span + 50)]
    assert merged['meter_counts'] == {'cpu': 150}
    assert merged['meter_resources'] == {'cpu': 100}
