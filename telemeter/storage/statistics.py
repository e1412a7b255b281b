"""Backend-independent parts of ``get_meter_statistics`` (storage.md §3).

Validation of ``groupby`` and ``aggregate``, the period buckets and the
construction of :class:`~telemeter.storage.models.Statistics` from the
values a driver computed for one (bucket, group).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import telemeter
from telemeter import storage
from telemeter.storage import models

if TYPE_CHECKING:
    from telemeter.storage import SampleFilter

GROUPBY_FIELDS = ('user_id', 'project_id', 'resource_id',
                  'resource_metadata.instance_type')
STANDARD_FUNCS = ('min', 'max', 'sum', 'avg', 'count')
SQL_CARDINALITY_PARAMS = ('resource_id', 'user_id', 'project_id')


@dataclasses.dataclass(frozen=True)
class AggregateSpec:
    """One requested aggregate: ``key`` is ``func`` or ``func/param``."""

    func: str
    param: str | None = None

    @property
    def key(self) -> str:
        """The name under which the value is reported."""
        return _KEYS.get((self.func, self.param)) or (
            f'{self.func}/{self.param}' if self.param else self.func)


_KEYS: dict[tuple[str, str | None], str] = {
    (func, None): func for func in (*STANDARD_FUNCS, 'stddev')}


def require_meter(sample_filter: SampleFilter) -> None:
    """Statistics need ``sample_filter.meter``."""
    if not sample_filter.meter:
        raise RuntimeError('Missing required meter specifier')


def check_groupby(groupby: Iterable[str] | None) -> list[str]:
    """The groupby fields, each one of :data:`GROUPBY_FIELDS`."""
    fields = list(groupby or [])
    if any(field not in GROUPBY_FIELDS for field in fields):
        raise telemeter.NotImplementedError('Unable to group by these '
                                            'fields')
    # A field named twice groups once.
    return list(dict.fromkeys(fields))


def parse_aggregates(aggregate: Iterable[Any] | None,
                     cardinality_params: Sequence[str] =
                     SQL_CARDINALITY_PARAMS) -> list[AggregateSpec]:
    """The aggregates to compute; none requested → the standard five.

    Raises :class:`telemeter.storage.StorageBadAggregate` for an unknown
    function or a bad cardinality parameter.
    """
    if not aggregate:
        return [AggregateSpec(func) for func in STANDARD_FUNCS]
    specs: list[AggregateSpec] = []
    for item in aggregate:
        func, param = item.func, getattr(item, 'param', None)
        if func in STANDARD_FUNCS or func == 'stddev':
            spec = AggregateSpec(func)
        elif func == 'cardinality':
            if param not in cardinality_params:
                raise storage.StorageBadAggregate(
                    f'Bad aggregate: {func}.{param}')
            spec = AggregateSpec(func, param)
        else:
            raise storage.StorageBadAggregate(
                f'Invalid aggregation function: {func}')
        if spec not in specs:
            specs.append(spec)
    return specs


def bucket_count(start: datetime.datetime, end: datetime.datetime,
                 period: float) -> int:
    """``ceil((end - start) / period)``, at least 0."""
    seconds = (end - start).total_seconds()
    if seconds <= 0:
        return 0
    return math.ceil(seconds / period)


def bucket_bounds(start: datetime.datetime, period: float,
                  index: int) -> tuple[datetime.datetime, datetime.datetime]:
    """``[start + index·period, start + (index+1)·period)``."""
    step = datetime.timedelta(seconds=period)
    return start + index * step, start + (index + 1) * step


class StatisticsBuilder:
    """Builds the Statistics models of one query.

    ``specs`` are the aggregates computed (values are passed in that
    order); ``requested`` says whether the caller asked for aggregates
    (then they also appear in ``aggregate``).
    """

    def __init__(self, specs: Sequence[AggregateSpec], period: float | None,
                 requested: bool) -> None:
        self._plan = [(spec.key, spec.func in STANDARD_FUNCS and spec.func,
                       spec.func in ('count', 'cardinality'))
                      for spec in specs]
        self._period = int(period or 0)
        self._requested = requested

    def build(self, *, unit: str | None,
              bucket: tuple[datetime.datetime, datetime.datetime] | None,
              first: datetime.datetime | None,
              last: datetime.datetime | None, groupby: dict | None,
              values: Sequence[Any]) -> models.Statistics:
        """One Statistics model.

        ``first``/``last`` are the earliest and latest sample timestamps
        of the group, ``bucket`` the period bounds (None without a
        period).
        """
        duration = ((last - first).total_seconds()
                    if first is not None and last is not None else None)
        if bucket is None:
            period, period_start, period_end = 0, first, last
        else:
            period = self._period
            period_start, period_end = bucket
        data: dict[str, Any] = {}
        numbers = {}
        for (key, standard, integer), value in zip(self._plan, values,
                                                    strict=True):
            if value is not None:
                value = int(value) if integer else float(value)
            numbers[key] = value
            if standard:
                data[standard] = value
        if self._requested:
            data['aggregate'] = numbers
        return models.Statistics(
            unit=unit, period=period, period_start=period_start,
            period_end=period_end, duration=duration, duration_start=first,
            duration_end=last, groupby=groupby, **data)


def sort_key(stat: models.Statistics) -> tuple:
    """Bucket order, then unit and group values (None first)."""
    group = tuple((value is not None, str(value))
                  for value in (stat.groupby or {}).values())
    return (stat.period_start or datetime.datetime.min,
            (stat.unit is not None, stat.unit or ''), group)


def population_stddev(values: Sequence[float]) -> float | None:
    """Population standard deviation (None for no values)."""
    count = len(values)
    if not count:
        return None
    mean = sum(values) / count
    return math.sqrt(sum((value - mean) ** 2 for value in values) / count)
