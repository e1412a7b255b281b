"""Instance-wide compute pollsters (``telemeter.poll.compute``).

Every compute pollster reads one inspector method per instance, caches the
result per polling cycle under ``(method, instance id)`` with the monotonic
time of the call (the samples' ``monotonic_time``), and maps outcomes:
no value -> warning and no sample; instance gone or shut off -> debug, no
sample; ``NoDataException`` or a statistic the inspector does not implement
-> :class:`~telemeter.polling.plugin_base.PollsterPermanentError` for the
resources; any other error -> logged, next instance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from oslo_log import log

from telemeter import sample as sample_mod
from telemeter.polling import plugin_base
from telemeter.polling.compute import inspector as virt_inspector
from telemeter.polling.compute import instance as instance_mod

LOG = log.getLogger(__name__)

shared_inspector = virt_inspector.shared_inspector


class BaseComputePollster(plugin_base.PollsterBase):
    """Reads ``inspector_method`` for each instance; subclasses turn the
    result into samples with :meth:`samples_of`."""

    inspector_method = 'inspect_instance'
    sample_name = ''
    sample_type = sample_mod.TYPE_GAUGE
    sample_unit = ''

    def setup_environment(self) -> None:
        self._inspector: virt_inspector.Inspector | None = None

    @property
    def inspector(self) -> virt_inspector.Inspector:
        if self._inspector is None:
            self._inspector = shared_inspector(self.conf)
        return self._inspector

    @property
    def default_discovery(self) -> str:
        return 'local_instances'

    def _inspect(self, cache: dict, instance: Any) -> tuple[Any, float]:
        key = (self.inspector_method, instance.id)
        stats = cache.setdefault('compute.inspector', {})
        if key not in stats:
            method = getattr(self.inspector, self.inspector_method)
            result = method(instance, None)
            if not isinstance(result, (virt_inspector.InstanceStats, float,
                                       int)) and result is not None:
                result = list(result)
            stats[key] = (result, time.monotonic())
        return stats[key]

    def samples_of(self, instance: Any, result: Any,
                   monotonic_time: float) -> Iterator[sample_mod.Sample]:
        raise NotImplementedError

    def get_samples(self, manager: plugin_base.PollingContext, cache: dict,
                    resources: list[Any]) -> Iterator[sample_mod.Sample]:
        for instance in resources:
            try:
                result, monotonic_time = self._inspect(cache, instance)
                yield from self.samples_of(instance, result, monotonic_time)
            except virt_inspector.InstanceNotFoundException as err:
                LOG.debug('Exception while getting samples %s', err)
            except virt_inspector.InstanceShutOffException as err:
                LOG.debug('Instance %(id)s was shut off while getting '
                          'sample of %(name)s: %(err)s',
                          {'id': instance.id, 'name': self.sample_name,
                           'err': err})
            except (virt_inspector.NoDataException,
                    NotImplementedError) as err:
                LOG.debug('%(inspector)s does not provide data for '
                          '%(name)s: %(err)r',
                          {'inspector': type(self.inspector).__name__,
                           'name': self.sample_name, 'err': err})
                raise plugin_base.PollsterPermanentError(resources) from err
            except Exception as err:
                LOG.error('Could not get %(name)s events for %(id)s: '
                          '%(err)s', {'name': self.sample_name,
                                      'id': instance.id, 'err': err},
                          exc_info=True)

    def make(self, instance: Any, volume: Any, monotonic_time: float,
             resource_id: str | None = None, name: str | None = None,
             additional_metadata: dict | None = None) -> sample_mod.Sample:
        return instance_mod.make_sample(
            self.conf, instance, name=name or self.sample_name,
            type=self.sample_type, unit=self.sample_unit, volume=volume,
            resource_id=resource_id, additional_metadata=additional_metadata,
            monotonic_time=monotonic_time)


class InstanceStatsPollster(BaseComputePollster):
    """One attribute of :class:`InstanceStats` per instance."""

    stat = ''

    def extra_metadata(self, stats: virt_inspector.InstanceStats) -> dict:
        return {}

    def samples_of(self, instance: Any, result: Any,
                   monotonic_time: float) -> Iterator[sample_mod.Sample]:
        value = getattr(result, self.stat)
        if value is None:
            LOG.warning('%(name)s statistic in not available for instance '
                        '%(id)s', {'name': self.sample_name,
                                   'id': instance.id})
            return
        yield self.make(instance, value, monotonic_time,
                        additional_metadata=self.extra_metadata(result))


def _stats_pollster(cls_name: str, name: str, stat: str, type_: str,
                    unit: str, with_cpu_number: bool = False) -> type:
    def extra(self: Any, stats: virt_inspector.InstanceStats) -> dict:
        return {'cpu_number': stats.cpu_number} if with_cpu_number else {}

    return type(cls_name, (InstanceStatsPollster,),
                {'sample_name': name, 'stat': stat, 'sample_type': type_,
                 'sample_unit': unit, 'extra_metadata': extra,
                 '__doc__': f'``{name}``: {type_} {unit or "(no unit)"} '
                            f'from InstanceStats.{stat}.',
                 '__module__': __name__})


G, C = sample_mod.TYPE_GAUGE, sample_mod.TYPE_CUMULATIVE
_STATS_METERS = [
    # (class name, meter, InstanceStats attribute, type, unit)
    ('CPUPollster', 'cpu', 'cpu_time', C, 'ns'),
    ('VCPUsPollster', 'vcpus', 'cpu_number', G, 'vcpu'),
    ('MemoryUsagePollster', 'memory.usage', 'memory_usage', G, 'MB'),
    ('MemoryResidentPollster', 'memory.resident', 'memory_resident', G,
     'MB'),
    ('MemorySwapInPollster', 'memory.swap.in', 'memory_swap_in', C, 'MB'),
    ('MemorySwapOutPollster', 'memory.swap.out', 'memory_swap_out', C,
     'MB'),
    ('CPUL3CachePollster', 'cpu_l3_cache', 'cpu_l3_cache_usage', G, 'B'),
    ('MemoryBandwidthTotalPollster', 'memory.bandwidth.total',
     'memory_bandwidth_total', G, 'B/s'),
    ('MemoryBandwidthLocalPollster', 'memory.bandwidth.local',
     'memory_bandwidth_local', G, 'B/s'),
    ('PerfCPUCyclesPollster', 'perf.cpu.cycles', 'cpu_cycles', G, ''),
    ('PerfInstructionsPollster', 'perf.instructions', 'instructions', G, ''),
    ('PerfCacheReferencesPollster', 'perf.cache.references',
     'cache_references', G, ''),
    ('PerfCacheMissesPollster', 'perf.cache.misses', 'cache_misses', G, ''),
]
STATS_POLLSTERS: dict[str, type] = {}
for _cls_name, _name, _stat, _type, _unit in _STATS_METERS:
    STATS_POLLSTERS[_name] = globals()[_cls_name] = _stats_pollster(
        _cls_name, _name, _stat, _type, _unit,
        with_cpu_number=_name == 'cpu')


class CPUUtilPollster(BaseComputePollster):
    """``cpu_util`` (%): only from inspectors that measure it."""

    inspector_method = 'inspect_cpu_util'
    sample_name = 'cpu_util'
    sample_unit = '%'

    def samples_of(self, instance: Any, result: Any,
                   monotonic_time: float) -> Iterator[sample_mod.Sample]:
        yield self.make(instance, result, monotonic_time)
