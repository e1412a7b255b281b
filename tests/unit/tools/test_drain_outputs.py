"""tools/bench/drain/outputs.py: line counting of growing files, JSON
checks, listening sockets; report.py: the table cells."""

from __future__ import annotations

from tools.bench.drain import outputs, report


def test_line_counter_counts_complete_lines_only(tmp_path):
    path = tmp_path / 'samples.jsonl'
    counter = outputs.LineCounter(path)
    assert counter.poll() == 0
    outputs.truncate(path)
    with open(path, 'ab') as stream:
        stream.write(b'{"a": 1}\n{"a": 2}\n{"a"')
    assert counter.poll() == 2
    with open(path, 'ab') as stream:
        stream.write(b': 3}\n')
    assert counter.poll() == 3
    assert counter.poll() == 3


def test_bad_json_lines(tmp_path):
    path = tmp_path / 'events.jsonl'
    path.write_bytes(b'{"a": 1}\n{"a": \n[1]\n{"b": 2}\n')
    assert outputs.bad_json_lines(path) == 2


def test_listening_inodes_reads_a_proc_net_table(tmp_path):
    table = tmp_path / 'tcp'
    table.write_text(
        '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when '
        'retrnsmt   uid  timeout inode\n'
        '   0: 0100007F:1680 00000000:0000 0A 00000000:00000000 00:00000000 '
        '00000000     0        0 4242 1 0 100 0 0 10 0\n'
        '   1: 0100007F:1680 0100007F:D2F0 01 00000000:00000000 00:00000000 '
        '00000000     0        0 4343 1 0 20 4 30 10 -1\n'
        '   2: 0100007F:1681 00000000:0000 0A 00000000:00000000 00:00000000 '
        '00000000     0        0 4444 1 0 100 0 0 10 0\n')
    assert outputs.listening_inodes(str(table), 5760) == {'4242'}
    assert outputs.listening_inodes(str(tmp_path / 'none'), 5760) == set()


def test_table_cells():
    assert report.cell(None, 5, '.2f') == '    -'
    assert report.cell(1234.56, 9, ',.1f') == '  1,234.6'
    lines = report.table([{'run': 1, 'workers': 2, 'messages_per_s': 10.0}])
    assert len(lines) == 2
    assert len(lines[0]) == len(lines[1])
