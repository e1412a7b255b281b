"""Declarative meters: the ``meter`` notification handler and ``meters.d``.

Every ``*.yaml`` file of each ``[meter] meter_definitions_dirs`` directory
holds a ``metric:`` list of meter definitions. A notification produces one
sample per definition whose ``event_type`` regular expression matches (or
several with ``lookup``).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from oslo_config import cfg
from oslo_log import log
from stevedore import extension

from telemeter import declarative
from telemeter import sample as sample_util
from telemeter.messaging import envelope
from telemeter.notification import plugin_base

LOG = log.getLogger(__name__)

PACKAGED_METERS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    'data', 'meters.d')

OPTS = [
    cfg.MultiStrOpt('meter_definitions_dirs',
                    default=['/etc/telemeter/meters.d',
                             PACKAGED_METERS_DIR],
                    sample_default=['/etc/telemeter/meters.d',
                                    '<package>/data/meters.d'],
                    help='Directories holding meter definition files '
                         '(names ending in .yaml). Files are read in path '
                         'order and the first directory wins for a meter '
                         'name defined in '
                         'several, so /etc/telemeter/meters.d overrides the '
                         'packaged definitions.'),
    cfg.StrOpt('meter_definitions_cfg_file',
               deprecated_for_removal=True,
               help='Configuration file for defining meter notifications. '
                    'Deprecated: put the file into a directory of '
                    'meter_definitions_dirs instead.'),
]

TRAIT_PLUGIN_NAMESPACE = 'telemeter.event.trait_plugin'

SAMPLE_ATTRIBUTES = ('name', 'type', 'volume', 'unit', 'timestamp',
                     'user_id', 'project_id', 'resource_id')
REQUIRED_FIELDS = ['name', 'type', 'event_type', 'unit', 'volume',
                   'resource_id']
# Attributes whose default is the literal configuration text: a value that
# is not valid JSONPath (``%``, ``B/s``) is simply that literal.
LITERAL_ATTRIBUTES = ('name', 'type', 'unit')
#: Event types whose matching definitions are remembered (a bound against
#: a stream of made-up event types; real clouds have a few hundred).
MATCH_CACHE_SIZE = 4096


def _context_value(message: Mapping[str, Any], *keys: str) -> Any:
    ctxt = message.get('ctxt')
    if not isinstance(ctxt, dict):
        return None
    for key in keys:
        if ctxt.get(key) is not None:
            return ctxt[key]
    return None


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class MeterDefinition:
    """One entry of a ``metric:`` list.

    Raises :class:`~telemeter.declarative.MeterDefinitionException` when the
    entry is invalid.
    """

    def __init__(self, definition_cfg: Any, conf: cfg.ConfigOpts,
                 plugin_manager: Any) -> None:
        self.cfg = definition_cfg
        self.conf = conf
        if not isinstance(definition_cfg, dict):
            raise declarative.MeterDefinitionException(
                'A meter definition must be a mapping', definition_cfg)
        missing = [f for f in REQUIRED_FIELDS if not definition_cfg.get(f)]
        if missing:
            raise declarative.MeterDefinitionException(
                f'Required fields {missing} not specified', definition_cfg)
        self.lookup = [str(k) for k in _as_list(
            definition_cfg.get('lookup') or [])]
        if (definition_cfg['type'] not in sample_util.TYPES
                and 'type' not in self.lookup):
            raise declarative.MeterDefinitionException(
                f"Invalid type {definition_cfg['type']} specified",
                definition_cfg)
        self.event_patterns = self._compile_event_types(
            definition_cfg['event_type'])

        self.attributes: dict[str, declarative.Definition] = {}
        for name in SAMPLE_ATTRIBUTES:
            if definition_cfg.get(name) is not None:
                definition = self._attribute(name, definition_cfg[name],
                                             plugin_manager)
                if definition is not None:
                    self.attributes[name] = definition
        metadata_cfg = definition_cfg.get('metadata') or {}
        if not isinstance(metadata_cfg, dict):
            raise declarative.MeterDefinitionException(
                f'metadata must be a mapping of names to value definitions, '
                f'not {metadata_cfg!r}', definition_cfg)
        self.metadata = {key: self._definition(key, value, plugin_manager)
                         for key, value in metadata_cfg.items()}
        self.user_metadata = None
        if definition_cfg.get('user_metadata'):
            self.user_metadata = self._definition(
                'user_metadata', definition_cfg['user_metadata'],
                plugin_manager)
        if self.lookup:
            for name, definition in self.attributes.items():
                if not definition.supports_all_values:
                    raise declarative.MeterDefinitionException(
                        f"Plugin {definition.plugin.__class__.__name__} "
                        f"don't allows to return multiple values (needed "
                        f"by {name} because of lookup)", definition_cfg)

    def _attribute(self, name: str, value: Any, plugin_manager: Any
                   ) -> declarative.Definition | None:
        """The definition of a sample attribute; None for a ``name``,
        ``type`` or ``unit`` written as plain text, not as a path."""
        if name in LITERAL_ATTRIBUTES and isinstance(value, str):
            try:
                return declarative.Definition(name, value, plugin_manager)
            except declarative.DefinitionException:
                return None
        return self._definition(name, value, plugin_manager)

    def _definition(self, name: str, value: Any, plugin_manager: Any
                    ) -> declarative.Definition:
        try:
            return declarative.Definition(name, value, plugin_manager)
        except declarative.DefinitionException as err:
            raise declarative.MeterDefinitionException(
                err.brief_message, self.cfg) from err

    def _compile_event_types(self, event_types: Any) -> list[re.Pattern]:
        patterns = []
        for event_type in _as_list(event_types):
            try:
                patterns.append(re.compile(str(event_type)))
            except re.error as err:
                raise declarative.MeterDefinitionException(
                    f'Invalid event_type regular expression {event_type!r}: '
                    f'{err}', self.cfg) from err
        return patterns

    @property
    def name(self) -> str:
        return self.cfg['name']

    def match_type(self, event_type: str) -> bool:
        """Whether one of the ``event_type`` expressions matches (anchored
        at the start only, like :func:`re.match`)."""
        return any(p.match(event_type) for p in self.event_patterns)

    def _defaults(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return {
            'name': self.cfg['name'], 'type': self.cfg['type'],
            'unit': self.cfg['unit'], 'volume': None, 'timestamp': None,
            'resource_id': None,
            'user_id': _context_value(message, 'user_id', 'user'),
            'project_id': _context_value(message, 'project_id', 'tenant_id',
                                         'tenant'),
            'message': message, 'metadata': self._metadata(message),
        }

    def _metadata(self, message: Mapping[str, Any]) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        for key, definition in self.metadata.items():
            value = definition.parse(message)
            if value:
                metadata[key] = value
        if self.user_metadata is not None:
            user_metadata = self.user_metadata.parse(message)
            if user_metadata and isinstance(user_metadata, dict):
                sample_util.add_reserved_user_metadata(
                    self.conf, user_metadata, metadata)
        return metadata

    def to_samples(self, message: Mapping[str, Any]
                   ) -> list[dict[str, Any]]:
        """Keyword arguments of ``Sample.from_notification`` for every
        sample this definition makes of ``message``."""
        values = self._defaults(message)
        if not self.lookup:
            for name, definition in self.attributes.items():
                value = definition.parse(message)
                if value is not None:
                    values[name] = value
            return [values]
        return self._lookup_samples(message, values)

    def _lookup_samples(self, message: Mapping[str, Any],
                        defaults: dict[str, Any]) -> list[dict[str, Any]]:
        columns = {name: [value] for name, value in defaults.items()}
        for name, definition in self.attributes.items():
            found = definition.parse(message, return_all_values=True)
            if name in self.lookup or name == 'name' or found:
                columns[name] = found
        total = len(columns['name'])
        if total == 0:
            return []
        expanded = {}
        for name, column in columns.items():
            if len(column) == total:
                expanded[name] = column
            elif len(column) == 1 and name not in self.lookup:
                expanded[name] = list(itertools.repeat(column[0], total))
            else:
                found = 0 if column == [None] else len(column)
                LOG.warning('Only %(found)d fetched meters contain '
                            '"%(name)s" field instead of %(total)d.',
                            {'found': found, 'name': name, 'total': total})
                return []
        samples = [{name: expanded[name][i] for name in expanded}
                   for i in range(total)]
        for kwargs in samples:
            # One metadata dict per sample: later stages may modify it.
            kwargs['metadata'] = dict(kwargs['metadata'] or {})
        return samples


def _definition_files(conf: cfg.ConfigOpts) -> list[str]:
    files = []
    for directory in conf.meter.meter_definitions_dirs:
        files.extend(declarative.yaml_files(directory))
    if conf.meter.meter_definitions_cfg_file:
        path = conf.meter.meter_definitions_cfg_file
        if not os.path.exists(path):
            path = conf.find_file(path) or path
        files.append(path)
    return files


def load_definitions(conf: cfg.ConfigOpts, plugin_manager: Any
                     ) -> tuple[list[MeterDefinition], list[str]]:
    """Load every meter definition; return ``(definitions, errors)``.

    Within a file the last definition of a name wins; across files the
    first file does. Bad definitions (and unreadable files) are logged
    and skipped; ``errors`` says what was skipped and why, one line each
    naming the file (the daemons' start-up check refuses any).
    """
    loaded: dict[str, tuple[int, int, MeterDefinition]] = {}
    errors: list[str] = []
    for file_index, path in enumerate(_definition_files(conf)):
        try:
            content = declarative.load_definitions_file(path)
        except declarative.DefinitionFileError as err:
            LOG.error('Skipping meter definitions file %s: %s', path, err)
            errors.append(str(err))
            continue
        entries = content.get('metric') if isinstance(content, dict) else None
        if content is None:
            continue
        if not isinstance(entries, list):
            errors.append(f'{path}: it must hold a top-level "metric:" list')
            LOG.error('Skipping meter definitions file %s', errors[-1])
            continue
        for position in range(len(entries) - 1, -1, -1):
            entry = entries[position]
            name = entry.get('name') if isinstance(entry, dict) else None
            if isinstance(name, str) and name in loaded:
                LOG.warning('Skipping duplicate meter definition %s', entry)
                continue
            try:
                definition = MeterDefinition(entry, conf, plugin_manager)
            except declarative.DefinitionException as err:
                LOG.error('Error loading meter definition: %s (file %s, '
                          'entry %d of metric:); it is skipped, the other '
                          'definitions load', err, path, position + 1)
                errors.append(f'{path}: entry {position + 1} of metric: '
                              f'{err}')
                continue
            loaded[definition.name] = (file_index, position, definition)
    ordered = sorted(loaded.values(), key=lambda item: item[:2])
    return [definition for _f, _p, definition in ordered], errors


class ProcessMeterNotifications(plugin_base.NotificationBase):
    """The ``meter`` handler: samples from the declarative definitions.

    It accepts every event type; each notification is matched against the
    definitions' ``event_type`` expressions.
    """

    event_types: list[str] = []

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        plugins: extension.ExtensionManager[Any] = (
            extension.ExtensionManager(TRAIT_PLUGIN_NAMESPACE))
        self.definitions, self.definition_errors = load_definitions(
            self.conf, plugins)
        self._matching: dict[str, list[MeterDefinition]] = {}
        LOG.info('Loaded %d meter definitions (%d skipped for errors)',
                 len(self.definitions), len(self.definition_errors))

    def matching(self, event_type: str) -> list[MeterDefinition]:
        """The definitions whose ``event_type`` matches, in order
        (remembered per event type: the set of event types is small)."""
        found = self._matching.get(event_type)
        if found is None:
            if len(self._matching) >= MATCH_CACHE_SIZE:
                self._matching.clear()
            found = [definition for definition in self.definitions
                     if definition.match_type(event_type)]
            self._matching[event_type] = found
        return found

    def process_notification(self, message: envelope.Notification
                             ) -> Iterator[sample_util.Sample]:
        event_type = message.get('event_type')
        if not isinstance(event_type, str):
            return
        for definition in self.matching(event_type):
            for kwargs in definition.to_samples(message):
                yield sample_util.Sample.from_notification(**kwargs)
