"""The one sandbox for the expressions operators write in YAML.

Transformer ``scale`` and ``expr`` (pipeline.yaml), dynamic pollster
operations (``volume | value * 1024``) and SNMP post-processing all go
through :class:`Expression`: parsed once with :mod:`ast`, checked against
one grammar, and evaluated by walking the tree. Python's ``eval`` is never
used, so a definition file cannot run code, and the limits below keep one
expression from eating the daemon's memory or CPU.

Grammar: literals (numbers, strings, ``True``/``False``/``None``), lists,
tuples, dicts, f-strings; ``+ - * / // % **``, unary ``- + not``;
comparisons (``== != < <= > >= in not in is is not``), ``and``/``or``,
``x if c else y``; subscripts and slices; names; calls of the policy's
functions (:data:`BUILTINS` by default) and of the methods of ``str``,
``int``, ``float``, ``list``, ``tuple`` and ``dict`` values; attributes
of values that define ``lookup`` (the transformers'
:class:`~telemeter.transformer.Namespace`).
Refused: names or attributes starting with ``_``, ``format``/
``format_map`` (they reach attributes through a template), ``*``/``**``
unpacking, lambdas, comprehensions, assignments, imports, and every other
node.

Each use has one :class:`Policy`: the free names its expressions may use
(checked when the expression is loaded), the functions they may call, the
types whose methods they may call, and the limits: an exponent beyond
``max_exponent`` or an integer power of more than ``max_int_bits`` bits; a
string, list or tuple of more than ``max_size`` items, checked before
repeating (``'a' * 10**8``), padding (``str.center``, ``ljust``...) or
formatting with a width, and after every operation; expressions longer
than ``max_length``. The uses' policies live beside them
(``transformer.EXPRESSIONS``, the dynamic pollsters' and SNMP's); the
module-level :func:`check` and :func:`evaluate` apply :data:`DEFAULT`.
Every error, while checking or evaluating, is an :class:`ExpressionError`.

simpleeval (1.0.8) was weighed as the core and not taken: its limits
(``MAX_POWER``, ``MAX_STRING_LENGTH``) are module globals shared by every
user in the process, not a policy per use; unknown names and attributes
are only found while evaluating, where the definitions must be refused
when they load; it lets expressions read attributes of any object (all
but ``_``-prefixed names and a deny-list), where this grammar allows
methods of plain values only; and its exponent limit (4,000,000) lets
``9 ** 4000000`` run for seconds.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import operator
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

MAX_LENGTH = 10_000
MAX_SIZE = 1_000_000
MAX_EXPONENT = 1_000
MAX_INT_BITS = 100_000

BUILTINS: dict[str, Any] = {
    'abs': abs, 'bool': bool, 'dict': dict, 'float': float, 'int': int,
    'len': len, 'list': list, 'max': max, 'min': min, 'round': round,
    'sorted': sorted, 'str': str, 'sum': sum, 'tuple': tuple,
}
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
_OPERATORS = {*_BINARY, *_UNARY, *_COMPARE, ast.And, ast.Or}
_FORBIDDEN_ATTRIBUTES = frozenset({'format', 'format_map'})
_PADDING = frozenset({'center', 'ljust', 'rjust', 'zfill', 'expandtabs'})
_SIZED = (str, list, tuple, dict, bytes)
# Nodes that only carry an operator or a context.
_STRUCTURAL = (ast.operator, ast.cmpop, ast.boolop, ast.unaryop,
               ast.expr_context, ast.keyword)
_WIDTH = re.compile(r'\d+')


class ExpressionError(ValueError):
    """An expression is not allowed, or failed while being evaluated."""


@dataclasses.dataclass(frozen=True, eq=False)
class Policy:
    """What the expressions of one use may name, call and build.

    ``names``: the free names the expressions may use besides the
    functions (None: any, looked up when evaluated, as a transformer's
    sample fields are). Policies compare by identity: each use defines
    its own once.
    """

    use: str
    names: frozenset[str] | None = None
    functions: Mapping[str, Callable[..., Any]] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType(BUILTINS))
    method_types: tuple[type, ...] = (str, int, float, list, tuple, dict)
    max_length: int = MAX_LENGTH
    max_size: int = MAX_SIZE
    max_exponent: int = MAX_EXPONENT
    max_int_bits: int = MAX_INT_BITS

    def expression(self, text: str) -> Expression:
        """``text`` parsed and checked under this policy (cached)."""
        return _parsed(text, self)

    def check(self, text: str) -> None:
        """Raise :class:`ExpressionError` unless ``text`` is allowed."""
        self.expression(text)

    def evaluate(self, text: str, **names: Any) -> Any:
        """Evaluate ``text`` (parsed once per process) with ``names``."""
        return self.expression(text).evaluate(names)


#: The policy of the module-level :func:`check` and :func:`evaluate`.
DEFAULT = Policy('expression')


class Expression:
    """One expression, parsed and checked under ``policy``;
    :meth:`evaluate` it per use."""

    def __init__(self, text: str, policy: Policy = DEFAULT) -> None:
        self.text = text
        self.policy = policy
        if len(text) > policy.max_length:
            raise ExpressionError(f'expression longer than '
                                  f'{policy.max_length} characters')
        try:
            self._tree = ast.parse(text.strip(), mode='eval').body
        except (SyntaxError, RecursionError, MemoryError) as err:
            reason = getattr(err, 'msg', type(err).__name__)
            raise ExpressionError(
                f'invalid expression {text!r}: {reason}') from err
        for node in ast.walk(self._tree):
            self._check(node)

    def __repr__(self) -> str:
        return f'<Expression {self.text!r}>'

    def _check(self, node: ast.AST) -> None:
        names, functions = self.policy.names, self.policy.functions
        if isinstance(node, (ast.operator, ast.unaryop, ast.cmpop)) and (
                type(node) not in _OPERATORS):
            self._refuse(f'the operator {type(node).__name__}')
        if isinstance(node, ast.keyword) and node.arg is None:
            self._refuse('argument unpacking')
        if isinstance(node, _STRUCTURAL):
            return
        if isinstance(node, ast.Starred):
            self._refuse('argument unpacking')
        if not hasattr(_Evaluator, f'_{type(node).__name__}'):
            self._refuse(f'{type(node).__name__} (`{ast.unparse(node)}`)')
        if isinstance(node, ast.Attribute) and (
                node.attr.startswith('_')
                or node.attr in _FORBIDDEN_ATTRIBUTES):
            self._refuse(f'the attribute {node.attr!r}')
        if isinstance(node, ast.Name) and names is not None and (
                node.id not in names and node.id not in functions):
            raise ExpressionError(
                f'unknown name {node.id!r} in {self.text!r} (use '
                f'{", ".join(sorted(names))})')
        if isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Attribute)
                or (isinstance(node.func, ast.Name)
                    and node.func.id in functions)):
            self._refuse(f'calling {ast.unparse(node.func)}')
        if isinstance(node, ast.Dict) and None in node.keys:
            self._refuse('** in a dict')

    def _refuse(self, what: str) -> None:
        raise ExpressionError(f'{what} is not allowed in expression '
                              f'{self.text!r}')

    def evaluate(self, names: Any = None) -> Any:
        """The value of the expression.

        ``names`` is a mapping of the names bound by the caller, or an
        object with a ``lookup(name)`` method (a transformer Namespace),
        asked for every name that is not a builtin.
        """
        try:
            return _Evaluator(names if names is not None else {},
                              self.policy).visit(self._tree)
        except ExpressionError:
            raise
        except (Exception, RecursionError) as err:
            raise ExpressionError(
                f'cannot evaluate {self.text!r}: {type(err).__name__}: '
                f'{err}') from err


@functools.lru_cache(maxsize=1024)
def _parsed(text: str, policy: Policy) -> Expression:
    return Expression(text, policy)


def check(text: str) -> None:
    """:meth:`Policy.check` of :data:`DEFAULT`."""
    DEFAULT.check(text)


def evaluate(text: str, **names: Any) -> Any:
    """:meth:`Policy.evaluate` of :data:`DEFAULT`."""
    return DEFAULT.evaluate(text, **names)


def _count(value: Any) -> int:
    return value if isinstance(value, int) else 0


class _Evaluator:
    def __init__(self, names: Any, policy: Policy) -> None:
        self.names = names
        self._mapping = isinstance(names, Mapping)
        self.policy = policy
        self.functions = policy.functions
        self.max_size = policy.max_size

    def _sized(self, value: Any) -> Any:
        if isinstance(value, _SIZED) and len(value) > self.max_size:
            raise ExpressionError(f'a result of more than {self.max_size} '
                                  'items')
        return value

    def visit(self, node: ast.AST) -> Any:
        return getattr(self, f'_{type(node).__name__}')(node)

    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        if self._mapping:
            if node.id in self.names:
                return self.names[node.id]
            if node.id in self.functions:
                return self.functions[node.id]
            raise ExpressionError(f'unknown name {node.id!r}')
        if node.id in self.functions:
            return self.functions[node.id]
        return self.names.lookup(node.id)

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right, self.policy)
        elif isinstance(node.op, ast.Mult):
            for seq, times in ((left, right), (right, left)):
                if (isinstance(seq, _SIZED)
                        and len(seq) * _count(times) > self.max_size):
                    raise ExpressionError('a repetition of more than '
                                          f'{self.max_size} items')
        return self._sized(_BINARY[type(node.op)](left, right))

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        return _UNARY[type(node.op)](self.visit(node.operand))

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        result: Any = None
        for value in node.values:
            result = self.visit(value)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result

    def _Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.visit(right_node)
            if not _COMPARE[type(op)](left, right):
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
        return self._sized([self.visit(e) for e in node.elts])

    def _Tuple(self, node: ast.Tuple) -> tuple:
        return self._sized(tuple(self.visit(e) for e in node.elts))

    def _Dict(self, node: ast.Dict) -> dict:
        return {self.visit(k): self.visit(v)  # type: ignore[arg-type]
                for k, v in zip(node.keys, node.values, strict=True)}

    def _JoinedStr(self, node: ast.JoinedStr) -> str:
        return self._sized(''.join(str(self.visit(v)) for v in node.values))

    def _FormattedValue(self, node: ast.FormattedValue) -> str:
        value = self.visit(node.value)
        spec = self.visit(node.format_spec) if node.format_spec else ''
        if any(int(width) > self.max_size
               for width in _WIDTH.findall(spec)):
            raise ExpressionError(f'a format width above {self.max_size}')
        return format(value, spec)

    def _Attribute(self, node: ast.Attribute) -> Any:
        value = self.visit(node.value)
        lookup = getattr(type(value), 'lookup', None)
        if lookup is not None:
            return lookup(value, node.attr)
        if not isinstance(value, self.policy.method_types):
            raise ExpressionError(f'attributes of {type(value).__name__} '
                                  'are not allowed')
        try:
            return getattr(value, node.attr)
        except AttributeError as err:
            raise ExpressionError(str(err)) from err

    def _Call(self, node: ast.Call) -> Any:
        func = self.visit(node.func)
        if not (func in self.functions.values()
                or _is_safe_method(func, self.policy.method_types)):
            raise ExpressionError(f'{ast.unparse(node.func)} is not a '
                                  'function that may be called')
        args = [self.visit(arg) for arg in node.args]
        # ``**`` unpacking (a keyword without a name) is refused at load.
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords
                  if kw.arg is not None}
        if getattr(func, '__name__', '') in _PADDING and any(
                _count(a) > self.max_size
                for a in (*args, *kwargs.values())):
            raise ExpressionError(f'padding beyond {self.max_size} '
                                  'characters')
        return self._sized(func(*args, **kwargs))


def _is_safe_method(func: Any, method_types: tuple[type, ...]) -> bool:
    owner = getattr(func, '__self__', None)
    return (isinstance(owner, method_types)
            and not getattr(func, '__name__', '_').startswith('_'))


def _check_power(base: Any, exponent: Any, policy: Policy) -> None:
    if (isinstance(exponent, (int, float))
            and abs(exponent) > policy.max_exponent):
        raise ExpressionError(f'the exponent {exponent} is above '
                              f'{policy.max_exponent}')
    if (isinstance(base, int) and isinstance(exponent, int)
            and base.bit_length() * exponent > policy.max_int_bits):
        raise ExpressionError(f'an integer power of more than '
                              f'{policy.max_int_bits} bits')
