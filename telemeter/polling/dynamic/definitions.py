"""Validation of dynamic pollster definitions (polling.md §7).

:func:`validate` checks one YAML mapping and returns it completed with the
defaults; any problem raises :class:`DynamicPollsterDefinitionException`
whose text says which field is wrong and how.
"""

from __future__ import annotations

import re
from typing import Any

from telemeter import expression
from telemeter import sample as sample_mod
from telemeter.polling.dynamic import responses

NAME_RE = re.compile(r'^([\w-]+)(\.[\w-]+)*(\.{[\w-]+})?$')
MULTI_METRIC_RE = re.compile(r'\.{([\w-]+)}$')
MULTI_VALUE_RE = re.compile(r'^\[([^\]]+)\]\.?(.*)$')

REQUIRED = ('name', 'sample_type', 'unit', 'value_attribute',
            'endpoint_type', 'url_path')

DEFAULTS: dict[str, Any] = {
    'endpoint_type': None,
    'url_path': None,
    'namespaces': ['central'],
    'metadata_fields': None,
    'skip_sample_values': [],
    'value_mapping': {},
    'default_value': -1,
    'metadata_mapping': {},
    'preserve_mapped_metadata': True,
    'response_entries_key': None,
    'next_sample_url_attribute': None,
    'user_id_attribute': 'user_id',
    'project_id_attribute': 'project_id',
    'resource_id_attribute': 'id',
    'headers': {},
    'timeout': 30,
    'extra_metadata_fields': None,
    'extra_metadata_fields_cache_seconds': 3600,
    'extra_metadata_fields_skip': [{}],
    'response_handlers': ['json'],
    'base_metadata': {},
    'module': None,
    'authentication_object': None,
    'authentication_parameters': None,
    'host_command': None,
}

_TYPES: dict[str, type | tuple[type, ...]] = {
    'metadata_fields': list, 'skip_sample_values': list,
    'value_mapping': dict, 'metadata_mapping': dict,
    'preserve_mapped_metadata': bool, 'headers': dict,
    'timeout': (int, float), 'extra_metadata_fields': list,
    'extra_metadata_fields_cache_seconds': (int, float),
    'extra_metadata_fields_skip': list, 'response_handlers': list,
    'base_metadata': dict,
}


class DynamicPollsterDefinitionException(Exception):
    """A dynamic pollster definition is invalid."""


def _fail(definition: dict, message: str) -> None:
    raise DynamicPollsterDefinitionException(
        f'{message} (definition {definition.get("name", "<no name>")!r})')


def _check_attribute(definition: dict, key: str, value: Any) -> None:
    if not isinstance(value, str):
        _fail(definition, f'{key} must be a string attribute path, not '
                          f'{type(value).__name__}')
    for operation in responses.split_operations(value)[1]:
        try:
            responses.OPERATIONS.check(operation)
        except expression.ExpressionError as err:
            _fail(definition, f'{key}: {err}')


def validate(raw: Any) -> dict:
    """Check ``raw`` and return a new dict with every optional key set."""
    if not isinstance(raw, dict):
        raise DynamicPollsterDefinitionException(
            f'a definition must be a mapping, not {type(raw).__name__}')
    definition = {**DEFAULTS, **raw}
    unknown = set(raw) - set(DEFAULTS) - set(REQUIRED)
    if unknown:
        _fail(definition, f'unknown field(s) {sorted(unknown)}: check their '
                          f'spelling')
    non_openstack = bool(definition['module']
                         or definition['authentication_object'])
    local = bool(definition['host_command'])
    required = [key for key in REQUIRED
                if not ((non_openstack or local) and key == 'endpoint_type')
                and not (local and key == 'url_path')]
    missing = [key for key in required if definition.get(key) in (None, '')]
    if missing:
        _fail(definition, f'required fields {missing} are missing')
    if non_openstack and not (definition['module']
                              and definition['authentication_object']):
        _fail(definition, 'module and authentication_object go together')

    name = definition['name']
    if not isinstance(name, str) or not NAME_RE.match(name):
        _fail(definition, f'name {name!r} does not match '
                          f'{NAME_RE.pattern}')
    if definition['sample_type'] not in sample_mod.TYPES:
        _fail(definition, f'sample_type {definition["sample_type"]!r} is '
                          f'not one of {list(sample_mod.TYPES)}')
    namespaces = definition['namespaces']
    if isinstance(namespaces, str):
        namespaces = [namespaces]
    if not (isinstance(namespaces, list)
            and all(isinstance(n, str) for n in namespaces)):
        _fail(definition, 'namespaces must be a string or a list of strings')
    definition['namespaces'] = namespaces

    for key, expected in _TYPES.items():
        if definition[key] is not None and not isinstance(definition[key],
                                                          expected):
            _fail(definition, f'{key} has the wrong type '
                              f'{type(definition[key]).__name__}')
    if definition['timeout'] <= 0:
        _fail(definition, 'timeout must be > 0 seconds')
    unknown_handlers = set(definition['response_handlers']) - set(
        responses.HANDLERS)
    if unknown_handlers or not definition['response_handlers']:
        _fail(definition, f'response_handlers must be a non-empty list of '
                          f'{sorted(responses.HANDLERS)}')

    _check_attribute(definition, 'value_attribute',
                     definition['value_attribute'])
    for key in ('user_id_attribute', 'project_id_attribute',
                'resource_id_attribute', 'response_entries_key',
                'next_sample_url_attribute'):
        if definition[key] is not None:
            _check_attribute(definition, key, definition[key])
    for field in definition['metadata_fields'] or []:
        _check_attribute(definition, 'metadata_fields', field)

    multi = MULTI_METRIC_RE.search(name)
    if multi and not MULTI_VALUE_RE.match(definition['value_attribute']):
        _fail(definition, 'a multi-metric pollster (name ending in .{attr}) '
                          'needs value_attribute "[list_attribute].path"')
    definition['multi_metric_attribute'] = multi.group(1) if multi else None

    for extra in definition['extra_metadata_fields'] or []:
        if not isinstance(extra, dict) or not extra.get('name') \
                or not extra.get('value') or not extra.get('url_path'):
            _fail(definition, 'each extra_metadata_fields entry needs name, '
                              'url_path and value')
    return definition
