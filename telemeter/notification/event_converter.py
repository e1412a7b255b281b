"""Declarative events: notifications reduced to typed traits.

``event_definitions.yaml`` is a list of ``{event_type, traits}`` entries.
``event_type`` holds shell globs (``!glob`` excludes); the **last** matching
entry of the file builds the event. Unless
``[event] drop_unmatched_notifications`` is set, a notification no entry
matches still becomes an event carrying only the default traits.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg
from oslo_log import log

from telemeter import declarative, utils
from telemeter.storage import models

LOG = log.getLogger(__name__)

PACKAGED_DEFINITIONS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    'pipeline', 'data', 'event_definitions.yaml')

OPTS = [
    cfg.StrOpt('definitions_cfg_file',
               default='event_definitions.yaml',
               help='Configuration file for event definitions: a path, a '
                    'name looked up in the configuration directories, or '
                    'else the packaged file.'),
    cfg.BoolOpt('drop_unmatched_notifications',
                default=False,
                help='Drop notifications if no event definition matches. '
                     '(Otherwise, we convert them with just the default '
                     'traits)'),
    cfg.MultiStrOpt('store_raw',
                    default=[],
                    help='Store the raw notification for select priority '
                         'levels (info and/or error). By default, raw '
                         'details are not captured.'),
]

TRAIT_TYPES = ('text', 'int', 'float', 'datetime')
#: Event types whose definition is remembered (see meters.MATCH_CACHE_SIZE).
MATCH_CACHE_SIZE = 4096


def _default_traits() -> dict[str, Any]:
    """Traits every definition gets unless it defines the same name."""
    return {
        'service': {'type': 'text', 'fields': 'publisher_id'},
        'request_id': {'type': 'text', 'fields': 'ctxt.request_id'},
        'project_id': {'type': 'text', 'fields': [
            'payload.tenant_id', 'ctxt.project_id', 'ctxt.tenant']},
        'tenant_id': {'type': 'text', 'fields': [
            'payload.tenant_id', 'ctxt.project_id', 'ctxt.tenant']},
        'user_id': {'type': 'text', 'fields': [
            'payload.user_id', 'ctxt.user_id']},
    }


class TraitDefinition:
    """One trait of an event definition."""

    def __init__(self, name: str, trait_cfg: Any, plugin_manager: Any
                 ) -> None:
        self.name = name
        type_name = 'text'
        if isinstance(trait_cfg, dict):
            type_name = trait_cfg.get('type', 'text')
        trait_type = (models.Trait.get_type_by_name(type_name)
                      if type_name in TRAIT_TYPES else None)
        if trait_type is None:
            raise declarative.EventDefinitionException(
                f"Invalid trait type '{type_name}' for trait {name}",
                trait_cfg)
        self.trait_type = trait_type
        try:
            self.fields = declarative.Definition(name, trait_cfg,
                                                 plugin_manager)
        except declarative.EventDefinitionException:
            raise
        except declarative.DefinitionException as err:
            raise declarative.EventDefinitionException(
                err.brief_message, trait_cfg) from err

    def to_trait(self, notification: Mapping[str, Any]
                 ) -> models.Trait | None:
        """The trait of ``notification``, or None when it has no value.

        A value that cannot be converted to the trait's type is logged
        and the trait left out (the rest of the event is kept).
        """
        value = self.fields.first(notification)
        if value is None:
            return None
        if self.trait_type == models.Trait.TEXT_TYPE:
            if type(value) is str:  # the usual case, as convert_value does
                return models.Trait(self.name, self.trait_type,
                                    value[:models.TEXT_MAX_LENGTH])
        elif value == '':
            return None
        try:
            converted = models.Trait.convert_value(self.trait_type, value)
        except (ValueError, TypeError, OverflowError) as err:
            LOG.warning('Trait %s of %s: cannot convert %r to %s (%s); the '
                        'trait is left out', self.name,
                        notification.get('event_type'), value,
                        models.Trait.get_name_by_type(self.trait_type), err)
            return None
        return models.Trait(self.name, self.trait_type, converted)


class EventDefinition:
    """One ``{event_type, traits}`` entry of the definitions file."""

    def __init__(self, definition_cfg: Any, plugin_manager: Any) -> None:
        self.cfg = definition_cfg
        if not isinstance(definition_cfg, dict):
            raise declarative.EventDefinitionException(
                'An event definition must be a mapping with event_type and '
                'traits', definition_cfg)
        for key in ('event_type', 'traits'):
            if key not in definition_cfg:
                raise declarative.EventDefinitionException(
                    f'Required field {key} not specified', definition_cfg)
        event_types = definition_cfg['event_type']
        if not isinstance(event_types, list):
            event_types = [event_types]
        if not event_types or not all(isinstance(t, str) and t
                                      for t in event_types):
            raise declarative.EventDefinitionException(
                f'event_type must be a glob or a list of globs, not '
                f'{definition_cfg["event_type"]!r}', definition_cfg)
        self.excluded = [t[1:] for t in event_types if t.startswith('!')]
        self.included = [t for t in event_types if not t.startswith('!')]
        if not self.included:
            self.included = ['*']

        traits_cfg = definition_cfg['traits'] or {}
        if not isinstance(traits_cfg, dict):
            raise declarative.EventDefinitionException(
                f'traits must be a mapping of trait names to definitions, '
                f'not {traits_cfg!r}', definition_cfg)
        merged = _default_traits()
        merged.update(traits_cfg)
        self.traits = {name: TraitDefinition(name, trait_cfg,
                                             plugin_manager)
                       for name, trait_cfg in merged.items()}
        self.trait_list = list(self.traits.values())

    def included_type(self, event_type: str) -> bool:
        return any(fnmatch.fnmatch(event_type, t) for t in self.included)

    def excluded_type(self, event_type: str) -> bool:
        return any(fnmatch.fnmatch(event_type, t) for t in self.excluded)

    def match_type(self, event_type: str) -> bool:
        return (self.included_type(event_type)
                and not self.excluded_type(event_type))

    @property
    def is_catchall(self) -> bool:
        return '*' in self.included and not self.excluded

    def to_event(self, priority: str, notification: Mapping[str, Any],
                 store_raw: list[str]) -> models.Event:
        metadata = notification.get('metadata') or {}
        generated = utils.naive_utc(
            utils.parse_isotime(str(metadata['timestamp'])))
        traits = []
        for definition in self.trait_list:
            trait = definition.to_trait(notification)
            if trait is not None:
                traits.append(trait)
        raw = dict(notification) if priority in store_raw else {}
        return models.Event(metadata.get('message_id'),
                            notification['event_type'], generated, traits,
                            raw)


def _definitions_path(conf: cfg.ConfigOpts) -> str:
    value = conf.event.definitions_cfg_file
    if os.path.exists(value):
        return value
    return conf.find_file(value) or PACKAGED_DEFINITIONS


class NotificationEventsConverter:
    """Turns notification dicts into :class:`~telemeter.storage.models.Event`.

    Invalid entries of the definitions list are logged and skipped;
    ``definition_errors`` says which and why, one line each.
    """

    def __init__(self, conf: cfg.ConfigOpts, events_config: Any,
                 plugin_manager: Any, source: str = 'event definitions'
                 ) -> None:
        self.conf = conf
        self.definitions: list[EventDefinition] = []
        self.definition_errors: list[str] = []
        if events_config is None:
            events_config = []
        if not isinstance(events_config, list):
            self.definition_errors.append(
                f'{source}: it must hold a list of event definitions')
            LOG.error('%s; none loaded', self.definition_errors[-1])
            events_config = []
        for position, entry in enumerate(events_config, 1):
            try:
                self.definitions.append(EventDefinition(entry,
                                                        plugin_manager))
            except declarative.DefinitionException as err:
                LOG.error('Error loading event definition %d of %s: %s; it '
                          'is skipped, the other definitions load',
                          position, source, err)
                self.definition_errors.append(
                    f'{source}: event definition {position}: {err}')
        self.catchall: EventDefinition | None = None
        if (not conf.event.drop_unmatched_notifications
                and not any(d.is_catchall for d in self.definitions)):
            self.catchall = EventDefinition(
                {'event_type': '*', 'traits': {}}, plugin_manager)
        self.store_raw = [p.lower() for p in conf.event.store_raw]
        self._found: dict[str, EventDefinition | None] = {}

    def find_definition(self, event_type: str) -> EventDefinition | None:
        """The last configured definition matching, else the catch-all
        (remembered per event type)."""
        try:
            return self._found[event_type]
        except KeyError:
            pass
        if len(self._found) >= MATCH_CACHE_SIZE:
            self._found.clear()
        found = next((definition for definition in reversed(self.definitions)
                      if definition.match_type(event_type)), self.catchall)
        self._found[event_type] = found
        return found

    def to_event(self, priority: str, notification: Mapping[str, Any]
                 ) -> models.Event | None:
        event_type = notification.get('event_type')
        message_id = (notification.get('metadata') or {}).get('message_id')
        definition = (self.find_definition(event_type)
                      if isinstance(event_type, str) else None)
        if definition is None:
            if self.conf.event.drop_unmatched_notifications:
                LOG.debug('Dropping Notification %(type)s (uuid:%(msgid)s)',
                          {'type': event_type, 'msgid': message_id})
            else:
                LOG.error('Dropping Notification %(type)s (uuid:%(msgid)s)',
                          {'type': event_type, 'msgid': message_id})
            return None
        if not isinstance(message_id, str) or not message_id:
            # The id makes a redelivered event a duplicate storage skips;
            # without one (or with another type, which storage refuses)
            # the notification is not one oslo.messaging sent.
            raise ValueError(f'message_id {message_id!r} is not a string')
        return definition.to_event(priority.lower(), notification,
                                   self.store_raw)


def setup_events(conf: cfg.ConfigOpts, plugin_manager: Any
                 ) -> NotificationEventsConverter:
    """Build the converter of ``[event] definitions_cfg_file``.

    A file that cannot be read or parsed raises
    :class:`~telemeter.declarative.DefinitionFileError` naming it.
    """
    path = _definitions_path(conf)
    LOG.info('Event Definitions configuration file: %s', path)
    events_config = declarative.load_definitions_file(path)
    return NotificationEventsConverter(conf, events_config, plugin_manager,
                                       source=path)
