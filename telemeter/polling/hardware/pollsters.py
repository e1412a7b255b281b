"""Declarative hardware pollsters (``telemeter.builder.poll.central:
hardware.snmp``).

:meth:`GenericHardwareDeclarativePollster.build_pollsters` reads ``[hardware]
meter_definitions_file`` (a literal path, else found like the other config
files, else the packaged ``data/snmp.yaml``) and builds one pollster per
valid meter definition. Each pollster asks the inspector of every
resource's URL scheme for its values and makes Samples with source
``hardware``.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from oslo_config import cfg
from oslo_log import log

from telemeter import sample as sample_mod
from telemeter import utils
from telemeter.polling import plugin_base
from telemeter.polling.hardware import inspector as inspector_mod

LOG = log.getLogger(__name__)

OPTS = [
    cfg.StrOpt('meter_definitions_file',
               default='snmp.yaml',
               help='Configuration file for defining hardware snmp meters.'),
]

# The package's data directory, telemeter/data/.
PACKAGED_DEFINITIONS = Path(__file__).parents[2] / 'data' / 'snmp.yaml'
SOURCE = 'hardware'
REQUIRED_FIELDS = ('name', 'unit', 'type')


class MeterDefinitionException(Exception):
    """A hardware meter definition is invalid."""


def definitions_path(conf: cfg.ConfigOpts) -> Path:
    """Where the meter definitions are read from."""
    name = conf.hardware.meter_definitions_file
    if name and os.path.exists(name):
        return Path(name)
    found = conf.find_file(name) if name else None
    return Path(found) if found else PACKAGED_DEFINITIONS


def check_definition(definition: Any) -> dict:
    """Validate one meter definition (raise MeterDefinitionException)."""
    if not isinstance(definition, dict):
        raise MeterDefinitionException(
            f'a meter definition must be a mapping, not {definition!r}')
    for field in REQUIRED_FIELDS:
        if field not in definition:
            raise MeterDefinitionException(f'Missing field {field}')
    if definition['type'] not in sample_mod.TYPES:
        raise MeterDefinitionException(
            f'Unrecognized type value {definition["type"]}')
    inspectors = {k: v for k, v in definition.items()
                  if k.endswith('_inspector')}
    if not inspectors:
        raise MeterDefinitionException(
            'Missing field <scheme>_inspector (e.g. snmp_inspector)')
    for field in definition:
        if field not in REQUIRED_FIELDS and field not in inspectors:
            LOG.warning('Ignore unrecognized field %s', field)
    return definition


def load_definitions(conf: cfg.ConfigOpts) -> list[dict]:
    """The valid meter definitions of the definitions file."""
    path = definitions_path(conf)
    try:
        content = utils.load_yaml(path.read_text(encoding='utf-8'))
    except (OSError, yaml.YAMLError) as err:
        raise MeterDefinitionException(
            f'cannot read hardware meter definitions {path}: {err}') from err
    metrics = content.get('metric') if isinstance(content, dict) else None
    if not isinstance(metrics, list):
        raise MeterDefinitionException(
            f'{path}: expected a top-level "metric:" list of meters')
    definitions = []
    for definition in metrics:
        try:
            definitions.append(check_definition(definition))
        except MeterDefinitionException as err:
            LOG.error('Error loading meter definition: %s', err)
    return definitions


class GenericHardwareDeclarativePollster(plugin_base.PollsterBase):
    """One hardware meter of ``snmp.yaml`` over every resource given."""

    def __init__(self, conf: cfg.ConfigOpts,
                 definition: dict | None = None) -> None:
        super().__init__(conf)
        self.definition = definition or {}
        self.name = self.definition.get('name', '')
        self._inspectors: dict[str, inspector_mod.Inspector] = {}
        self._params: dict[str, dict] = {}

    @property
    def default_discovery(self) -> str:
        return 'tripleo_overcloud_nodes'

    @classmethod
    def build_pollsters(cls, conf: cfg.ConfigOpts
                        ) -> list[tuple[str, plugin_base.PollsterBase]]:
        pollsters: list[tuple[str, plugin_base.PollsterBase]] = []
        for definition in load_definitions(conf):
            pollster = cls(conf, definition)
            try:
                pollster.prepare()
            except Exception as err:
                LOG.error('Error loading meter definition: %s: %s',
                          definition['name'], err)
                continue
            pollsters.append((definition['name'], pollster))
        return pollsters

    def prepare(self) -> None:
        """Load the inspectors the definition names and check its params."""
        for key, param in self.definition.items():
            if key.endswith('_inspector'):
                self._inspector(key[:-len('_inspector')], param)

    def _inspector(self, scheme: str, param: Any = None
                   ) -> tuple[inspector_mod.Inspector, dict]:
        if scheme not in self._inspectors:
            if param is None:
                param = self.definition.get(f'{scheme}_inspector')
            if param is None:
                raise ValueError(f'meter {self.name} has no {scheme}_inspector'
                                 f' definition')
            found = inspector_mod.get_inspector(self.conf, scheme)
            self._params[scheme] = found.prepare_params(param)
            self._inspectors[scheme] = found
        return self._inspectors[scheme], self._params[scheme]

    def _samples(self, resource: Any, cache: dict
                 ) -> Iterator[sample_mod.Sample]:
        host = inspector_mod.HardwareResource(resource)
        found, param = self._inspector(host.scheme)
        for value, metadata, extra in found.inspect_generic(
                host, cache, host.extra, param):
            if value is None:
                LOG.warning('%(meter)s: no value from host %(host)s',
                            {'meter': self.name, 'host': host.hostname})
                continue
            resource_metadata = {**metadata, 'resource_url': host.url}
            resource_metadata.update(
                (k, v) for k, v in host.extra.items()
                if k not in ('resource_id', 'user_id', 'project_id'))
            yield sample_mod.Sample(
                name=self.name, type=self.definition['type'],
                unit=self.definition['unit'], volume=value,
                user_id=extra.get('user_id'),
                project_id=extra.get('project_id'),
                resource_id=extra['resource_id'],
                resource_metadata=resource_metadata, source=SOURCE)

    def get_samples(self, manager: plugin_base.PollingContext, cache: dict,
                    resources: list[Any]) -> Iterator[sample_mod.Sample]:
        for resource in resources:
            try:
                # Materialise per resource: an error drops this host only.
                yield from list(self._samples(resource, cache))
            except Exception as err:
                url = str(resource.get('resource_url', resource)
                          if isinstance(resource, dict) else resource)
                host = urllib.parse.urlsplit(url).hostname or url
                text = str(err)
                level = LOG.warning if 'timeout' in text.lower() \
                    else LOG.error
                level('inspector call failed for %(ident)s host %(host)s: '
                      '%(err)s', {'ident': self.name, 'host': host,
                                  'err': text})
