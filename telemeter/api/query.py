"""The simple-query grammar: ``q.field`` / ``q.op`` / ``q.value`` /
``q.type`` arrays, read into :class:`Query` items and then into the
keyword arguments of the storage calls (as Ceilometer's v2 did).

Every mistake raises :class:`~telemeter.api.errors.BadRequest` naming the
parameter.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
from collections.abc import Callable, Sequence
from typing import Any

from oslo_utils import strutils
from webob import multidict

from telemeter import utils
from telemeter.api import errors

OPS = ('lt', 'le', 'eq', 'ne', 'ge', 'gt')
TYPES = ('string', 'integer', 'float', 'boolean', 'datetime')
TIMESTAMP_OPS = ('lt', 'le', 'gt', 'ge')
#: API field name -> storage argument name.
TRANSLATION = {'user_id': 'user', 'project_id': 'project',
               'resource_id': 'resource'}
#: Fields of a sample filter (get_samples, statistics).
SAMPLE_KEYS = ('user', 'project', 'resource', 'meter', 'source',
               'message_id')
METER_KEYS = ('user', 'project', 'resource', 'source')
RESOURCE_KEYS = ('user', 'project', 'resource', 'source')


def parse_datetime(value: str, parameter: str) -> datetime.datetime:
    """An ISO 8601 time as a naive UTC datetime, else a 400."""
    try:
        return utils.naive_utc(utils.parse_isotime(value))
    except (ValueError, TypeError, OverflowError):
        raise errors.BadRequest(
            parameter, f'{value!r} is not an ISO 8601 timestamp') from None


def _to_bool(value: str) -> bool:
    return strutils.bool_from_string(value, strict=True)


CONVERTERS: dict[str, Callable[[str], Any]] = {
    'string': str, 'integer': int, 'float': float, 'boolean': _to_bool,
    'datetime': lambda value: utils.naive_utc(utils.parse_isotime(value)),
}


@dataclasses.dataclass
class Query:
    """One filter rule of a ``q`` array."""

    field: str
    op: str
    value: str
    type: str = ''

    def typed_value(self, forced_type: str | None = None) -> Any:
        """The value converted to ``type``; without a type, a Python
        literal is read if it is one (``'42'`` → 42), else the text."""
        kind = forced_type or self.type
        if not kind:
            try:
                return ast.literal_eval(self.value)
            except (ValueError, SyntaxError, TypeError, MemoryError,
                    RecursionError):
                return self.value
        try:
            return CONVERTERS[kind](self.value)
        except (ValueError, TypeError, OverflowError):
            raise errors.BadRequest(
                'q.value', f'unable to convert {self.value!r} (field '
                f'{self.field!r}) to the data type {kind}') from None


def _texts(params: multidict.MultiDict, name: str) -> list[str]:
    return [str(value) for value in params.getall(name)]


def parse(params: multidict.MultiDict) -> list[Query]:
    """The ``q`` rules of a request's GET parameters.

    ``q.field`` and ``q.value`` must have as many items; ``q.op`` and
    ``q.type`` either none or as many (an empty op is ``eq``).
    """
    fields = _texts(params, 'q.field')
    values = _texts(params, 'q.value')
    ops = _texts(params, 'q.op') or [''] * len(fields)
    types = _texts(params, 'q.type') or [''] * len(fields)
    for name, items in (('q.value', values), ('q.op', ops),
                        ('q.type', types)):
        if len(items) != len(fields):
            raise errors.BadRequest(
                name, f'{len(items)} item(s) for {len(fields)} q.field '
                'item(s); every query needs a field, an op, a value and a '
                'type (op and type may be empty)')
    queries = []
    for field, op, value, kind in zip(fields, ops, values, types,
                                      strict=True):
        if not field:
            raise errors.BadRequest('q.field', 'empty field name')
        op = op or 'eq'
        if op not in OPS:
            raise errors.BadRequest(
                'q.op', f'unknown operator {op!r} (field {field!r}); '
                f'use one of {", ".join(OPS)}')
        if kind and kind not in TYPES:
            raise errors.BadRequest(
                'q.type', f'the data type {kind!r} (field {field!r}) is '
                f'not supported; use one of {", ".join(TYPES)}')
        queries.append(Query(field, op, value, kind))
    return queries


def _is_metadata(field: str) -> bool:
    return field.startswith(('metadata.', 'resource_metadata.'))


def to_kwargs(queries: Sequence[Query], valid_keys: Sequence[str],
              allow_timestamps: bool = True) -> dict[str, Any]:
    """Storage keyword arguments for ``queries``.

    ``timestamp`` (lt/le/gt/ge) becomes start/end timestamps (widened by
    ``search_offset`` minutes), ``metadata.<key>`` and
    ``resource_metadata.<key>`` go to ``metaquery``, the other fields
    must be in ``valid_keys`` (after ``user_id`` → ``user``, ...) and use
    ``eq``.
    """
    kwargs: dict[str, Any] = {}
    metaquery: dict[str, Any] = {}
    stamps: dict[str, Any] = {}
    offset = 0
    for item in queries:
        if item.field in ('timestamp', 'search_offset'):
            if not allow_timestamps:
                raise errors.BadRequest(
                    'q.field', f'{item.field} is not valid for this '
                    'resource')
            if item.field == 'search_offset':
                if item.op != 'eq':
                    raise errors.BadRequest(
                        'q.op', 'search_offset only supports eq')
                try:
                    offset = int(item.value)
                except ValueError:
                    raise errors.BadRequest(
                        'q.value', f'search_offset {item.value!r} is not '
                        'a whole number of minutes') from None
                continue
            if item.op not in TIMESTAMP_OPS:
                raise errors.BadRequest(
                    'q.op', f'unimplemented operator {item.op!r} for '
                    f'timestamp; use one of {", ".join(TIMESTAMP_OPS)}')
            moment = parse_datetime(item.value, 'q.value')
            side = 'end' if item.op in ('lt', 'le') else 'start'
            stamps[f'{side}_timestamp'] = moment
            stamps[f'{side}_timestamp_op'] = item.op
            continue
        if _is_metadata(item.field):
            if item.op != 'eq':
                raise errors.BadRequest(
                    'q.op', f'unimplemented operator {item.op!r} for '
                    f'{item.field}; only eq')
            key = item.field
            if key.startswith('resource_'):
                key = key[len('resource_'):]
            metaquery[key] = item.typed_value()
            continue
        key = TRANSLATION.get(item.field, item.field)
        if key not in valid_keys:
            names = sorted({*valid_keys, 'timestamp'} if allow_timestamps
                           else valid_keys)
            raise errors.BadRequest(
                'q.field', f'unrecognized field in query: {item.field!r}; '
                f'valid fields: {", ".join(names)}, metadata.<key>')
        if item.op != 'eq':
            raise errors.BadRequest(
                'q.op', f'unimplemented operator {item.op!r} for '
                f'{item.field}; only eq')
        if item.type:
            item.typed_value()  # a value of the wrong type is a 400 too
        kwargs[key] = item.value
    if offset and stamps:
        delta = datetime.timedelta(minutes=offset)
        try:
            if 'start_timestamp' in stamps:
                stamps['start_timestamp'] -= delta
            if 'end_timestamp' in stamps:
                stamps['end_timestamp'] += delta
        except OverflowError:
            raise errors.BadRequest(
                'q.value', 'search_offset moves the time range out of '
                'the calendar') from None
    elif offset:
        raise errors.BadRequest('q.field', 'search_offset cannot be used '
                                'without timestamp')
    kwargs.update(stamps)
    if metaquery:
        kwargs['metaquery'] = metaquery
    return kwargs


def project_constraint(queries: Sequence[Query]) -> list[str]:
    """The project ids the query asks for (``project`` or
    ``project_id`` fields)."""
    return [item.value for item in queries
            if item.field in ('project', 'project_id')]
