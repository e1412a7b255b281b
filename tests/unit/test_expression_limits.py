"""One sandbox, one set of rules: what a pipeline transformer and a
dynamic pollster may write is the same, and so are the limits that keep an
expression from taking the daemon's memory or CPU (issue 16)."""

from __future__ import annotations

import pytest

from telemeter import expression, transformer
from telemeter.polling.dynamic import responses
from telemeter.polling.hardware import snmp
from telemeter.transformer import Namespace


def _in_a_pollster(text, value):
    return responses.OPERATIONS.evaluate(text, value=value)


def _in_a_transformer(text, value):
    return transformer.EXPRESSIONS.expression(text).evaluate(
        Namespace({'value': value}))


CONTEXTS = pytest.mark.parametrize('run', [_in_a_pollster,
                                           _in_a_transformer],
                                   ids=['pollster', 'transformer'])


@CONTEXTS
@pytest.mark.parametrize('text, value, expected', [
    ('value.lower()', 'UP', 'up'),
    ('value ** 2', 12, 144),
    ('10 ** 9', 0, 10 ** 9),
    ('"a" * 3', 0, 'aaa'),
    ('f"{value:>5}"', 'x', '    x'),
    ('value.center(7, "*")', 'x', '***x***'),
])
def test_the_same_expressions_work_in_both(run, text, value, expected):
    assert run(text, value) == expected


@CONTEXTS
@pytest.mark.parametrize('text, value, reason', [
    ('2 ** 100000', 0, 'exponent'),
    ('2.0 ** 100000', 0, 'exponent'),
    ('(10 ** 1000) ** 1000', 0, 'bits'),
    ("'a' * 10 ** 8", 0, 'repetition'),
    ('value * 2000000', 'ab', 'repetition'),
    ('[0] * 10 ** 7', 0, 'repetition'),
    ('f"{value:>100000000}"', 'x', 'format width'),
    ('value.center(10 ** 8)', 'x', 'padding'),
    ('value.zfill(width=10 ** 8)', '1', 'padding'),
    ('value.__class__', 'x', "attribute '__class__'"),
    ('"{0.__class__}".format(value)', 'x', "attribute 'format'"),
    ('__import__("os")', 'x', 'calling __import__'),
    ('value.fromkeys("ab")', {}, 'may be called'),
    ('(lambda: 1)()', 0, 'calling'),
    ('[v for v in value]', 'ab', 'ListComp'),
])
def test_the_same_things_are_refused_in_both(run, text, value, reason):
    with pytest.raises(expression.ExpressionError, match=reason):
        run(text, value)


def test_a_long_or_deep_expression_is_an_expression_error():
    with pytest.raises(expression.ExpressionError, match='longer'):
        expression.check('1 + ' * 5000 + '1')
    with pytest.raises(expression.ExpressionError):
        expression.check('(' * 500 + '1' + ')' * 500)


def test_results_are_bounded_after_every_operation():
    # Each piece is small; the sum is not.
    with pytest.raises(expression.ExpressionError, match='more than'):
        expression.evaluate('value + value', value='x' * 600_000)


def test_each_use_names_what_its_expressions_may_use():
    responses.OPERATIONS.check('value + len(entry)')
    snmp.CONVERTER_EXPRESSIONS.check('x * 8')
    transformer.EXPRESSIONS.check('cpu.volume * anything')
    for policy, text in ((responses.OPERATIONS, 'x * 8'),
                         (snmp.CONVERTER_EXPRESSIONS, 'value * 8')):
        with pytest.raises(expression.ExpressionError,
                           match='unknown name'):
            policy.check(text)


def test_a_policys_own_limits_and_functions():
    tight = expression.Policy('test', max_size=10, max_exponent=3,
                              functions={'len': len},
                              method_types=(str,))
    assert tight.evaluate('len(x * 2)', x='abcde') == 10
    for text, message in (('x * 3', 'repetition of more than 10'),
                          ('2 ** 4', 'exponent 4 is above 3'),
                          ('x.center(11)', 'padding beyond 10'),
                          ('[1].copy()', 'attributes of list'),
                          ('abs(-1)', 'calling abs')):
        with pytest.raises(expression.ExpressionError, match=message):
            tight.evaluate(text, x='abcde')
    # The default policy is not changed by another one's limits.
    assert expression.evaluate('x * 3', x='abcde') == 'abcde' * 3
