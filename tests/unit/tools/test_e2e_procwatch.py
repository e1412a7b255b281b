"""tools/bench/e2e/procwatch.py: /proc sampling of process trees."""

from __future__ import annotations

import os

from tools.bench.e2e import procwatch


def test_proc_watch_reads_this_process():
    watch = procwatch.ProcWatch()
    watch.track('me', os.getpid(), baseline=True)
    watch.sample()
    watch.mark('window_start')
    sum(range(200_000))
    watch.sample()
    watch.mark('window_end')
    summary = watch.summary()['me']
    [me] = [p for p in summary['processes'] if p['role'] == 'master']
    assert me['peak_rss_mb'] > 10
    assert me['peak_hwm_mb'] >= me['peak_rss_mb'] - 1
    assert 0 <= summary['cpu_s_window'] <= summary['cpu_s'] + 0.01


def test_descendants():
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 11, 20: 1}
    assert procwatch.descendants(10, parents) == [10, 11, 12, 13]
    assert procwatch.descendants(99, parents) == [99]


def test_stat_fields_skip_a_command_name_with_spaces_and_parentheses():
    fields = procwatch.stat_fields('42 (tele) (w 1)) S 7 42 42 0 -1 4194560')
    assert fields[:2] == ['S', '7']


def test_masters_first():
    records = [procwatch.ProcRecord(pid, '', role)
               for pid, role in ((30, 'worker'), (20, 'master'),
                                 (10, 'worker'))]
    assert [r.pid for r in procwatch.masters_first(records)] == [20, 10, 30]
