"""``gnocchi_resources.yaml``: which Gnocchi resource type holds a meter.

The file format is described at the top of the packaged
``telemeter/data/gnocchi_resources.yaml``; it reads Ceilometer's files too
(``attribute_types`` and shell patterns in ``metrics`` are additions).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from oslo_config import cfg
from oslo_log import log

from telemeter import declarative, utils

LOG = log.getLogger(__name__)

PACKAGED = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data',
                        'gnocchi_resources.yaml')

#: Schema of an attribute that names no ``attribute_types`` entry.
DEFAULT_ATTRIBUTE_TYPE = {'type': 'string', 'min_length': 0,
                          'max_length': 255, 'required': False}


class ResourceDefinitionError(ValueError):
    """The resources file is not usable (names the file and the entry)."""


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class ResourceDefinition:
    """One ``resources`` entry: a resource type, its meters and attributes."""

    def __init__(self, entry: dict, default_policy: str,
                 policy_override: str | None) -> None:
        if not isinstance(entry, dict) or not isinstance(
                entry.get('resource_type'), str):
            raise ResourceDefinitionError(
                f'resource entry without a resource_type: {entry!r}')
        self.resource_type: str = entry['resource_type']
        metrics = entry.get('metrics') or {}
        if isinstance(metrics, list):  # Ceilometer's older list form
            metrics = dict.fromkeys(metrics)
        #: meter name (or pattern) -> archive policy name
        self.metrics: dict[str, str] = {}
        for name, extra in metrics.items():
            policy = (extra or {}).get('archive_policy_name') or \
                default_policy
            self.metrics[name] = policy_override or policy
        self.attributes = {
            name: declarative.Definition(name, path, None)
            for name, path in (entry.get('attributes') or {}).items()}
        types = entry.get('attribute_types') or {}
        self.attribute_types = {
            name: {**DEFAULT_ATTRIBUTE_TYPE, **types.get(name, {})}
            if types.get(name, {}).get('type', 'string') == 'string'
            else dict(types[name])
            for name in {*self.attributes, *types}}
        self.event_delete = _as_list(entry.get('event_delete'))
        self.event_id_trait: str | None = (
            entry.get('event_attributes') or {}).get('id')
        if self.event_delete and not self.event_id_trait:
            raise ResourceDefinitionError(
                f'{self.resource_type}: event_delete needs event_attributes '
                f'id (the trait holding the resource id)')
        self.associated: dict[str, str] = dict(
            entry.get('event_associated_resources') or {})

    def sample_attributes(self, sample: dict) -> dict[str, Any]:
        """The attributes found in ``sample`` (a ``Sample.as_dict()``)."""
        found = {}
        for name, definition in self.attributes.items():
            value = definition.parse(sample)
            if value is not None:
                found[name] = value
        return found

    def deletes(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, pattern)
                   for pattern in self.event_delete)


class Definitions:
    """Everything a resources file defines, with a meter lookup."""

    def __init__(self, content: Any, policy_override: str | None = None,
                 source: str = '<memory>') -> None:
        if not isinstance(content, dict):
            raise ResourceDefinitionError(f'{source}: not a mapping')
        self.source = source
        self.archive_policy_default: str = content.get(
            'archive_policy_default', 'telemeter-low')
        self.archive_policies: list[dict] = list(
            content.get('archive_policies') or [])
        self.resources: list[ResourceDefinition] = []
        for entry in content.get('resources') or []:
            try:
                self.resources.append(ResourceDefinition(
                    entry, self.archive_policy_default, policy_override))
            except (ResourceDefinitionError,
                    declarative.DefinitionException) as err:
                raise ResourceDefinitionError(f'{source}: {err}') from err
        self._exact: dict[str, ResourceDefinition] = {}
        self._patterns: list[tuple[str, ResourceDefinition]] = []
        for definition in self.resources:
            for name in definition.metrics:
                if any(ch in name for ch in '*?['):
                    self._patterns.append((name, definition))
                else:
                    self._exact.setdefault(name, definition)
        self._cache: dict[str, tuple[ResourceDefinition, str] | None] = {}

    def lookup(self, meter: str) -> tuple[ResourceDefinition, str] | None:
        """``(definition, archive policy)`` of ``meter``, or None."""
        try:
            return self._cache[meter]
        except KeyError:
            pass
        found: tuple[ResourceDefinition, str] | None = None
        definition = self._exact.get(meter)
        if definition is not None:
            found = (definition, definition.metrics[meter])
        else:
            for pattern, definition in self._patterns:
                if fnmatch.fnmatchcase(meter, pattern):
                    found = (definition, definition.metrics[pattern])
                    break
        if len(self._cache) < 10000:
            self._cache[meter] = found
        return found

    def for_delete_event(self, event_type: str
                         ) -> Iterable[ResourceDefinition]:
        return [d for d in self.resources if d.deletes(event_type)]

    def resource_types(self) -> dict[str, dict[str, dict]]:
        """Resource type name -> attribute schemas (several entries of one
        type are merged)."""
        types: dict[str, dict[str, dict]] = {}
        for definition in self.resources:
            types.setdefault(definition.resource_type, {}).update(
                definition.attribute_types)
        return types


def find_file(conf: cfg.ConfigOpts, name: str) -> str:
    """``name`` as given (absolute), in the configuration directories, or
    the packaged file."""
    if os.path.isabs(name):
        return name
    found = conf.find_file(name)
    if found:
        return found
    if name == os.path.basename(PACKAGED):
        return PACKAGED
    raise ResourceDefinitionError(
        f'resources definition file {name} not found next to the '
        f'configuration files')


def load(conf: cfg.ConfigOpts, name: str = 'gnocchi_resources.yaml',
         policy_override: str | None = None) -> Definitions:
    """Load and validate a resources file (see :func:`find_file`)."""
    path = find_file(conf, name)
    try:
        with open(path) as handle:
            content = utils.load_yaml(handle)
    except (OSError, yaml.YAMLError) as err:
        raise ResourceDefinitionError(f'{path}: {err}') from err
    LOG.debug('Gnocchi resources loaded from %s', path)
    return Definitions(content, policy_override, path)


def ensure_archive_policies(client: Any, definitions: Definitions,
                            call: Callable[..., Any] | None = None) -> int:
    """Create the archive policies of ``definitions`` that Gnocchi lacks
    (``call`` runs each request, as :meth:`GnocchiCalls.call
    <telemeter.gnocchi.calls.GnocchiCalls.call>` does); returns how many
    were created."""
    from gnocchiclient import exceptions as gexc

    call = call or (lambda func, *a, **k: func(*a, **k))
    created = 0
    for policy in definitions.archive_policies:
        try:
            call(client.archive_policy.create, dict(policy))
        except (gexc.ArchivePolicyAlreadyExists, gexc.Conflict):
            continue
        created += 1
        LOG.info('Created the Gnocchi archive policy %s', policy['name'])
    return created
