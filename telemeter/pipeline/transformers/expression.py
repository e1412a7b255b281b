"""A restricted evaluator for transformer expressions.

``scale`` (unit_conversion, rate_of_change, aggregator) and ``expr``
(arithmetic) come from pipeline.yaml. Ceilometer ran them through ``eval``;
here they are parsed once with :mod:`ast`, checked against a small grammar,
and evaluated by walking the tree, so a pipeline file can never run code.

Accepted: numeric and string literals (and True/False/None), ``+ - * / //
% **`` and unary ``-``/``+``, comparisons, ``x if c else y``,
``and``/``or``/``not``, names, attribute access (never to a name starting
with ``_``), item access, and calls of ``abs``, ``min``, ``max``,
``round``, ``float`` and ``int``.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

FUNCTIONS = {'abs': abs, 'min': min, 'max': max, 'round': round,
             'float': float, 'int': int}

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub,
           ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: None}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos,
          ast.Not: operator.not_}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne,
            ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b}

# Integer powers beyond this exponent are computed as floats, which overflow
# at once instead of building enormous integers.
_MAX_INT_EXPONENT = 256


class ExpressionError(ValueError):
    """An expression uses something outside the accepted grammar."""


def _attribute(value: Any, name: str) -> Any:
    # Namespaces answer from their data only; other values (numbers,
    # strings, datetimes) expose public attributes, and nothing callable
    # can be called since calls are limited to FUNCTIONS.
    lookup = getattr(type(value), 'lookup', None)
    if lookup is not None:
        return lookup(value, name)
    return getattr(value, name)


def _power(base: Any, exponent: Any) -> Any:
    if (isinstance(base, int) and isinstance(exponent, int)
            and abs(exponent) > _MAX_INT_EXPONENT):
        return float(base) ** exponent
    return base ** exponent


class Expression:
    """A parsed, validated expression; call :meth:`evaluate` per use."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode='eval')
        except SyntaxError as err:
            raise ExpressionError(
                f'invalid expression {text!r}: {err.msg}') from err
        self._check(tree.body)
        self._tree = tree.body

    def __repr__(self) -> str:
        return f'<Expression {self.text!r}>'

    def _reject(self, node: ast.AST, what: str) -> None:
        raise ExpressionError(f'{what} is not allowed in expression '
                              f'{self.text!r}')

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool,
                                           type(None))):
                self._reject(node, f'the literal {node.value!r}')
        elif isinstance(node, ast.Name):
            pass
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith('_'):
                self._reject(node, f'the attribute {node.attr!r}')
            self._check(node.value)
        elif isinstance(node, ast.Subscript):
            self._check(node.value)
            self._check(node.slice)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                self._reject(node, f'the operator {type(node.op).__name__}')
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                self._reject(node, f'the operator {type(node.op).__name__}')
            self._check(node.operand)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self._check(value)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _COMPARE:
                    self._reject(node, f'the comparison {type(op).__name__}')
            for value in (node.left, *node.comparators):
                self._check(value)
        elif isinstance(node, ast.IfExp):
            for value in (node.test, node.body, node.orelse):
                self._check(value)
        elif isinstance(node, ast.Call):
            if (not isinstance(node.func, ast.Name)
                    or node.func.id not in FUNCTIONS):
                self._reject(node, f'calling {ast.unparse(node.func)}')
            if node.keywords:
                self._reject(node, 'a keyword argument')
            for arg in node.args:
                if isinstance(arg, ast.Starred):
                    self._reject(node, 'argument unpacking')
                self._check(arg)
        else:
            self._reject(node, f'`{ast.unparse(node)}` '
                               f'({type(node).__name__})')

    def evaluate(self, namespace: Any) -> Any:
        """Evaluate with names looked up in ``namespace`` (a
        :class:`telemeter.pipeline.transformers.Namespace`)."""
        return self._eval(self._tree, namespace)

    def _eval(self, node: ast.AST, ns: Any) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return ns.lookup(node.id)
        if isinstance(node, ast.Attribute):
            return _attribute(self._eval(node.value, ns), node.attr)
        if isinstance(node, ast.Subscript):
            return self._eval(node.value, ns)[self._eval(node.slice, ns)]
        if isinstance(node, ast.BinOp):
            left = self._eval(node.left, ns)
            right = self._eval(node.right, ns)
            if isinstance(node.op, ast.Pow):
                return _power(left, right)
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, ns))
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                result: Any = True
                for value in node.values:
                    result = self._eval(value, ns)
                    if not result:
                        return result
                return result
            result = False
            for value in node.values:
                result = self._eval(value, ns)
                if result:
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, ns)
            for op, comparator in zip(node.ops, node.comparators,
                                      strict=True):
                right = self._eval(comparator, ns)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            if self._eval(node.test, ns):
                return self._eval(node.body, ns)
            return self._eval(node.orelse, ns)
        if isinstance(node, ast.Call):
            func = FUNCTIONS[node.func.id]
            return func(*(self._eval(arg, ns) for arg in node.args))
        raise ExpressionError(f'cannot evaluate {ast.dump(node)}')
