"""Value definitions shared by meter and event definitions.

A *value definition* says where a value comes from in a notification dict
(``ctxt``, ``publisher_id``, ``event_type``, ``payload``, ``metadata``):

* an int (or float) constant, used as is;
* a JSONPath string, parsed by jsonpath-ng's extended parser
  (:mod:`jsonpath_ng.ext`), so filters
  (``$.payload.metrics[?(@.name='cpu.percent')].value``), arithmetic
  (``$.payload.a * 100``), concatenation (``$.payload.host + '_' +
  $.payload.node``) and extensions (`` $.publisher_id.`split(., 1, -1)` ``,
  `` `len` ``, `` `sorted` ``) all work. Plain field chains
  (``$.payload.size``) are evaluated without jsonpath-ng, and most other
  paths are compiled into plain functions (:mod:`.accessors`);
* a list of JSONPath strings: the first one that yields a value wins;
* a mapping ``{fields: <string or list>, plugin: <name> | {name,
  parameters}}`` whose matches are post-processed by a trait plugin
  (``telemeter.event.trait_plugin``).

This is the public home of the definition helpers and their errors
(``Definition``, ``MeterDefinitionException``, ...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import yaml
from oslo_log import log

from telemeter import utils
from telemeter.notification import accessors, jsonpath_syntax

LOG = log.getLogger(__name__)


class DefinitionException(Exception):
    """A meter, event or trait definition is invalid.

    ``str()`` is ``"<class name> <definition>: <message>"``;
    ``brief_message`` is the message alone and ``definition_cfg`` the
    offending definition.
    """

    def __init__(self, message: str, definition_cfg: Any = None) -> None:
        self.brief_message = message
        self.definition_cfg = definition_cfg
        super().__init__(
            f'{self.__class__.__name__} {definition_cfg}: {message}')


class MeterDefinitionException(DefinitionException):
    """An entry of a ``meters.d`` file is invalid."""


class EventDefinitionException(DefinitionException):
    """An entry of ``event_definitions.yaml`` is invalid."""


class DefinitionFileError(Exception):
    """A definitions file cannot be read or is not valid YAML."""


_PARSED: dict[str, Any] = {}


# ``$.payload.size`` or ``payload.image_meta.base_image_ref``: most paths
# of the definitions are plain field chains, evaluated without jsonpath.
_DOTTED = re.compile(r'^(?:\$\.)?([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)$')
# Words left to jsonpath-ng: ``where`` is an operator there, ``true`` and
# ``false`` are literals in filters. (``wherenot``, an operator only since
# jsonpath-ng, stays a field name here, as it was with jsonpath-rw.)
_NOT_FIELDS = frozenset(['where', 'true', 'false'])


class _Match:
    """A match of :class:`_DottedPath`, shaped like jsonpath's."""

    __slots__ = ('full_path', 'value')

    def __init__(self, full_path: str, value: Any) -> None:
        self.full_path = full_path
        self.value = value


_MISSING = object()


