"""JSONPath expressions of the definitions, compiled into plain functions.

The meter and event definitions say where a value is with JSONPath
(jsonpath-ng's extended parser). Evaluating its syntax tree for every
notification costs tens of microseconds per value: objects per match,
context chains, full paths. Most expressions of real definitions use a
small part of the language, so :func:`compile_values` turns a parsed
expression built only of

* the root ``$`` (leading) and ``@``/``this``,
* child steps ``a.b``, field names (``'quoted.names'``, ``a,b`` lists),
* indices ``[0]``, ``[-1]``, ``[0,2]``, ``[*]`` and the wildcard ``*``,
* the `` `split(chars, segment, max_split)` `` extension,
* unions ``(a)|(b)`` of such expressions

into one function from a notification to the list of matched values, with
exactly the results of evaluating the tree: a field of anything but a
mapping, an index of anything but a list or past its end, a wildcard of a
scalar match nothing; a wildcard of a mapping gives its values, and
``[*]`` of a mapping, string or integer is that value itself (jsonpath-rw's
reading, see :mod:`.jsonpath_syntax`). Anything else gives None and stays
with jsonpath-ng.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from jsonpath_ng import jsonpath
from jsonpath_ng.ext import string

from telemeter.notification import jsonpath_syntax

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


def _index_step(indices: tuple[int, ...]) -> Step:
    def at_indices(values: list[Any]) -> list[Any]:
        found: list[Any] = []
        for value in values:
            if isinstance(value, (list, tuple)):
                size = len(value)
                found.extend(value[i] for i in indices if -size <= i < size)
        return found
    return at_indices


def _every_child(values: list[Any]) -> list[Any]:
    found: list[Any] = []
    for value in values:
        if isinstance(value, (list, tuple)):
            found.extend(value)
        elif isinstance(value, dict):
            found.extend(value.values())
    return found


def _every_item(values: list[Any]) -> list[Any]:
    found: list[Any] = []
    for value in values:
        if isinstance(value, (dict, int, str)):
            found.append(value)
        else:
            # As jsonpath-rw: len() of None or a float raises TypeError.
            found.extend(value[i] for i in range(len(value)))
    return found


def _split_step(node: string.Split) -> Step:
    chars, max_split = node.chars, node.max_split
    every = node.segment == '*'
    segment = 0 if every else int(node.segment)

    def split(values: list[Any]) -> list[Any]:
        found = []
        for value in values:
            try:
                parts = value.split(chars, max_split)
                found.append(parts if every else parts[segment])
            except Exception:  # noqa: S112 (jsonpath-ng: no match)
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
        return [_index_step(tuple(node.indices))]
    if type(node) is jsonpath.Wildcard:
        if jsonpath.auto_id_field is not None:
            return None
        return [_every_child]
    if type(node) is jsonpath_syntax.EveryItem:
        return [_every_item]
    if type(node) is string.Split:
        return [_split_step(node)]
    return None


# The node of the ``|`` union, deprecated (with its name) by jsonpath-ng
# 1.x; ``(a)|(b)`` still parses into it until jsonpath-ng 2.
with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)
    _UNION: Any = jsonpath.Union


def compile_values(node: Any) -> Values | None:
    """A function giving what ``[m.value for m in node.find(obj)]``
    gives, or None when ``node`` uses what is not compiled here."""
    if isinstance(node, _UNION):
        return compile_concatenation([compile_values(node.left),
                                      compile_values(node.right)])
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


def compile_concatenation(parts: list[Values | None]) -> Values | None:
    """The values of every part, in order; None if a part is None."""
    if any(part is None for part in parts):
        return None
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        left, right = parts
        return lambda obj: left(obj) + right(obj)  # type: ignore[misc]
    return lambda obj: [value for part in parts
                        for value in part(obj)]  # type: ignore[misc]


def first_value(values: Values) -> Callable[[Any], Any]:
    """The first value of ``values(obj)`` that is not None, else None."""
    def first(obj: Any) -> Any:
        for value in values(obj):
            if value is not None:
                return value
        return None
    return first
