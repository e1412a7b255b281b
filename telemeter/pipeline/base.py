"""Pieces shared by the sample, event and polling pipeline definitions:
configuration errors, file lookup and the ``meters``/``events`` match lists.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable
from typing import Any

import yaml
from oslo_config import cfg
from oslo_log import log

from telemeter import utils

LOG = log.getLogger(__name__)

DATA_DIR = os.path.join(os.path.dirname(__file__), 'data')


class ConfigException(Exception):
    """A pipeline, event pipeline or polling definition is invalid.

    ``cfg`` is the offending source or sink (or the whole parsed file).
    """

    def __init__(self, cfg_type: str, message: str, cfg: Any) -> None:
        self.cfg_type = cfg_type
        self.msg = message
        self.cfg = cfg
        #: The file the definition came from, set by the loader.
        self.cfg_file: str | None = None
        super().__init__(message)

    def __str__(self) -> str:
        text = f'{self.cfg_type} {self.cfg}: {self.msg}'
        return f'{self.cfg_file}: {text}' if self.cfg_file else text


class PublishError(Exception):
    """Some publisher of a sink did not take its data (the others ran).

    Raised once the publish context is left, so that whoever fed the
    pipelines can leave the source data unacknowledged.
    """

    def __init__(self, failures: list[str]) -> None:
        super().__init__('; '.join(failures))
        self.failures = failures


class PipelineException(ConfigException):
    def __init__(self, message: str, cfg: Any) -> None:
        super().__init__('Pipeline', message, cfg)


class PollingException(ConfigException):
    def __init__(self, message: str, cfg: Any) -> None:
        super().__init__('Polling', message, cfg)


def find_config_file(conf: cfg.ConfigOpts, value: str) -> str:
    """Resolve a data file name: literal path, config dirs, then package."""
    if os.path.exists(value):
        return value
    found = conf.find_file(value)
    if found:
        return found
    return os.path.join(DATA_DIR, value)


def load_yaml(conf: cfg.ConfigOpts, value: str) -> tuple[str, Any]:
    """Find and parse a YAML data file; return ``(path, content)``.

    A syntax error is re-raised as ValueError naming the file, line and
    column, so the daemon's refusal to start says where to look.
    """
    path = find_config_file(conf, value)
    with open(path) as fap:
        try:
            content = utils.load_yaml(fap)
        except yaml.YAMLError as err:
            mark = getattr(err, 'problem_mark', None)
            where = (f' at line {mark.line + 1}, column {mark.column + 1}'
                     if mark else '')
            raise ValueError(
                f'Invalid YAML syntax in {path}{where}: {err}') from err
    LOG.info('Config file: %s', path)
    return path, content


def check_source_filtering(data: list | None, d_type: str) -> None:
    """Validate a match list (``d_type`` is ``meters`` or ``events``).

    Raises ValueError with the message of pipeline.md §3.
    """
    if not data:
        raise ValueError(f'No {d_type} specified')
    included = [x for x in data if x[0] not in '!*']
    excluded = [x for x in data if x[0] == '!']
    if included and excluded:
        raise ValueError(f'Both included and excluded {d_type} specified')
    if '*' in data and included:
        raise ValueError(f'Included {d_type} specified with wildcard')


class NameFilter:
    """:func:`is_supported` of one validated match list, remembered per
    name (a cloud has a few hundred meter names and event types)."""

    LIMIT = 4096

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = patterns
        self._known: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        try:
            return self._known[name]
        except KeyError:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            verdict = self._known[name] = is_supported(self.patterns, name)
            return verdict


def is_supported(patterns: list[str], name: str) -> bool:
    """Whether ``name`` passes a validated match list."""
    if any(fnmatch.fnmatchcase(name, p[1:]) for p in patterns
           if p.startswith('!')):
        return False
    if any(fnmatch.fnmatchcase(name, p) for p in patterns
           if not p.startswith('!')):
        return True
    return all(p.startswith('!') for p in patterns)


class Source:
    """A named source of a pipeline or polling file.

    Subclasses validate their own keys; ``exception`` is the class of
    ConfigException raised for an invalid source.
    """

    exception: Callable[[str, Any], ConfigException] = PipelineException

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        try:
            self.name = cfg['name']
        except KeyError as err:
            raise PipelineException(
                f'Required field {err.args[0]} not specified', cfg) from err

    def __str__(self) -> str:
        return self.name

    def check_source_filtering(self, data: list | None, d_type: str) -> None:
        try:
            check_source_filtering(data, d_type)
        except ValueError as err:
            raise self.exception(str(err), self.cfg) from err


class Outcome:
    """What one publisher of a sink did with what the sink gave it: items
    it accepted (``published``) and items of calls that raised
    (``failed``), and when the last of each happened (monotonic seconds),
    for the ledger and ``/healthz``. Counted per call, not per item."""

    __slots__ = ('failed', 'last_error', 'last_failed', 'last_ok',
                 'published')

    def __init__(self) -> None:
        self.published = 0
        self.failed = 0
        self.last_ok = 0.0
        self.last_failed = 0.0
        self.last_error = ''

    def ok(self, count: int) -> None:
        self.published += count
        self.last_ok = time.monotonic()

    def failure(self, count: int, err: BaseException) -> None:
        self.failed += count
        self.last_failed = time.monotonic()
        self.last_error = f'{type(err).__name__}: {err}'[:300]
