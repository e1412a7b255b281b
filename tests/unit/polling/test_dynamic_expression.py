"""Dynamic pollster operations through the one sandbox,
telemeter.expression, and the response helpers."""

from __future__ import annotations

import pytest

from telemeter import expression
from telemeter.polling.dynamic import responses


@pytest.mark.parametrize('text,value,expected', [
    ('value * 1024', 10, 10240),           # 10 GB -> 10240 MB
    ('value / 8', 100, 12.5),               # bits -> bytes: 100 / 8
    ('value // 3 + value % 3', 10, 4),      # 3 + 1
    ('-value ** 2', 3, -9),
    ('value.lower().strip()', ' ACTIVE ', 'active'),
    ('value.split(",")[1]', 'a,b,c', 'b'),
    ('1 if value == "up" else 0', 'up', 1),
    ('1 if value == "up" else 0', 'down', 0),
    ('value["k"]["n"]', {'k': {'n': 5}}, 5),
    ('value[1:3]', [1, 2, 3, 4], [2, 3]),
    ('int(value) + float("0.5")', '2', 2.5),
    ('len(value) > 2 and not False', 'abc', True),
    ('max([value, 3]) in (3, 7)', 7, True),
    ('f"{value:.1f}%"', 12.345, '12.3%'),
    ('round(sum(value) / len(value), 2)', [1, 2, 2], 1.67),
    ('value.get("x", "none")', {}, 'none'),
    ('1 < value <= 3', 3, True),
    ('{"a": value}["a"]', 4, 4),
])
def test_allowed_expressions(text, value, expected):
    assert expression.evaluate(text, value=value) == expected


@pytest.mark.parametrize('text', [
    '__import__("os").system("true")',
    'value.__class__',
    '"{0.__class__}".format(value)',
    'open("/etc/passwd")',
    'lambda: 1',
    '[x for x in value]',
    'exec("1")',
    'value.__len__()',
    '(1).__class__.__bases__',
    'globals()',
    'x',
    '2 ** 100000',
    '"a" * 10000000',
    'max(*value)',
    'dict(**value)',
])
def test_forbidden_expressions(text):
    with pytest.raises(expression.ExpressionError):
        expression.evaluate(text, value=[1, 2])


def test_runtime_errors_and_syntax_are_expression_errors():
    with pytest.raises(expression.ExpressionError, match='ZeroDivision'):
        expression.evaluate('value / 0', value=1)
    with pytest.raises(expression.ExpressionError, match='invalid'):
        expression.evaluate('value +', value=1)
    with pytest.raises(expression.ExpressionError, match='invalid'):
        expression.check('(')
    expression.check('value * 2')


def test_attribute_paths_and_operations():
    entry = {'a': {'b': [{'c': 3}, {'c': 4}]}, 'n': '7'}
    assert responses.walk(entry, 'a.b.1.c') == 4
    assert responses.walk(entry, '.') is entry
    assert responses.walk(entry, 'a.missing') is None
    assert responses.walk(entry, 'a.b.9') is None
    assert responses.walk(entry, 'n.x') is None
    # '7' | int(value) -> 7 | value * 2 -> 14
    assert responses.resolve(entry, 'n | int(value) | value * 2') == 14
    assert responses.split_operations('x.y | a | b') == ('x.y', ['a', 'b'])
    # operations see the whole entry too
    assert responses.resolve(entry, 'a.b.0.c | value + int(entry["n"])',
                             entry=entry) == 10


def test_response_handlers():
    assert responses.decode('{"a": 1}', ['json']) == {'a': 1}
    assert responses.decode('not json', ['json', 'text']) == {
        'out': 'not json'}
    xml = '<r x="1"><i id="a">t</i><i id="b"/><n>5</n></r>'
    assert responses.decode(xml, ['xml']) == {'r': {
        'x': '1', 'i': [{'id': 'a', 'text': 't'}, {'id': 'b'}], 'n': '5'}}
    with pytest.raises(responses.ResponseError, match='json'):
        responses.decode('<r/>', ['json'])
    with pytest.raises(responses.ResponseError, match='DOCTYPE'):
        responses.decode('<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>',
                         ['xml'])


@pytest.mark.parametrize('text,message', [
    ('x + 1', "unknown name 'x'"),
    ('value.__class__', 'attribute'),
    ('"{0}".format(value)', 'attribute'),
    ('[v for v in value]', 'ListComp'),
    ('lambda: value', 'Lambda'),
    ('__import__("os")', 'calling __import__'),
])
def test_static_check_rejects_before_running(text, message):
    with pytest.raises(expression.ExpressionError, match=message):
        responses.OPERATIONS.check(text)


def test_static_check_accepts_builtins_and_bound_names():
    responses.OPERATIONS.check('int(value) * 2 + len(entry)')
    responses.OPERATIONS.check('value.strip().lower() in ("a", "b")')