class _DottedPath:
    """A chain of field names: the same matches as jsonpath gives (none
    when a step is missing or not a mapping; the value, even None, when the
    last field is present), at a fraction of the cost."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self.path = '.'.join(fields)
        #: The value at the path, or None (what most callers want).
        self.first: Callable[[Any], Any] = _chain_getter(fields)

    def get(self, obj: Any) -> Any:
        """The value at the path, or ``_MISSING``."""
        for field in self.fields:
            if not isinstance(obj, dict):
                return _MISSING
            obj = obj.get(field, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj

    def find(self, obj: Any) -> list[_Match]:
        value = self.get(obj)
        return [] if value is _MISSING else [_Match(self.path, value)]

    def values(self, obj: Any) -> list[Any]:
        """The value at the path as a list of one, or []."""
        value = self.get(obj)
        return [] if value is _MISSING else [value]


def _chain_getter(fields: list[str]) -> Callable[[Any], Any]:
    """``obj[f1][f2]...`` or None when a step is missing or not a mapping.

    Indexing a list or a string with a field name raises TypeError, so on
    JSON data this is :meth:`_DottedPath.get` with None for missing, and
    seven times faster for the usual two or three fields.
    """
    if len(fields) == 1:
        (a,) = fields

        def first(obj: Any) -> Any:
            try:
                return obj[a]
            except (KeyError, TypeError):
                return None
    elif len(fields) == 2:
        a, b = fields

        def first(obj: Any) -> Any:
            try:
                return obj[a][b]
            except (KeyError, TypeError):
                return None
    elif len(fields) == 3:
        a, b, c = fields

        def first(obj: Any) -> Any:
            try:
                return obj[a][b][c]
            except (KeyError, TypeError):
                return None
    else:
        def first(obj: Any) -> Any:
            try:
                for field in fields:
                    obj = obj[field]
            except (KeyError, TypeError):
                return None
            return obj
    return first


class _FirstOf:
    """The matches of several paths, in order: those of the first path,
    then those of the second... (a list of fields in a definition).

    :meth:`first` is for plain field chains only (:class:`_DottedPath`).
    """

    def __init__(self, paths: list[Any]) -> None:
        self.paths = paths

    def find(self, obj: Any) -> list[Any]:
        return [match for path in self.paths for match in path.find(obj)]

    def first(self, obj: Any) -> Any:
        """The first value that is not None, or None."""
        for path in self.paths:
            value = path.first(obj)
            if value is not None:
                return value
        return None


def dotted_path(expression: str) -> _DottedPath | None:
    """The fast evaluator of a plain field chain, else None."""
    found = _DOTTED.match(expression)
    if found is None:
        return None
    fields = found.group(1).split('.')
    if any(field in _NOT_FIELDS for field in fields):
        return None
    return _DottedPath(fields)


def parse_jsonpath(expression: str) -> Any:
    """Parse (once per process) and return a JSONPath expression: a
    :class:`_DottedPath` for a plain field chain, else jsonpath-ng's tree
    (see :func:`.jsonpath_syntax.parse_tree`, which says what is
    raised)."""
    try:
        return _PARSED[expression]
    except KeyError:
        pass
    parsed = dotted_path(expression)
    if parsed is None:
        parsed = jsonpath_syntax.parse_tree(expression)
    return _PARSED.setdefault(expression, parsed)


def _is_constant(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Definition:
    """One value definition, evaluated against notification dicts.

    :param name: what is being defined (used in error messages)
    :param cfg: the definition as written in the YAML file
    :param plugin_manager: a mapping of plugin names to stevedore extensions
        (``telemeter.event.trait_plugin``), needed only for the plugin form
    """

    def __init__(self, name: str, cfg: Any, plugin_manager: Any) -> None:
        self.name = name
        self.cfg = cfg
        self.plugin: Any = None
        self.constant: Any = None
        self.is_constant = False
        self.getter: Any = None
        #: The getter as a plain function (see :mod:`.accessors`), if any.
        self.compiled: accessors.Values | None = None

        #: The first non-None value of ``obj`` (see :meth:`parse`).
        self.first: Any = self._first_of_matches
        if _is_constant(cfg):
            self.constant = cfg
            self.is_constant = True
            self.first = self._constant
            return
        fields = cfg
        if isinstance(cfg, dict):
            if 'fields' not in cfg:
                raise DefinitionException(
                    f"The field 'fields' is required for {name}", cfg)
            fields = cfg['fields']
            if 'plugin' in cfg:
                self.plugin = self._load_plugin(cfg['plugin'],
                                                plugin_manager)
        if isinstance(fields, list):
            if not fields or not all(isinstance(f, str) for f in fields):
                raise DefinitionException(
                    f'The fields of {name} must be a non-empty list of '
                    f'JSONPath strings, not {fields!r}', cfg)
            paths = [self._parse(f) for f in fields]
            self.getter = _FirstOf(paths)
            if self.plugin is None:
                if all(isinstance(p, _DottedPath) for p in paths):
                    self.first = self.getter.first
                else:
                    self.compiled = accessors.compile_concatenation(
                        [p.values if isinstance(p, _DottedPath)
                         else accessors.compile_values(p) for p in paths])
                    if self.compiled is not None:
                        self.first = accessors.first_value(self.compiled)
            return
        if not isinstance(fields, str) or not fields:
            raise DefinitionException(
                f'The definition of {name} must be a number, a JSONPath '
                f'string, a list of them or a mapping with fields, not '
                f'{fields!r}', cfg)
        self.getter = self._parse(fields)
        if self.plugin is None:
            if isinstance(self.getter, _DottedPath):
                self.first = self.getter.first
            else:
                self.compiled = accessors.compile_values(self.getter)
                if self.compiled is not None:
                    self.first = accessors.first_value(self.compiled)

    def _parse(self, expression: str) -> Any:
        try:
            return parse_jsonpath(expression)
        except Exception as err:
            raise DefinitionException(
                f"Parse error in JSONPath specification '{expression}' for "
                f'{self.name}: {err}', self.cfg) from err

    def _constant(self, obj: Any) -> Any:
        return self.constant

    def _load_plugin(self, plugin_cfg: Any, plugin_manager: Any) -> Any:
        parameters: dict = {}
        if isinstance(plugin_cfg, dict):
            plugin_name = plugin_cfg.get('name')
            parameters = plugin_cfg.get('parameters') or {}
            if not isinstance(parameters, dict):
                raise DefinitionException(
                    f'Plugin parameters of {self.name} must be a mapping, '
                    f'not {parameters!r}', self.cfg)
        else:
            plugin_name = plugin_cfg
        if not plugin_name:
            raise DefinitionException(
                f'Plugin specified, but no plugin name supplied for '
                f'{self.name}', self.cfg)
        try:
            plugin_class = plugin_manager[plugin_name].plugin
        except (KeyError, TypeError) as err:
            raise DefinitionException(
                f'No plugin named {plugin_name} available for {self.name}',
                self.cfg) from err
        try:
            return plugin_class(**parameters)
        except Exception as err:
            raise DefinitionException(
                f'Plugin {plugin_name} of {self.name} rejected its '
                f'parameters {parameters!r}: {err}', self.cfg) from err

    @property
    def supports_all_values(self) -> bool:
        """Whether :meth:`parse` may be asked for every value."""
        return self.plugin is None or bool(
            getattr(self.plugin, 'support_return_all_values', False))

    def parse(self, obj: Any, return_all_values: bool = False) -> Any:
        """Evaluate against ``obj``.

        Returns the first non-None value (or None), or with
        ``return_all_values`` the list of every value (None included).
        """
        if return_all_values:
            if self.is_constant:
                return [self.constant]
            return self._values(obj, all_values=True)
        return self.first(obj)

    def _values(self, obj: Any, all_values: bool = False) -> list[Any]:
        if self.compiled is not None:
            return self.compiled(obj)
        matches = self.getter.find(obj)
        if self.plugin is None:
            return [match.value for match in matches]
        if all_values and not self.supports_all_values:
            raise DefinitionException(
                f"Plugin {self.plugin.__class__.__name__} don't allows "
                f'to return multiple values', self.cfg)
        return list(self.plugin.trait_values(
            [(jsonpath_syntax.path_text(match.full_path), match.value)
             for match in matches]))

    def _first_of_matches(self, obj: Any) -> Any:
        for value in self._values(obj):
            if value is not None:
                return value
        return None


def load_definitions_file(path: str) -> Any:
    """Read one YAML definitions file.

    A YAML syntax error is logged ("Invalid YAML syntax in Definitions
    file ... at line: L, column: C.", 1-based) and raised as
    :class:`DefinitionFileError` naming the file and position.
    """
    try:
        with open(path) as stream:
            return utils.load_yaml(stream)
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        if mark is not None:
            message = (f'Invalid YAML syntax in Definitions file {path} at '
                       f'line: {mark.line + 1}, column: {mark.column + 1}.')
        else:
            message = f'YAML error reading Definitions file {path}'
        LOG.error(message)
        raise DefinitionFileError(f'{message} {err}') from err
    except OSError as err:
        raise DefinitionFileError(
            f'Cannot read definitions file {path}: {err}') from err


def yaml_files(directory: str) -> list[str]:
    """Every ``*.yaml`` file of ``directory``, sorted by path ([] if the
    directory does not exist)."""
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, name)
                  for name in os.listdir(directory)
                  if name.endswith('.yaml'))
