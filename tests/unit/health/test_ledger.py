"""The ledger: readings from sources at scrape time, derived readings,
label rules, and pipeline counts that survive a reload."""

import pytest

from telemeter.health import ledger, pipelines
from telemeter.health.ledger import reading, total


class Counts:
    received = 0
    dropped = 0


def test_sources_are_read_at_every_call():
    counts = Counts()
    book = ledger.Ledger('collector', 2)
    book.add(lambda: [reading('received', counts.received, stage='bus',
                              kind='sample')])
    assert total(book.readings(), 'received') == 0
    counts.received = 7
    assert total(book.readings(), 'received', stage='bus') == 7
    assert (book.daemon, book.worker) == ('collector', 2)


def test_a_failing_source_leaves_out_only_its_readings(caplog):
    book = ledger.Ledger('collector')

    def broken():
        raise RuntimeError('boom')
    book.add(broken)
    book.add(lambda: [reading('received', 1, stage='udp', kind='sample')])
    assert [r.value for r in book.readings()] == [1]
    assert 'Reading the counts of' in caplog.text


def test_derived_readings_see_the_sources():
    book = ledger.Ledger('collector')
    book.add(lambda: [reading('received', 10, stage='bus', kind='sample'),
                      reading('dispatched', 8, stage='bus', kind='sample')])
    book.derive(lambda found: [reading(
        'unsettled', total(found, 'received') - total(found, 'dispatched'),
        stage='bus', kind='sample')])
    assert total(book.readings(), 'unsettled') == 2


def test_labels_follow_the_family():
    item = reading('dropped', 3, stage='udp', kind='sample',
                   reason='overflow')
    assert item.labels == (('stage', 'udp'), ('kind', 'sample'),
                           ('reason', 'overflow'))
    assert reading('healthy', 1).labels == ()
    # Labels not given are empty, unknown ones refused.
    assert reading('dropped', 0, stage='x').label('reason') == ''
    with pytest.raises(ValueError, match='no label'):
        reading('received', 1, publisher='x')


def test_total_matches_a_subset_of_labels():
    found = [reading('dropped', 1, stage='udp', kind='sample', reason='a'),
             reading('dropped', 2, stage='udp', kind='sample', reason='b'),
             reading('dropped', 4, stage='bus', kind='sample', reason='a')]
    assert total(found, 'dropped') == 7
    assert total(found, 'dropped', stage='udp') == 3
    assert total(found, 'dropped', reason='a') == 5
    assert total(found, 'received') == 0


def test_retired_counters_are_added_gauges_are_not():
    retired = pipelines.Retired()
    retired.absorb([reading('published', 5, stage='sink:s', kind='sample',
                            publisher='test://'),
                    reading('queued', 9, stage='sink:s', kind='sample',
                            publisher='test://')])
    merged = retired.merged([
        reading('published', 2, stage='sink:s', kind='sample',
                publisher='test://'),
        reading('published', 1, stage='sink:new', kind='sample',
                publisher='test://')])
    assert total(merged, 'published', stage='sink:s') == 7
    assert total(merged, 'published', stage='sink:new') == 1
    assert total(merged, 'queued') == 0


@pytest.mark.parametrize('url, label', [
    ('notifier://', 'notifier://'),
    ('notifier://user:secret@broker:5672/vhost?policy=queue',
     'notifier://broker:5672/vhost'),
    ('http://u:p@[::1]:8080/path?timeout=5', 'http://[::1]:8080/path'),
    ('file:///var/log/samples?json', 'file:///var/log/samples'),
])
def test_publisher_labels_carry_no_credentials(url, label):
    assert pipelines.safe_url(url) == label
