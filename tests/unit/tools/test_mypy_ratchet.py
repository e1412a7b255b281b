"""tools/mypy_ratchet.py on given mypy output: mypy is never run here."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tools import mypy_ratchet as ratchet

OUTPUT = """\
telemeter/storage/impl_sqlalchemy.py:10: error: Incompatible types in \
assignment (expression has type "int", variable has type "str")  [assignment]
telemeter/storage/impl_sqlalchemy.py:10: note: See https://example.invalid
telemeter/storage/mongo/connection.py:7:5: error: Missing return  [return]
telemeter/sample.py:225: error: Argument 1 has incompatible type  [arg-type]
telemeter/sample.py:226: warning: unused "type: ignore" comment
telemeter/__init__.py:3:1:3:9: error: Name "x" is not defined  [name-defined]
telemeter/publisher/udp.py:1: note: In module imported here:
Found 4 errors in 4 files (checked 195 source files)
"""


def _report(counts, lines=None):
    counts = Counter(counts)
    return ratchet.MypyReport(counts, lines or {}, sum(counts.values()))


@pytest.mark.parametrize(('path', 'area'), [
    ('telemeter/storage/impl_sqlalchemy.py', 'telemeter/storage'),
    ('telemeter/storage/mongo/connection.py', 'telemeter/storage'),
    ('telemeter/sample.py', 'telemeter/sample.py'),
    ('telemeter/__init__.py', 'telemeter/__init__.py'),
    ('./telemeter/publisher/udp.py', 'telemeter/publisher'),
    ('telemeter\\notification\\meters.py', 'telemeter/notification'),
    ('tools/capacity.py', ratchet.OTHER),
    ('/usr/lib/python3/dist-packages/yaml/__init__.pyi', ratchet.OTHER),
])
def test_area_of(path, area):
    assert ratchet.area_of(path) == area


def test_area_of_an_absolute_path_inside_the_repo(tmp_path):
    path = str(tmp_path / 'telemeter' / 'api' / 'app.py')
    assert ratchet.area_of(path, root=tmp_path) == 'telemeter/api'


def test_parse_counts_errors_per_area_and_keeps_their_notes():
    report = ratchet.parse_output(OUTPUT)
    assert report.counts == {'telemeter/storage': 2,
                             'telemeter/sample.py': 1,
                             'telemeter/__init__.py': 1}
    assert report.total == report.summary_total == 4
    # a note follows its error; a warning is neither counted nor kept
    assert report.lines['telemeter/storage'][1].endswith(
        'note: See https://example.invalid')
    assert len(report.lines['telemeter/sample.py']) == 1
    # a note after an error of another area stays with that error
    assert report.lines['telemeter/__init__.py'][-1].startswith(
        'telemeter/publisher/udp.py:1: note:')
    ratchet.check_report(report, OUTPUT)


def test_parse_success_and_a_lone_error():
    report = ratchet.parse_output(
        'Success: no issues found in 195 source files\n')
    assert (report.counts, report.summary_total) == ({}, 0)
    report = ratchet.parse_output(
        'telemeter/utils.py:1: error: x  [misc]\n'
        'Found 1 error in 1 file (checked 195 source files)\n')
    assert (report.counts, report.summary_total) == (
        {'telemeter/utils.py': 1}, 1)


@pytest.mark.parametrize('text', [
    '',                                                     # no summary
    'Traceback (most recent call last):\n',
    'telemeter/a.py:1: error: x  [misc]\nFound 2 errors in 1 file\n',
])
def test_output_that_cannot_be_trusted(text):
    with pytest.raises(ratchet.RatchetError):
        ratchet.check_report(ratchet.parse_output(text), text)


def test_compare_up_down_equal_new_and_gone():
    rows = ratchet.compare(
        {'telemeter/storage': 5, 'telemeter/api': 3, 'telemeter/gone.py': 1,
         'telemeter/sample.py': 0},
        {'telemeter/storage': 6, 'telemeter/api': 1, 'telemeter/new': 2},
        areas=['telemeter/sample.py', 'telemeter/data'])
    assert [(r.area, r.baseline, r.now, r.delta) for r in rows] == [
        ('telemeter/api', 3, 1, -2),
        ('telemeter/data', 0, 0, 0),
        ('telemeter/gone.py', 1, 0, -1),
        ('telemeter/new', 0, 2, 2),
        ('telemeter/sample.py', 0, 0, 0),
        ('telemeter/storage', 5, 6, 1),
    ]
    assert [r.area for r in ratchet.went_up(rows)] == [
        'telemeter/new', 'telemeter/storage']
    assert [r.area for r in ratchet.went_down(rows)] == [
        'telemeter/api', 'telemeter/gone.py']


def test_verdict_up_names_the_area_and_lists_its_errors():
    baseline = ratchet.Baseline({'telemeter/storage': 1,
                                 'telemeter/api': 9}, '2.4.1')
    line = 'telemeter/storage/x.py:1: error: boom  [misc]'
    report = _report({'telemeter/storage': 2, 'telemeter/api': 1},
                     {'telemeter/storage': [line, line]})
    rows = ratchet.compare(baseline.areas, report.counts)
    code, message = ratchet.verdict(rows, report, baseline, '2.4.1')
    assert code == ratchet.EXIT_UP
    assert 'telemeter/storage (1 -> 2)' in message
    assert 'telemeter/api' not in message  # it went down: not the culprit
    assert f'    {line}' in message
    assert '--update' in message
    assert 'mypy 2.4.1' not in message  # same version: no hint


def test_verdict_up_hints_at_a_new_mypy_and_at_missing_imports():
    baseline = ratchet.Baseline({'telemeter/api': 0}, '2.4.1')
    line = ('telemeter/api/app.py:3: error: Cannot find implementation or '
            'library stub for module named "webob"  [import-not-found]')
    report = _report({'telemeter/api': 1}, {'telemeter/api': [line]})
    rows = ratchet.compare(baseline.areas, report.counts)
    code, message = ratchet.verdict(rows, report, baseline, '2.5.0')
    assert code == ratchet.EXIT_UP
    assert 'written with mypy 2.4.1; this is mypy 2.5.0' in message
    assert 'dependency missing' in message


def test_verdict_down_passes_and_says_how_to_lower_the_baseline():
    baseline = ratchet.Baseline({'telemeter/api': 3,
                                 'telemeter/storage': 2}, '2.4.1')
    report = _report({'telemeter/api': 1, 'telemeter/storage': 2})
    rows = ratchet.compare(baseline.areas, report.counts)
    code, message = ratchet.verdict(rows, report, baseline, '2.4.1')
    assert code == ratchet.EXIT_OK
    assert 'telemeter/api (3 -> 1)' in message
    assert 'telemeter/storage' not in message
    assert 'tools/mypy_ratchet.py --update' in message


def test_verdict_equal_passes():
    baseline = ratchet.Baseline({'telemeter/api': 3}, '2.4.1')
    report = _report({'telemeter/api': 3})
    rows = ratchet.compare(baseline.areas, report.counts)
    assert ratchet.verdict(rows, report, baseline, '2.4.1') == (
        ratchet.EXIT_OK, 'mypy ratchet passed: 3 errors, as in the baseline.')


def test_table():
    table = ratchet.format_table(ratchet.compare(
        {'telemeter/api': 3, 'telemeter/storage': 1},
        {'telemeter/api': 1, 'telemeter/storage': 4}))
    lines = table.splitlines()
    assert lines[0].split() == ['area', 'baseline', 'now', 'delta']
    assert lines[2].split() == ['telemeter/api', '3', '1', '-2', 'down']
    assert lines[3].split() == ['telemeter/storage', '1', '4', '+3', 'UP']
    assert lines[-1].split() == ['total', '4', '5', '+1', 'UP']


def test_write_then_load_the_baseline(tmp_path):
    path = tmp_path / 'ratchet.json'
    ratchet.write_baseline(path, Counter({'telemeter/api': 2}),
                           ['telemeter/api', 'telemeter/sample.py'], '2.4.1')
    data = json.loads(path.read_text())
    assert (data['total'], data['mypy'], data['areas']) == (
        2, '2.4.1', {'telemeter/api': 2, 'telemeter/sample.py': 0})
    baseline = ratchet.load_baseline(path)
    assert baseline == ratchet.Baseline(
        {'telemeter/api': 2, 'telemeter/sample.py': 0}, '2.4.1')


@pytest.mark.parametrize('content', [
    None,                                                # missing
    'not json',
    '[]',
    '{"total": 1, "areas": {"telemeter/api": -1}}',
    '{"total": 1, "areas": {"telemeter/api": "1"}}',
    '{"total": 5, "areas": {"telemeter/api": 1}}',       # total is off
])
def test_a_bad_baseline_is_an_error(tmp_path, content):
    path = tmp_path / 'ratchet.json'
    if content is not None:
        path.write_text(content)
    with pytest.raises(ratchet.RatchetError):
        ratchet.load_baseline(path)


def test_areas_on_disk(tmp_path):
    pkg = tmp_path / 'telemeter'
    for sub in ('storage', 'api'):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / '__init__.py').write_text('')
    (pkg / 'templates').mkdir()                # not a package
    for name in ('__init__.py', 'sample.py', 'README.txt'):
        (pkg / name).write_text('')
    assert ratchet.areas_on_disk(tmp_path) == [
        'telemeter/__init__.py', 'telemeter/api', 'telemeter/sample.py',
        'telemeter/storage']


def test_main_check_and_update_on_saved_output(tmp_path, capsys):
    baseline = tmp_path / 'ratchet.json'
    output = tmp_path / 'mypy.txt'
    output.write_text(OUTPUT)
    argv = ['--baseline', str(baseline), '--mypy-output', str(output)]

    assert ratchet.main(argv) == ratchet.EXIT_BROKEN       # no baseline yet
    assert 'no baseline' in capsys.readouterr().err

    assert ratchet.main([*argv, '--update']) == ratchet.EXIT_OK
    areas = json.loads(baseline.read_text())['areas']
    assert areas['telemeter/storage'] == 2
    assert areas['telemeter/publisher'] == 0      # zeros are written too
    assert ratchet.main(argv) == ratchet.EXIT_OK
    assert 'as in the baseline' in capsys.readouterr().out

    output.write_text(OUTPUT.replace('Found 4 errors', 'Found 5 errors')
                      + 'telemeter/sample.py:9: error: new  [misc]\n')
    assert ratchet.main(argv) == ratchet.EXIT_UP
    err = capsys.readouterr().err
    assert 'telemeter/sample.py (1 -> 2)' in err
    assert 'telemeter/sample.py:9: error: new' in err

    output.write_text('telemeter/sample.py:1: error: x  [misc]\n'
                      'Found 1 error in 1 file\n')
    assert ratchet.main(argv) == ratchet.EXIT_OK
    out = capsys.readouterr().out
    assert 'telemeter/storage (2 -> 0)' in out
    assert '--update' in out


def test_mypy_missing(monkeypatch):
    monkeypatch.setattr(ratchet.importlib.util, 'find_spec',
                        lambda name: None)
    with pytest.raises(ratchet.RatchetError, match='not installed'):
        ratchet.mypy_version()
