"""Transformer expressions (scale, expr) through the one sandbox,
telemeter.expression, and the Namespace they see (transformers.md §1)."""

import pytest

from telemeter import transformer
from telemeter.expression import Expression, ExpressionError
from telemeter.transformer import Namespace

SEED = {'volume': 10, 'name': 'cpu',
        'resource_metadata': {'cpu_number': 4, 'flavor': {'ram': 2048}},
        '_cpu_util_ESC': {'volume': 3}, '__class_ESC_ESC': {'volume': 5}}


def _eval(text, seed=SEED):
    return Expression(text).evaluate(Namespace(seed))


@pytest.mark.parametrize('text, expected', [
    # 100 / (10**9 * 4) = 2.5e-08
    ('100.0 / (10**9 * (resource_metadata.cpu_number or 1))', 2.5e-08),
    ('volume * 2 if volume > 5 else 0', 20),
    ('volume // 3 + volume % 3 - -1', 3 + 1 + 1),
    ('volume ** 2', 100),
    ('resource_metadata.flavor.ram / 1024', 2.0),
    ("resource_metadata['cpu_number'] + 1", 5),
    ('resource_metadata.missing.deeper or 7', 7),
    ('_cpu_util_ESC.volume + __class_ESC_ESC.volume', 8),
    # 3 + 1 + 2 + 3 + 1
    ('abs(-3) + min(1, 2) + max(1, 2) + round(2.6) + int(1.9)', 10),
    ("float('1.5') * 2", 3.0),
    ('not volume and 1 or 2', 2),
    ('1 < volume <= 10 != 11', True),
    ("name == 'cpu' and 'c' in name", True),
    ('None', None),
    # The grammar the dynamic pollsters have too (one sandbox):
    ('[volume, 1][0] + {"a": 2}["a"]', 12),
    ('f"{volume}"', '10'),
    ('volume.bit_length()', 4),
    ('round(volume / 3, ndigits=1)', 3.3),
    ('name.upper()', 'CPU'),
    ('volume is None', False),
])
def test_accepted_grammar(text, expected):
    assert _eval(text) == expected


@pytest.mark.parametrize('text, what', [
    ('__import__("os").system("true")', 'calling __import__'),
    ('open("/etc/passwd")', 'calling open'),
    ('volume.__class__', "the attribute '__class__'"),
    ('resource_metadata._data', "the attribute '_data'"),
    ('(lambda: 1)()', 'calling lambda: 1'),
    ('[x for x in name]', 'ListComp'),
    ('"{0.__class__}".format(name)', "the attribute 'format'"),
    ('max(*name)', 'argument unpacking'),
    ('dict(**resource_metadata)', 'argument unpacking'),
    ('volume << 2', 'LShift'),
    ('volume @ 2', 'MatMult'),
    ('x := 1', 'invalid expression'),
    ('volume +', 'invalid expression'),
])
def test_rejected_at_parse_time_with_the_expression_named(text, what):
    with pytest.raises(ExpressionError) as info:
        Expression(text)
    assert what in str(info.value)
    assert repr(text) in str(info.value)


def test_names_come_only_from_the_namespace_data():
    # A bare dunder name is just an absent key: an empty, falsy Namespace.
    assert _eval('__class__') == Namespace()
    assert not _eval('__class__')
    assert _eval('__class__ or 1') == 1


def test_huge_integer_powers_fail_fast_instead_of_hanging():
    with pytest.raises(ExpressionError, match='exponent'):
        _eval('2 ** 10 ** 10')


def test_namespace_semantics():
    ns = Namespace({'a': {'b': {'c': 1}}, 'empty': {}})
    assert ns.a.b.c == 1
    assert ns['a']['b']['c'] == 1
    assert isinstance(ns.a.b, Namespace)
    assert not ns.missing and not ns.a.missing.deeper
    assert not ns.empty
    assert ns.a
    assert transformer.Namespace is Namespace


def test_public_contract_module_paths():
    import telemeter.transformer.conversions as conversions

    assert conversions.RateOfChangeTransformer.__name__ == (
        'RateOfChangeTransformer')
    assert transformer.accumulator.TransformerAccumulator
    assert transformer.arithmetic.ArithmeticTransformer
