"""Value definitions shared by meter and event definitions.

A *value definition* says where a value comes from in a notification dict
(``ctxt``, ``publisher_id``, ``event_type``, ``payload``, ``metadata``):

* an int (or float) constant, used as is;
* a JSONPath string, parsed by jsonpath-rw-ext, so filters
  (``$.payload.metrics[?(@.name='cpu.percent')].value``), arithmetic
  (``$.payload.a * 100``), concatenation (``$.payload.host + '_' +
  $.payload.node``) and extensions (`` $.publisher_id.`split(., 1, -1)` ``)
  all work;
* a list of JSONPath strings: the first one that yields a value wins;
* a mapping ``{fields: <string or list>, plugin: <name> | {name,
  parameters}}`` whose matches are post-processed by a trait plugin
  (``telemeter.event.trait_plugin``).

The public names are also importable from :mod:`telemeter.declarative`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import yaml
from jsonpath_rw_ext import parser
from oslo_log import log

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


_PARSER = parser.ExtentedJsonPathParser()
_PARSER_LOCK = threading.Lock()
_PARSED: dict[str, Any] = {}


def parse_jsonpath(expression: str) -> Any:
    """Parse (once per process) and return a JSONPath expression.

    Raises whatever the parser raises for a bad expression: jsonpath-rw
    uses plain ``Exception``, lexer errors and even ``AttributeError``.
    """
    try:
        return _PARSED[expression]
    except KeyError:
        pass
    # The ply parser keeps state while parsing: one parse at a time.
    with _PARSER_LOCK:
        if expression not in _PARSED:
            _PARSED[expression] = _PARSER.parse(expression)
    return _PARSED[expression]


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

        if _is_constant(cfg):
            self.constant = cfg
            self.is_constant = True
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
            fields = '|'.join(f'({f})' for f in fields)
        elif not isinstance(fields, str) or not fields:
            raise DefinitionException(
                f'The definition of {name} must be a number, a JSONPath '
                f'string, a list of them or a mapping with fields, not '
                f'{fields!r}', cfg)
        try:
            self.getter = parse_jsonpath(fields)
        except Exception as err:
            raise DefinitionException(
                f"Parse error in JSONPath specification '{fields}' for "
                f'{name}: {err}', cfg) from err

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
        if self.is_constant:
            return [self.constant] if return_all_values else self.constant
        matches = self.getter.find(obj)
        if self.plugin is not None:
            if return_all_values and not self.supports_all_values:
                raise DefinitionException(
                    f"Plugin {self.plugin.__class__.__name__} don't allows "
                    f'to return multiple values', self.cfg)
            values = self.plugin.trait_values(
                [(str(match.full_path), match.value) for match in matches])
        else:
            values = [match.value for match in matches]
        if return_all_values:
            return list(values)
        for value in values:
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
            return yaml.safe_load(stream)
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
