"""Decoding responses and reading attribute paths for dynamic pollsters.

Response handlers (``response_handlers``, tried in order, the first that
decodes the text wins): ``json``; ``xml`` (an element becomes a dict of its
attributes and children, repeated children a list, a leaf its text);
``text`` (``{'out': <text>}``).

An attribute path is dotted (``a.b.0.c``; ``.`` is the whole entry), with
integer parts indexing lists, optionally followed by ``| <expression>``
steps evaluated with ``value`` bound to the current value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

from telemeter import expression


class ResponseError(ValueError):
    """No configured handler could decode a response."""


def _json(text: str) -> Any:
    return json.loads(text)


def _element_to_python(element: ElementTree.Element) -> Any:
    children = list(element)
    if not children and not element.attrib:
        return (element.text or '').strip()
    result: dict[str, Any] = dict(element.attrib)
    for child in children:
        value = _element_to_python(child)
        if child.tag in result:
            if not isinstance(result[child.tag], list):
                result[child.tag] = [result[child.tag]]
            result[child.tag].append(value)
        else:
            result[child.tag] = value
    text = (element.text or '').strip()
    if text:
        result['text'] = text
    return result


def _xml(text: str) -> Any:
    # Remote data: refuse DTDs, so no entity can be declared or expanded.
    if '<!DOCTYPE' in text or '<!ENTITY' in text:
        raise ValueError('XML with a DOCTYPE/ENTITY declaration is refused')
    root = ElementTree.fromstring(text)  # noqa: S314 - no DTD, see above
    return {root.tag: _element_to_python(root)}


def _text(text: str) -> Any:
    return {'out': text}


HANDLERS: dict[str, Callable[[str], Any]] = {
    'json': _json, 'xml': _xml, 'text': _text,
}


def decode(text: str, handlers: list[str]) -> Any:
    """Decode ``text`` with the first handler of ``handlers`` that works."""
    errors = []
    for name in handlers:
        try:
            return HANDLERS[name](text)
        except Exception as err:
            errors.append(f'{name}: {err}')
    raise ResponseError(
        f'no response handler of {handlers} could decode the response '
        f'({"; ".join(errors)}); response starts with {text[:200]!r}')


def split_operations(attribute: str) -> tuple[str, list[str]]:
    """``'a.b | value * 2 | int(value)'`` -> ``('a.b', [ops...])``."""
    path, *operations = attribute.split('|')
    return path.strip(), [op.strip() for op in operations if op.strip()]


def walk(data: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``data`` (None if absent)."""
    if path in ('', '.'):
        return data
    current = data
    for part in path.split('.'):
        if isinstance(current, dict):
            if part not in current:
                return None
            current = current[part]
        elif isinstance(current, (list, tuple)):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return None
        else:
            return None
    return current


#: What the operations of an attribute (``volume | value * 1024``) may
#: use: the value so far and the whole ``entry`` of the response.
OPERATIONS = expression.Policy('dynamic pollster operation',
                               names=frozenset({'value', 'entry'}))


def resolve(data: Any, attribute: str, **names: Any) -> Any:
    """Read ``attribute`` (path plus operations) from ``data``.

    The operations see ``value`` and ``names`` (e.g. the whole ``entry``).
    """
    path, operations = split_operations(attribute)
    value = walk(data, path)
    for operation in operations:
        value = OPERATIONS.evaluate(operation, value=value, **names)
    return value
