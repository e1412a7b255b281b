"""The complex query of ``POST /v2/query/samples``.

``filter`` is JSON text of an expression tree: ``{"and"|"or": [expr,
expr, ...]}`` (at least two), ``{"not": expr}``, ``{"in": {field:
[values]}}`` or ``{op: {field: value}}`` with op one of ``=``, ``!=``,
``<``, ``>``, ``<=``, ``=<``, ``>=``, ``=>``, ``=~`` (operators in any
case). ``orderby`` is JSON text of ``[{field: "asc"|"desc"}, ...]``.
Fields are the sample's (``counter_name``, ..., also ``meter``,
``resource``, ``user``, ``project``, ``type``, ``unit``, ``volume``) and,
in filters, ``metadata.<key>``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from telemeter.api import errors, query, rbac
from telemeter.storage import models

SIMPLE_OPS = ('=', '!=', '<', '>', '<=', '=<', '>=', '=>', '=~')
NAME_MAPPING = {'user': 'user_id', 'project': 'project_id',
                'resource': 'resource_id', 'meter': 'counter_name',
                'type': 'counter_type', 'unit': 'counter_unit',
                'volume': 'counter_volume'}
FIELDS = (frozenset(models.Sample.get_field_names()) - {'resource_metadata'}
          | set(NAME_MAPPING))
TIMESTAMP_FIELDS = ('timestamp', 'recorded_at')
MAX_DEPTH = 32


def _load(text: Any, name: str) -> Any:
    if not isinstance(text, str):
        raise errors.BadRequest(name, 'must be JSON text (a string)')
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise errors.BadRequest(name, f'not valid JSON: {err}') from None


def _single(node: Any, what: str) -> tuple[str, Any]:
    if not isinstance(node, dict) or len(node) != 1:
        raise errors.BadRequest(
            'filter', f'{what} must be an object with exactly one key, '
            f'not {json.dumps(node)[:80]}')
    return next(iter(node.items()))


def _field(name: str, allow_metadata: bool, parameter: str) -> str:
    if allow_metadata and re.fullmatch(r'metadata\.\S+', name):
        return 'resource_' + name
    if name not in FIELDS:
        raise errors.BadRequest(
            parameter, f'unknown field {name!r}; use one of '
            f'{", ".join(sorted(FIELDS))}'
            + (', metadata.<key>' if allow_metadata else ''))
    return NAME_MAPPING.get(name, name)


def _scalar(value: Any, field: str) -> Any:
    if isinstance(value, bool) or isinstance(value, (int, float, str)):
        if isinstance(value, str) and '\x00' in value:
            raise errors.BadRequest('filter', f'{field}: NUL character')
        if isinstance(value, float) and value != value:
            raise errors.BadRequest('filter', f'{field}: NaN')
        if isinstance(value, int) and not -2**63 <= value < 2**63:
            raise errors.BadRequest('filter', f'{field}: {value} is out '
                                    'of range')
        return value
    raise errors.BadRequest('filter', f'the value of {field} must be a '
                            'string, a number or a boolean')


def _leaf(op: str, operand: Any) -> dict:
    name, value = _single(operand, f'the operand of {op!r}')
    field = _field(name, True, 'filter')
    if op == 'in':
        if not isinstance(value, list) or not value:
            raise errors.BadRequest('filter', f'"in" needs a non-empty '
                                    f'list of values for {name}')
        values = [_scalar(item, name) for item in value]
        if any(isinstance(item, bool) for item in values):
            raise errors.BadRequest('filter', '"in" takes strings and '
                                    'numbers')
        for item in values:
            _check_type(op, field, name, item)
        if field in TIMESTAMP_FIELDS:
            values = [_timestamp(item) for item in values]
        return {op: {field: values}}
    value = _scalar(value, name)
    _check_type(op, field, name, value)
    if field in TIMESTAMP_FIELDS:
        value = _timestamp(value)
    if op == '=~':
        if not isinstance(value, str):
            raise errors.BadRequest('filter', '=~ needs a regular '
                                    'expression (a string)')
        try:
            re.compile(value)
        except (re.error, RecursionError, OverflowError) as err:
            raise errors.BadRequest('filter', f'invalid regular '
                                    f'expression {value!r}: {err}') from None
    return {op: {field: value}}


def _check_type(op: str, field: str, name: str, value: Any) -> None:
    """The databases compare only like with like."""
    if field.startswith('resource_metadata.'):
        if isinstance(value, bool) and op not in ('=', '!='):
            raise errors.BadRequest('filter', f'{name}: a boolean can '
                                    'only be compared with = or !=')
        return
    if field == 'counter_volume':
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise errors.BadRequest('filter', f'{name} takes a number')
    elif not isinstance(value, str):
        raise errors.BadRequest('filter', f'{name} takes a string')


def _timestamp(value: Any) -> Any:
    if not isinstance(value, str):
        raise errors.BadRequest('filter', f'Failed to parse the timestamp '
                                f'value {value!r}')
    return query.parse_datetime(value, 'filter')


def _node(node: Any, depth: int = 0) -> dict:
    if depth > MAX_DEPTH:
        raise errors.BadRequest('filter', f'nested more than {MAX_DEPTH} '
                                'levels')
    op, operand = _single(node, 'an expression')
    op = op.lower()
    if op in ('and', 'or'):
        if not isinstance(operand, list) or len(operand) < 2:
            raise errors.BadRequest('filter', f'{op!r} needs a list of at '
                                    'least two expressions')
        return {op: [_node(item, depth + 1) for item in operand]}
    if op == 'not':
        return {op: _node(operand, depth + 1)}
    if op in SIMPLE_OPS or op == 'in':
        return _leaf(op, operand)
    raise errors.BadRequest('filter', f'unknown operator {op!r}; use and, '
                            f'or, not, in, {", ".join(SIMPLE_OPS)}')


def parse_filter(text: Any) -> dict | None:
    """The validated expression tree (operators lower-cased, field
    names as stored, timestamps as datetimes), or None."""
    if text is None or text == '':
        return None
    return _node(_load(text, 'filter'))


def parse_orderby(text: Any) -> list[dict] | None:
    """The validated ``[{field: 'asc'|'desc'}]``, or None."""
    if text is None or text == '':
        return None
    items = _load(text, 'orderby')
    if not isinstance(items, list):
        raise errors.BadRequest('orderby', 'must be a list of '
                                '{field: direction} objects')
    orderby = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise errors.BadRequest('orderby', 'each item must be one '
                                    '{field: direction}')
        name, direction = next(iter(item.items()))
        field = _field(name, False, 'orderby')
        if not isinstance(direction, str) or \
                direction.lower() not in ('asc', 'desc'):
            raise errors.BadRequest('orderby', f'direction of {name} must '
                                    'be asc or desc')
        orderby.append({field: direction.lower()})
    return orderby


def check_projects(tree: dict | None, limited: str) -> None:
    """401 if a limited request's filter names another project."""
    if tree is None:
        return
    op, operand = next(iter(tree.items()))
    if op in ('and', 'or'):
        for item in operand:
            check_projects(item, limited)
    elif op == 'not':
        check_projects(operand, limited)
    else:
        field, value = next(iter(operand.items()))
        if field == 'project_id':
            values = value if isinstance(value, list) else [value]
            rbac.check_projects([str(item) for item in values], limited)
