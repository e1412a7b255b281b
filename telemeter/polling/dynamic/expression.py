"""A restricted evaluator for the operations of dynamic pollsters.

An attribute path may be followed by ``| <expression>`` steps in which
``value`` is the current value, e.g. ``volume | value * 1024`` or
``status | value.lower()``. Expressions are parsed with :mod:`ast` and
evaluated node by node: literals, names bound by the caller, arithmetic,
comparisons, boolean logic, conditional expressions, subscripts, a few
builtins (``str int float bool len round abs min max sum sorted list dict
tuple``) and non-dunder methods of ``str``, ``int``, ``float``, ``list``
and ``dict`` values. Anything else (imports, attribute access on other
objects, lambdas, comprehensions) raises :class:`ExpressionError`; Python's
``eval`` is never used.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any


class ExpressionError(ValueError):
    """The expression is not allowed or cannot be evaluated."""


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
BUILTINS: dict[str, Any] = {
    'str': str, 'int': int, 'float': float, 'bool': bool, 'len': len,
    'round': round, 'abs': abs, 'min': min, 'max': max, 'sum': sum,
    'sorted': sorted, 'list': list, 'dict': dict, 'tuple': tuple,
    'True': True, 'False': False, 'None': None,
}
_METHOD_TYPES = (str, int, float, list, dict, tuple)
_FORBIDDEN_METHODS = frozenset({'format', 'format_map'})
_MAX_POWER = 1000
_MAX_SEQUENCE = 1_000_000


class _Evaluator:
    def __init__(self, names: dict[str, Any]) -> None:
        self.names = names

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, f'_{type(node).__name__}', None)
        if method is None:
            raise ExpressionError(
                f'{type(node).__name__} is not allowed in an expression')
        return method(node)

    def _Expression(self, node: ast.Expression) -> Any:
        return self.visit(node.body)

    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        if node.id in self.names:
            return self.names[node.id]
        if node.id in BUILTINS:
            return BUILTINS[node.id]
        raise ExpressionError(f'unknown name {node.id!r}')

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ExpressionError(
                f'operator {type(node.op).__name__} is not allowed')
        if (isinstance(node.op, ast.Pow) and isinstance(right, (int, float))
                and abs(right) > _MAX_POWER):
            raise ExpressionError(f'exponent {right} is too large')
        if isinstance(node.op, ast.Mult):
            for seq, n in ((left, right), (right, left)):
                if (isinstance(seq, (str, list, tuple))
                        and isinstance(n, int)
                        and len(seq) * n > _MAX_SEQUENCE):
                    raise ExpressionError('sequence repetition too large')
        return op(left, right)

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        op = _UNARY.get(type(node.op))
        if op is None:
            raise ExpressionError(
                f'operator {type(node.op).__name__} is not allowed')
        return op(self.visit(node.operand))

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        result: Any = None
        for value_node in node.values:
            result = self.visit(value_node)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result

    def _Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op_node, right_node in zip(node.ops, node.comparators,
                                       strict=True):
            right = self.visit(right_node)
            if not _COMPARE[type(op_node)](left, right):
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp) -> Any:
        return (self.visit(node.body) if self.visit(node.test)
                else self.visit(node.orelse))

    def _Subscript(self, node: ast.Subscript) -> Any:
        return self.visit(node.value)[self.visit(node.slice)]

    def _Slice(self, node: ast.Slice) -> slice:
        return slice(*(None if part is None else self.visit(part)
                       for part in (node.lower, node.upper, node.step)))

    def _List(self, node: ast.List) -> list:
        return [self.visit(e) for e in node.elts]

    def _Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self.visit(e) for e in node.elts)

    def _Dict(self, node: ast.Dict) -> dict:
        if any(k is None for k in node.keys):
            raise ExpressionError('** in a dict literal is not allowed')
        return {self.visit(k): self.visit(v)  # type: ignore[arg-type]
                for k, v in zip(node.keys, node.values, strict=True)}

    def _JoinedStr(self, node: ast.JoinedStr) -> str:
        return ''.join(str(self.visit(v)) for v in node.values)

    def _FormattedValue(self, node: ast.FormattedValue) -> str:
        value = self.visit(node.value)
        spec = self.visit(node.format_spec) if node.format_spec else ''
        return format(value, spec)

    def _Attribute(self, node: ast.Attribute) -> Any:
        # str.format can reach attributes of its arguments ("{0.__class__}").
        if node.attr.startswith('_') or node.attr in _FORBIDDEN_METHODS:
            raise ExpressionError(f'attribute {node.attr!r} is not allowed')
        obj = self.visit(node.value)
        if not isinstance(obj, _METHOD_TYPES):
            raise ExpressionError(
                f'attributes of {type(obj).__name__} are not allowed')
        try:
            return getattr(obj, node.attr)
        except AttributeError as err:
            raise ExpressionError(str(err)) from err

    def _Call(self, node: ast.Call) -> Any:
        func = self.visit(node.func)
        if not callable(func):
            raise ExpressionError(f'{func!r} is not callable')
        args = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise ExpressionError('*args is not allowed')
            args.append(self.visit(arg))
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise ExpressionError('**kwargs is not allowed')
            kwargs[keyword.arg] = self.visit(keyword.value)
        return func(*args, **kwargs)


def evaluate(expression: str, **names: Any) -> Any:
    """Evaluate ``expression`` with ``names`` bound (e.g. ``value=...``).

    Raises :class:`ExpressionError` for a syntax error, a construct that is
    not allowed, or an error while evaluating.
    """
    try:
        tree = ast.parse(expression.strip(), mode='eval')
    except SyntaxError as err:
        raise ExpressionError(
            f'invalid expression {expression!r}: {err.msg}') from err
    try:
        return _Evaluator(names).visit(tree)
    except ExpressionError:
        raise
    except Exception as err:
        raise ExpressionError(
            f'cannot evaluate {expression!r}: {type(err).__name__}: {err}'
        ) from err


_STRUCTURAL = (ast.operator, ast.cmpop, ast.boolop, ast.unaryop,
               ast.expr_context, ast.keyword)


def check(expression: str, names: tuple[str, ...] | None = None) -> None:
    """Raise :class:`ExpressionError` if ``expression`` does not parse or
    uses a construct that is not allowed; with ``names``, also if it uses
    a name that is neither one of them nor an allowed builtin."""
    try:
        tree = ast.parse(expression.strip(), mode='eval')
    except SyntaxError as err:
        raise ExpressionError(
            f'invalid expression {expression!r}: {err.msg}') from err
    for node in ast.walk(tree):
        if isinstance(node, _STRUCTURAL):
            continue
        if not hasattr(_Evaluator, f'_{type(node).__name__}'):
            raise ExpressionError(
                f'{type(node).__name__} is not allowed in an expression: '
                f'{expression!r}')
        if isinstance(node, ast.Attribute) and (
                node.attr.startswith('_') or node.attr in _FORBIDDEN_METHODS):
            raise ExpressionError(
                f'attribute {node.attr!r} is not allowed: {expression!r}')
        if (names is not None and isinstance(node, ast.Name)
                and node.id not in names and node.id not in BUILTINS):
            raise ExpressionError(
                f'unknown name {node.id!r} in {expression!r} (use '
                f'{", ".join(names)})')
