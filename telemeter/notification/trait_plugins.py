"""Trait plugins (``telemeter.event.trait_plugin``).

A plugin post-processes the JSONPath matches of a trait (or meter value)
definition. It receives ``[(path, value), ...]`` where ``path`` is the dotted
path of the match (``payload.state``) and returns one value per trait value
it produces; a None value means "no trait".
"""

from __future__ import annotations

from typing import Any

from oslo_log import log
from oslo_utils import timeutils

LOG = log.getLogger(__name__)

MatchList = list[tuple[str, Any]]


class TraitPluginBase:
    """Base class of trait plugins, constructed as ``cls(**parameters)``."""

    #: Whether the plugin can give several values (meter ``lookup``).
    support_return_all_values = False

    def __init__(self, **kw: Any) -> None:
        super().__init__()

    def trait_value(self, match_list: MatchList) -> Any:
        """Legacy hook: one value from the matches (None for no trait)."""
        raise NotImplementedError(
            f'{self.__class__.__name__} implements neither trait_values nor '
            f'trait_value')

    def trait_values(self, match_list: MatchList) -> list[Any]:
        """The values derived from ``match_list`` (possibly empty)."""
        return [self.trait_value(match_list)]


class SplitterTraitPlugin(TraitPluginBase):
    """Split each matched value and keep one segment (deprecated).

    Parameters: ``separator`` (``'.'``), ``segment`` (0, negative counts
    from the end), ``max_split`` (None: split everywhere).
    """

    support_return_all_values = True

    def __init__(self, separator: str = '.', segment: int = 0,
                 max_split: int | None = None, **kw: Any) -> None:
        LOG.warning('The split plugin is deprecated: use a JSONPath '
                    'extension such as `split(%s, %s, -1)` instead',
                    separator, segment)
        self.separator = separator
        self.segment = int(segment)
        self.max_split = None if max_split is None else int(max_split)
        super().__init__(**kw)

    def trait_values(self, match_list: MatchList) -> list[Any]:
        return [self._split(value) for _path, value in match_list]

    def _split(self, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value)
        parts = (text.split(self.separator) if self.max_split is None
                 else text.split(self.separator, self.max_split))
        try:
            return parts[self.segment]
        except IndexError:
            return None


class BitfieldTraitPlugin(TraitPluginBase):
    """Build an integer from flags set by matched paths.

    ``flags`` is a list of ``{path, bit, value?}``: bit ``bit`` is set when
    ``path`` is one of the matched paths and, if ``value`` is given, the
    matched value equals it. Bits start from ``initial_bitfield``.
    """

    def __init__(self, initial_bitfield: int = 0,
                 flags: list[dict] | None = None, **kw: Any) -> None:
        self.initial_bitfield = int(initial_bitfield)
        self.flags = list(flags or [])
        for flag in self.flags:
            if not isinstance(flag, dict) or 'path' not in flag or (
                    'bit' not in flag):
                raise ValueError(f'bitfield flag {flag!r} needs a path and '
                                 f'a bit')
        super().__init__(**kw)

    def trait_values(self, match_list: MatchList) -> list[Any]:
        matched = {path: value for path, value in match_list
                   if value is not None}
        bitfield = self.initial_bitfield
        for flag in self.flags:
            path = flag['path']
            if path not in matched:
                continue
            if 'value' not in flag or matched[path] == flag['value']:
                bitfield |= 2 ** int(flag['bit'])
        return [bitfield]


class TimedeltaPlugin(TraitPluginBase):
    """Seconds between exactly two matched timestamps (absolute value)."""

    def trait_values(self, match_list: MatchList) -> list[Any]:
        if len(match_list) != 2:
            LOG.warning('Timedelta plugin is required two timestamp fields '
                        'to create timedelta value, got %d: %s',
                        len(match_list), match_list)
            return [None]
        (first_path, first), (second_path, second) = match_list
        try:
            start = timeutils.normalize_time(
                timeutils.parse_isotime(str(first)))
            end = timeutils.normalize_time(
                timeutils.parse_isotime(str(second)))
        except (ValueError, TypeError) as err:
            LOG.warning('Failed to parse date from set fields, both fields '
                        '%s (%r) and %s (%r) must be datetime: %s',
                        first_path, first, second_path, second, err)
            return [None]
        return [abs((end - start).total_seconds())]


class MapTraitPlugin(TraitPluginBase):
    """Map each matched value through ``values``.

    Unknown values give ``default`` (with a warning). With
    ``case_sensitive: false`` string keys and values are compared
    case-folded.
    """

    def __init__(self, values: dict | None = None, default: Any = None,
                 case_sensitive: bool = True, **kw: Any) -> None:
        if not isinstance(values, dict):
            raise ValueError(f'The map plugin needs a "values" mapping, '
                             f'got {values!r}')
        self.case_sensitive = case_sensitive
        self.default = default
        self.values = {self._fold(k): self._fold(v)
                       for k, v in values.items()}
        super().__init__(**kw)

    def _fold(self, value: Any) -> Any:
        if not self.case_sensitive and isinstance(value, str):
            return value.casefold()
        return value

    def trait_values(self, match_list: MatchList) -> list[Any]:
        results = []
        for path, value in match_list:
            key = self._fold(value)
            try:
                results.append(self.values[key])
            except (KeyError, TypeError):
                LOG.warning('Map plugin: no mapping for %r (from %s), using '
                            'the default %r', value, path, self.default)
                results.append(self.default)
        return results
