"""Transformers that rescale, rename and differentiate samples:
``unit_conversion``, ``rate_of_change``, ``delta`` and ``aggregator``."""

from __future__ import annotations

import collections
import datetime
import re
from typing import TYPE_CHECKING, Any

from oslo_log import log
from oslo_utils import timeutils

from telemeter import sample as sample_mod
from telemeter import transformer, utils

if TYPE_CHECKING:
    from telemeter.sample import Sample

LOG = log.getLogger(__name__)

#: Mapped names and units remembered per transformer.
_MAPPED_VALUES_MAX = 1024


def output_id(source: Any, name: str) -> str:
    """The id of what a transformer makes of sample ``source`` under the
    name ``name``: derived from the source sample's id, so a source
    delivered twice (a requeue, a broker fail-over) gives an output that
    storage keeps once."""
    return sample_mod.derived_id(str(source.id), 'transformed', name)


def _timestamp(sample: Any) -> datetime.datetime:
    """The sample's timestamp as a naive UTC datetime."""
    return utils.sanitize_timestamp(sample.timestamp)


class ScalingTransformer(transformer.TransformerBase):
    """``unit_conversion``: rename, retype and rescale each sample.

    ``source``: ``{unit, map_from: {name, unit}}``; ``target``: ``{name,
    unit, type, scale, max, map_to: {name, unit}}`` (all optional).
    """

    def __init__(self, source: dict | None = None,
                 target: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = dict(source or {})
        self.target = dict(target or {})
        self.scale = self.target.get('scale')
        self.max = self.target.get('max')
        if not isinstance(self.scale, (int, float, str, type(None))):
            raise ValueError(f'target.scale must be a number or an '
                             f'expression, not {self.scale!r}')
        if not isinstance(self.max, (int, float, type(None))):
            raise ValueError(f'target.max must be a number, not '
                             f'{self.max!r}')
        self._scale_expr = (transformer.EXPRESSIONS.expression(self.scale)
                            if isinstance(self.scale, str) else None)
        self._map_from = self.source.get('map_from') or {}
        self._map_to = self.target.get('map_to') or {}
        self._mapped_values: dict[tuple[str, Any], Any] = {}

    def _scaled(self, s: Any) -> Any:
        if self._scale_expr is not None:
            return self._scale_expr.evaluate(
                transformer.Namespace(s.as_dict()))
        if self.scale:
            return s.volume * self.scale
        return s.volume

    def _mapped(self, attr: str, current: Any) -> Any:
        """``target[attr]`` or ``current`` mapped by ``map_from`` /
        ``map_to``; remembered per value (names and units repeat, and the
        regular expression's replacement is parsed on every ``re.sub``)."""
        key = (attr, current)
        try:
            return self._mapped_values[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: mapped every time
            return self._map(attr, current)
        value = self._map(attr, current)
        if len(self._mapped_values) >= _MAPPED_VALUES_MAX:
            self._mapped_values.clear()
        self._mapped_values[key] = value
        return value

    def _map(self, attr: str, current: Any) -> Any:
        pattern, replacement = self._map_from.get(attr), self._map_to.get(
            attr)
        if pattern is not None and replacement is not None:
            try:
                value = re.sub(pattern, replacement, current)
            except (re.error, TypeError, IndexError):
                value = None
            if value:
                return value
        return self.target.get(attr, current)

    def _convert(self, s: Any, growth: float = 1) -> sample_mod.Sample:
        volume = self._scaled(s) * growth
        if self.max:
            volume = min(volume, self.max)
        name = self._mapped('name', s.name)
        return sample_mod.Sample(
            id=output_id(s, name),
            name=name,
            unit=self._mapped('unit', s.unit),
            type=self.target.get('type', s.type),
            volume=volume,
            user_id=s.user_id,
            project_id=s.project_id,
            resource_id=s.resource_id,
            timestamp=s.timestamp,
            resource_metadata=s.resource_metadata)

    def handle_sample(self, s: Sample) -> Sample | None:
        unit = self.source.get('unit')
        if unit and unit != s.unit:
            return s
        return self._convert(s)


class RateOfChangeTransformer(ScalingTransformer):
    """``rate_of_change``: the change per second since the resource's
    previous sample of the same meter (counter resets handled), scaled.

    ``scale`` defaults to ``'1'``.
    """

    def __init__(self, **kwargs: Any) -> None:
        target = dict(kwargs.pop('target', None) or {})
        target.setdefault('scale', '1')
        super().__init__(target=target, **kwargs)
        # (volume, timestamp, monotonic time, id, the predecessor's first
        # three) of each meter and resource's latest sample
        self.cache: dict[str, tuple[Any, ...]] = {}

    def handle_sample(self, s: Sample) -> Sample | None:
        key = s.name + s.resource_id
        entry = self.cache.get(key)
        timestamp = _timestamp(s)
        prev: tuple[Any, ...] | None
        if entry is not None and entry[3] == s.id:
            # The latest sample again (redelivered): the same rate as the
            # first time, against its own predecessor, with the same id.
            prev = entry[4]
            if not prev:
                return None
        else:
            prev = entry[:3] if entry else None
            self.cache[key] = (s.volume, timestamp, s.monotonic_time, s.id,
                               prev)
            if not prev:
                LOG.warning('dropping sample with no predecessor: %s', s)
                return None
        prev_volume, prev_timestamp, prev_monotonic = prev
        if s.monotonic_time is not None and prev_monotonic is not None:
            elapsed = s.monotonic_time - prev_monotonic
        else:
            elapsed = (timestamp - prev_timestamp).total_seconds()
        if elapsed < 0:
            LOG.warning('dropping out of time order sample: %s', s)
            if entry is not None:  # it has a predecessor, so it was cached
                self.cache[key] = entry
            return None
        if prev_volume <= s.volume or s.type != sample_mod.TYPE_CUMULATIVE:
            delta = s.volume - prev_volume
        else:
            # A cumulative counter went down: it was reset.
            delta = s.volume
        rate = float(delta) / elapsed if elapsed else 0.0
        return self._convert(s, rate)


class DeltaTransformer(ScalingTransformer):
    """``delta``: the change since the resource's previous sample, as a
    ``delta`` sample with the unit unchanged."""

    def __init__(self, target: dict | None = None, growth_only: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(target=target, **kwargs)
        self.growth_only = growth_only
        self.cache: dict[str, tuple[Any, datetime.datetime]] = {}

    def handle_sample(self, s: Sample) -> Sample | None:
        key = s.name + s.resource_id
        prev = self.cache.get(key)
        timestamp = _timestamp(s)
        self.cache[key] = (s.volume, timestamp)
        if not prev:
            LOG.warning('Dropping sample with no predecessor: %s', s)
            return None
        prev_volume, prev_timestamp = prev
        if (timestamp - prev_timestamp).total_seconds() < 0:
            LOG.warning('Dropping out of time order sample: %s', s)
            self.cache[key] = prev
            return None
        delta = s.volume - prev_volume
        if self.growth_only and delta < 0:
            LOG.warning('Negative delta detected, dropping value')
            return None
        name = self._mapped('name', s.name)
        return sample_mod.Sample(
            id=output_id(s, name),
            name=name,
            unit=s.unit,
            type=sample_mod.TYPE_DELTA,
            volume=delta,
            user_id=s.user_id,
            project_id=s.project_id,
            resource_id=s.resource_id,
            timestamp=s.timestamp,
            resource_metadata=s.resource_metadata)


class AggregatorTransformer(ScalingTransformer):
    """``aggregator``: merge samples of a meter and resource (and of the
    unmerged ids) into one, released by count or by age.

    Gauges are averaged, other types summed (cumulative: latest value);
    ``project_id``/``user_id``/``resource_metadata`` set to ``first`` or
    ``last`` (``resource_metadata`` also ``drop``) choose how merged fields
    are kept; unset ids split the groups instead.
    """

    _POLICIES = {'project_id': ('first', 'last'),
                 'user_id': ('first', 'last'),
                 'resource_metadata': ('first', 'last', 'drop')}

    def __init__(self, size: Any = 1, retention_time: Any = None,
                 project_id: str | None = None, user_id: str | None = None,
                 resource_metadata: str = 'last', timestamp: str = 'first',
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = int(size) if size else None
        self.retention_time = (float(retention_time) if retention_time
                               else None)
        if self.size is None and self.retention_time is None:
            self.size = 1
        self.timestamp_policy = (timestamp if timestamp in ('first', 'last')
                                 else 'first')
        self.merged: dict[str, str] = {}
        self.key_fields: list[str] = []
        for field, value in (('project_id', project_id),
                             ('user_id', user_id),
                             ('resource_metadata', resource_metadata)):
            if not value:
                self.key_fields.append(field)
                continue
            if value not in self._POLICIES[field]:
                LOG.warning('%s is unknown (%s), using last', field, value)
                value = 'last'
            self.merged[field] = value
        self._reset()

    def _reset(self) -> None:
        self.samples: dict[str, Any] = {}
        self.counts: collections.Counter = collections.Counter()
        self.total = 0
        self.initial_timestamp: datetime.datetime | None = None

    def _group_key(self, s: Any) -> str:
        parts = [s.name, s.resource_id]
        parts.extend('<undefined>' if getattr(s, f) is None
                     else str(getattr(s, f)) for f in self.key_fields)
        return '-'.join(parts)

    def handle_sample(self, s: Sample) -> None:
        if not self.samples:
            self.initial_timestamp = _timestamp(s)
        self.total += 1
        key = self._group_key(s)
        self.counts[key] += 1
        stored = self.samples.get(key)
        if stored is None:
            stored = self._convert(s)
            if self.merged.get('resource_metadata') == 'drop':
                stored.resource_metadata = {}
            self.samples[key] = stored
            return None
        if self.timestamp_policy == 'last':
            stored.timestamp = s.timestamp
        if s.type == sample_mod.TYPE_CUMULATIVE:
            stored.volume = self._scaled(s)
        else:
            stored.volume += self._scaled(s)
        for field, policy in self.merged.items():
            if policy == 'last':
                setattr(stored, field, getattr(s, field))
        return None

    def _due(self) -> bool:
        if self.size and self.total >= self.size:
            return True
        if self.retention_time and self.initial_timestamp is not None:
            age = timeutils.utcnow() - self.initial_timestamp
            return age.total_seconds() > self.retention_time
        return False

    def flush(self) -> list[Sample]:
        if not self.samples or not self._due():
            return []
        released = []
        for key, stored in self.samples.items():
            if stored.type == sample_mod.TYPE_GAUGE:
                stored.volume = stored.volume / self.counts[key]
            released.append(stored)
        self._reset()
        return released
