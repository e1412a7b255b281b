"""telemeter.utils helpers."""

import datetime
import decimal

import pytest
from oslo_utils import timeutils

from telemeter import utils


def test_recursive_keypairs_sorted_and_nested():
    data = {'b': {'y': 2, 'x': {'z': 1}}, 'a': ['q'], 'c': {}}
    assert list(utils.recursive_keypairs(data)) == [
        ('a', [b'q']), ('b:x:z', 1), ('b:y', 2)]
    assert list(utils.recursive_keypairs({'a': {'b': 1}}, '.')) == [
        ('a.b', 1)]


def test_decode_unicode():
    assert utils.decode_unicode({'b': 'x', 'a': (b'y', 1)}) == {
        b'a': ['y', 1], b'b': b'x'}
    assert list(utils.decode_unicode({'b': 1, 'a': 2})) == [b'a', b'b']


def test_restore_nesting_inverts_flattening():
    flat = dict(utils.recursive_keypairs({'a': {'b': 1, 'c': {'d': 2}}}))
    assert utils.restore_nesting(flat) == {'a': {'b': 1, 'c': {'d': 2}}}
    assert utils.restore_nesting({'plain': 1}) == {'plain': 1}


def test_dict_to_keyval():
    assert sorted(utils.dict_to_keyval(
        {'a': {'b': 1}, 'l': ['x', {'y': 2}]})) == [
        ('a.b', 1), ('l[0]', 'x'), ('l[1].y', 2)]


def test_sanitize_timestamp_normalises_to_naive_utc():
    expected = datetime.datetime(2031, 1, 1, 10, 0, 0)
    assert utils.sanitize_timestamp('2031-01-01T12:00:00+02:00') == expected
    assert utils.sanitize_timestamp('2031-01-01T10:00:00Z') == expected
    assert utils.sanitize_timestamp(
        datetime.datetime(2031, 1, 1, 10, tzinfo=datetime.UTC)) == expected
    assert utils.sanitize_timestamp(None) is None


def _iso8601(text):
    """What the ISO 8601 parser behind sanitize_timestamp makes of text."""
    try:
        return timeutils.normalize_time(timeutils.parse_isotime(text))
    except (ValueError, OverflowError) as err:
        return type(err)


# The spellings datetime.isoformat() writes, and near misses.
ISO_SPELLINGS = [
    '2031-01-02T03:04:05', '2031-01-02 03:04:05', '2031-01-02T03:04:05Z',
    '2031-01-02T03:04:05.123456', '2031-01-02T03:04:05.000001Z',
    '2031-01-02T03:04:05+00:00', '2031-01-02T03:04:05-00:00',
    '2031-01-02T03:04:05.123456+00:00', '2031-01-02T03:04:05.5+02:00',
    '2031-01-02T03:04:05+05:30', '2031-01-02T03:04:05.123456-11:45',
    '2031-01-02T23:59:59.999999-23:59', '0001-01-01T00:00:00+00:01',
    '9999-12-31T23:59:59.999999-01:00', '2031-01-02T03:04:05.123Z',
    '2031-01-02T03:04:05.123+02', '2031-01-02T03:04:05.1234567',
    '2031-01-02T03:04:05,123456', '2031-01-02x03:04:05',
    '2031-01-02T03:04:05.12345Z', '2031-02-30T03:04:05',
    '2031-01-02T24:00:00', '2031-01-02T03:04:05+24:00',
    '20310102T030405Z', '2031-W01-1T03:04:05', '2031-01-02T03:04:05+0200',
    '2031-01-02T03:04:05.12345\u0663', '2031-01-02T03:04:05ZZ',
    '2031-01-02T03:04', '2031-01-02',
]


@pytest.mark.parametrize('text', ISO_SPELLINGS)
def test_canonical_isotime_agrees_with_the_iso8601_parser(text):
    """The fast path parses only spellings on which it gives exactly what
    the ISO 8601 parser gives; sanitize_timestamp decides the rest as
    before."""
    fast = utils.canonical_isotime(text)
    expected = _iso8601(text)
    if fast is not None:
        assert fast == expected
        assert fast.tzinfo is None
    if isinstance(expected, type):
        with pytest.raises(expected):
            utils.sanitize_timestamp(text)
    else:
        assert utils.sanitize_timestamp(text) == expected


def test_canonical_isotime_takes_what_isoformat_writes():
    moment = datetime.datetime(2031, 1, 2, 3, 4, 5, 123456)
    for when in (moment, moment.replace(microsecond=0)):
        assert utils.canonical_isotime(when.isoformat()) == when
        assert utils.canonical_isotime(when.isoformat(' ')) == when
        aware = when.replace(tzinfo=datetime.timezone(
            datetime.timedelta(hours=-3, minutes=-30)))
        assert utils.canonical_isotime(aware.isoformat()) == (
            when + datetime.timedelta(hours=3, minutes=30))
        utc = when.replace(tzinfo=datetime.UTC).isoformat()
        assert utils.canonical_isotime(utc) == when
        assert utils.canonical_isotime(utc[:-6] + 'Z') == when
    # Left to the ISO 8601 parser (which reads them the same).
    assert utils.canonical_isotime('20310102T030405Z') is None
    assert utils.sanitize_timestamp('20310102T030405Z') == (
        datetime.datetime(2031, 1, 2, 3, 4, 5))


def test_decimal_round_trip_keeps_microseconds():
    moment = datetime.datetime(2031, 5, 6, 7, 8, 9, 101112)
    dec = utils.dt_to_decimal(moment)
    assert dec == decimal.Decimal('1935817689.101112')
    assert utils.decimal_to_dt(dec) == moment
    assert utils.dt_to_decimal(None) is None
    assert utils.decimal_to_dt(None) is None


def test_update_nested_deep_merges_without_touching_input():
    original = {'a': {'b': 1, 'c': 2}, 'd': 3}
    merged = utils.update_nested(original, {'a': {'c': 4}, 'e': 5})
    assert merged == {'a': {'b': 1, 'c': 4}, 'd': 3, 'e': 5}
    assert original == {'a': {'b': 1, 'c': 2}, 'd': 3}


def test_lazy_module_imports_on_first_use(monkeypatch):
    import sys
    monkeypatch.delitem(sys.modules, 'colorsys', raising=False)
    lazy = utils.LazyModule('colorsys')
    assert 'colorsys' not in sys.modules
    assert lazy.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert 'colorsys' in sys.modules


def test_daemons_do_not_load_snmp_or_libvirt_for_their_options():
    import subprocess
    import sys
    code = ('import sys, telemeter.cmd; from telemeter import service; '
            'from oslo_config import cfg; '
            "service.prepare_service(argv=['x'], config_files=[], "
            'conf=cfg.ConfigOpts()); '
            "print(sorted(m for m in ('pysnmp', 'libvirt', 'eventlet', "
            "'alembic') if sys.modules.get(m)))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == '[]'


@pytest.mark.parametrize('text', ISO_SPELLINGS)
def test_parse_isotime_is_oslo_utils_parse_isotime(text):
    from oslo_utils import timeutils
    try:
        expected = timeutils.parse_isotime(text)
    except ValueError:
        with pytest.raises(ValueError):
            utils.parse_isotime(text)
        return
    ours = utils.parse_isotime(text)
    assert ours == expected
    assert ours.utcoffset() == expected.utcoffset()
    assert ours.isoformat() == expected.isoformat()
