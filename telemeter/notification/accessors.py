"""JSONPath expressions of the definitions, compiled into plain functions.

The meter and event definitions say where a value is with JSONPath
(jsonpath-rw-ext). Evaluating its syntax tree for every notification costs
tens of microseconds per value: objects per match, context chains, full
paths. Most expressions of real definitions use a small part of the
language, so :func:`compile_values` turns a parsed expression built only of

* the root ``$`` (leading) and ``@``/``this``,
* child steps ``a.b``, field names (``'quoted.names'``, ``a,b`` lists),
* indices ``[0]`` and the whole-list slice ``[*]``,
* jsonpath-rw-ext's `` `split(sep, segment, max_split)` ``,
* unions ``(a)|(b)`` of such expressions

into one function from a notification to the list of matched values, with
exactly jsonpath-rw's results (including its quirks: ``[*]`` of a mapping,
string or integer is that value itself; ``[i]`` past the end matches
nothing). Anything else gives None and stays with jsonpath.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonpath_rw import jsonpath
from jsonpath_rw_ext import _string

#: A compiled expression: notification -> matched values, in order.
Values = Callable[[Any], list[Any]]
#: One step: the values matched so far -> the values after the step.
Step = Callable[[list[Any]], list[Any]]


def _fields_step(names: tuple[str, ...]) -> Step:
    if len(names) == 1:
        (name,) = names

        def one_field(values: list[Any]) -> list[Any]:
            found = []
            for value in values:
                try:
                    found.append(value[name])
                except (TypeError, KeyError, AttributeError):
                    pass
            return found
        return one_field

    def some_fields(values: list[Any]) -> list[Any]:
        found = []
        for value in values:
            for field in names:
                try:
                    found.append(value[field])
                except (TypeError, KeyError, AttributeError):
                    pass
        return found
    return some_fields


def _index_step(index: int) -> Step:
    def at_index(values: list[Any]) -> list[Any]:
        # As jsonpath-rw: len() and [] may raise for odd data; that error
        # reaches the caller just the same.
        return [value[index] for value in values if len(value) > index]
    return at_index


def _every_item(values: list[Any]) -> list[Any]:
    found: list[Any] = []
    for value in values:
        if isinstance(value, (dict, int, str)):
            found.append(value)
        else:
            found.extend(value[i] for i in range(len(value)))
    return found


def _split_step(node: _string.Split) -> Step:
    separator, segment, max_split = node.char, node.segment, node.max_split

    def split(values: list[Any]) -> list[Any]:
        found = []
        for value in values:
            try:
                found.append(value.split(separator, max_split)[segment])
            except Exception:  # noqa: S112 (jsonpath-rw-ext: no match)
                continue
        return found
    return split


def _steps(node: Any, leading: bool) -> list[Step] | None:
    """The steps of ``node`` or None if it uses anything not compiled."""
    if isinstance(node, jsonpath.Child):
        left = _steps(node.left, leading)
        right = _steps(node.right, False)
        if left is None or right is None:
            return None
        return left + right
    if isinstance(node, jsonpath.Root):
        return [] if leading else None
    if type(node) is jsonpath.This:
        return []
    if isinstance(node, jsonpath.Fields):
        if '*' in node.fields or jsonpath.auto_id_field is not None:
            return None
        return [_fields_step(tuple(node.fields))]
    if isinstance(node, jsonpath.Index):
        return [_index_step(node.index)]
    if isinstance(node, jsonpath.Slice):
        if node.start is None and node.end is None and node.step is None:
            return [_every_item]
        return None
    if type(node) is _string.Split:
        return [_split_step(node)]
    return None


def compile_values(node: Any) -> Values | None:
    """A function giving what ``[m.value for m in node.find(obj)]``
    gives, or None when ``node`` uses what is not compiled here."""
    if isinstance(node, jsonpath.Union):
        # ``(a)|(b)``: a list of fields in a definition.
        left, right = compile_values(node.left), compile_values(node.right)
        if left is None or right is None:
            return None
        return lambda obj: left(obj) + right(obj)
    steps = _steps(node, leading=True)
    if steps is None:
        return None

    def values(obj: Any) -> list[Any]:
        found = [obj]
        for step in steps:
            if not found:
                return found
            found = step(found)
        return found
    return values


def first_value(values: Values) -> Callable[[Any], Any]:
    """The first value of ``values(obj)`` that is not None, else None."""
    def first(obj: Any) -> Any:
        for value in values(obj):
            if value is not None:
                return value
        return None
    return first
