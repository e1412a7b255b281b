"""The JSONPath of the definitions: jsonpath-ng, read as Ceilometer reads it.

Meter, event and Gnocchi resource definitions are written for Ceilometer,
which evaluates them with jsonpath-rw(-ext). jsonpath-ng parses the same
language (and faster), with one difference that real definitions meet:
``[*]``. For jsonpath-rw ``[*]`` is a slice that first turns a mapping,
a string or an integer into a list of that one value, so ``[*]`` of a
mapping is the mapping itself; for jsonpath-ng it is a wildcard giving the
mapping's values. Ceilometer's Swift meter,
``$.payload.measurements.[*].metric.[*].name``, only works with the first
reading.

:func:`parse_tree` therefore parses with jsonpath-ng's public lexer and
parser and puts an :class:`EveryItem` node (jsonpath-rw's reading) where
the text says ``[*]``; ``.*`` stays jsonpath-ng's wildcard (a mapping's
values, a list's items). The tokens carry the distinction the syntax tree
loses: both spellings parse into the same ``Wildcard`` node.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from typing import Any

from jsonpath_ng import jsonpath
from jsonpath_ng.ext import parser
from oslo_log import log

LOG = log.getLogger(__name__)

# One parser for every expression: building one loads jsonpath-ng's
# pre-generated tables (about 1 ms); parsing with it takes about 0.3 ms.
_PARSER = parser.ExtendedJsonPathParser()
_PARSER_LOCK = threading.Lock()

# The field name ``[*]`` is parsed as before its node is replaced. A NUL
# cannot be in a field name the lexer reads, so no real field collides.
_EVERY_ITEM_FIELD = '\x00[*]'


class EveryItem(jsonpath.JSONPath):
    """``[*]`` as jsonpath-rw reads it: the items of a list, or a mapping,
    string or integer itself (as the only item of a list of one)."""

    def find(self, datum: Any) -> list[jsonpath.DatumInContext]:
        datum = jsonpath.DatumInContext.wrap(datum)
        if isinstance(datum.value, (dict, int, str)):
            datum = jsonpath.DatumInContext(
                [datum.value], path=datum.path, context=datum.context)
        # len() of None or a float raises TypeError, as in jsonpath-rw.
        return [jsonpath.DatumInContext(datum.value[i], path=jsonpath.Index(i),
                                        context=datum)
                for i in range(len(datum.value))]

    def __str__(self) -> str:
        return '[*]'

    def __repr__(self) -> str:
        return 'EveryItem()'

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EveryItem)

    def __hash__(self) -> int:
        return hash('EveryItem')


def _mark_every_item(tokens: Iterator[Any]) -> Iterator[Any]:
    """The tokens, with the ``*`` of each ``[*]`` turned into a field name
    that :func:`_put_every_item` recognises."""
    window: list[Any] = []
    for token in tokens:
        window.append(token)
        if len(window) == 3:
            if [t.type for t in window] == ['[', '*', ']']:
                window[1].type, window[1].value = 'ID', _EVERY_ITEM_FIELD
                yield from window
                window = []
            else:
                yield window.pop(0)
    yield from window


def _put_every_item(node: Any) -> Any:
    """``node`` with each marked field replaced by :class:`EveryItem`."""
    if (isinstance(node, jsonpath.Fields)
            and node.fields == (_EVERY_ITEM_FIELD,)):
        return EveryItem()
    for name, value in list(getattr(node, '__dict__', {}).items()):
        if isinstance(value, jsonpath.JSONPath):
            setattr(node, name, _put_every_item(value))
        elif isinstance(value, list):
            value[:] = [_put_every_item(item) for item in value]
    return node


def parse_tree(expression: str) -> Any:
    """The syntax tree of ``expression`` (parsed every time).

    Raises what jsonpath-ng raises for a bad expression (its
    ``JsonPathLexerError`` and ``JsonPathParserError``, ``DefintionInvalid``
    of a malformed `` `split(...)` ``, ``re.error``...). The warnings of
    syntax jsonpath-ng deprecates (the ``|`` union, unquoted words in
    filters: both still work until jsonpath-ng 2) are logged, not raised.
    """
    # The ply parser keeps state while parsing: one parse at a time. (The
    # warnings caught are the whole process's for that moment: parsing
    # happens while definitions load, and takes well under a millisecond.)
    with _PARSER_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        tokens = _PARSER.lexer_class().tokenize(expression)
        tree = _PARSER.parse_token_stream(_mark_every_item(tokens))
    for warning in caught:
        LOG.debug('JSONPath %r: %s', expression, warning.message)
    return _put_every_item(tree)


def path_text(path: Any) -> str:
    """The path of a match as trait plugins receive it.

    Field names are not quoted (``payload.image_meta.org.openstack__1__os``
    for ``payload.image_meta.'org.openstack__1__os'``), as jsonpath-rw wrote
    them, where jsonpath-ng would quote them; the ``bitfield`` plugin
    compares these paths with its configured ones.
    """
    if isinstance(path, jsonpath.Child):
        return f'{path_text(path.left)}.{path_text(path.right)}'
    if isinstance(path, jsonpath.Fields):
        return ','.join(path.fields)
    return str(path)
