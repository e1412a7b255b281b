"""file:// publisher (publishers.md §4)."""

import ast
import datetime
import json

import pytest

from telemeter.publisher import file as file_publisher
from tests.unit.publisher.helpers import event, samples


def test_one_repr_line_per_sample(make, tmp_path):
    path = tmp_path / 'samples.log'
    publisher = make(f'file://{path}')
    batch = samples('a', 'b')
    publisher.publish_samples(batch)
    lines = path.read_text().splitlines()
    assert [ast.literal_eval(line) for line in lines] == [
        s.as_dict() for s in batch]


def test_json_flag_even_blank(make, tmp_path):
    path = tmp_path / 'samples.json'
    publisher = make(f'file://{path}?json')
    publisher.publish_samples(samples('a'))
    publisher.publish_events([event()])
    sample_line, event_line = path.read_text().splitlines()
    assert json.loads(sample_line)['name'] == 'a'
    decoded = json.loads(event_line)
    assert decoded['message_id'] == 'e1'
    # Events go through as_dict(): traits are dicts, the datetime a str.
    assert decoded['generated'] == '2031-01-01 12:00:00'
    assert decoded['traits'] == [{'name': 'n', 'dtype': 2, 'value': 5}]


def test_event_repr_line(make, tmp_path):
    path = tmp_path / 'events.log'
    publisher = make(f'file://{path}')
    publisher.publish_events([event('e9')])
    assert "'message_id': 'e9'" in path.read_text()


def test_rotation_needs_both_parameters(make, tmp_path):
    path = tmp_path / 'rotating.log'
    publisher = make(f'file://{path}?max_bytes=400&backup_count=2')
    # Each line is 284 bytes and 284 + 284 > 400, so every record after
    # the first rotates: 5 records leave the newest in the file, the two
    # before it in the backups and the oldest two deleted.
    for name in 'abcde':
        publisher.publish_samples(samples(name))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'rotating.log', 'rotating.log.1', 'rotating.log.2']
    assert "'name': 'e'" in path.read_text()
    assert "'name': 'd'" in (tmp_path / 'rotating.log.1').read_text()
    assert "'name': 'c'" in (tmp_path / 'rotating.log.2').read_text()
    assert len(str(samples('a')[0].as_dict())) + 1 == 284

    single = tmp_path / 'single.log'
    publisher = make(f'file://{single}?max_bytes=400')
    for name in 'abcde':
        publisher.publish_samples(samples(name))
    assert len(single.read_text().splitlines()) == 5
    assert not (tmp_path / 'single.log.1').exists()


def test_bad_numbers_and_missing_path_disable_it(make, tmp_path, caplog):
    bad = make(f'file://{tmp_path / "x.log"}?max_bytes=ten&backup_count=2')
    bad.publish_samples(samples('a'))
    assert 'max_bytes and backup_count should be numbers.' in caplog.text
    assert not (tmp_path / 'x.log').exists()
    empty = make('file://')
    empty.publish_samples(samples('a'))
    empty.publish_events([event()])
    assert 'The path for the file publisher is required' in caplog.text


def test_two_files_do_not_share_lines(make, tmp_path):
    one = make(f'file://{tmp_path / "one.log"}')
    two = make(f'file://{tmp_path / "two.log"}')
    one.publish_samples(samples('first'))
    two.publish_samples(samples('second'))
    assert len((tmp_path / 'one.log').read_text().splitlines()) == 1
    assert len((tmp_path / 'two.log').read_text().splitlines()) == 1


def test_unwritable_path_is_logged(make, tmp_path, caplog):
    publisher = make(f'file://{tmp_path / "missing-dir" / "x.log"}')
    publisher.publish_samples(samples('a'))
    assert 'The file publisher cannot open' in caplog.text


@pytest.mark.parametrize('data', [
    {'name': 'cpu', 'volume': 1.5, 'resource_metadata': {'a': [1, None]}},
    {'generated': datetime.datetime(2026, 1, 2, 3, 4, 5, 678901),
     'traits': [{'name': 't', 'dtype': 4,
                 'value': datetime.datetime(2026, 1, 1)}]},
    {'big': 2 ** 70, 'text': 'é\u2028"'},
    {1: 'int key'},
])
def test_json_lines_hold_what_json_dumps_holds(data):
    line = file_publisher.json_line(data)
    assert '\n' not in line
    assert json.loads(line) == json.loads(json.dumps(data, default=str))
