"""Sample pipelines: a source's meter filter coupled to a sink's
transformers and publishers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from oslo_log import log

from telemeter import wire
from telemeter.pipeline import base

LOG = log.getLogger(__name__)


class PipelineSource(base.Source):
    """A source of a sample or event pipeline: it names its sinks."""

    def __init__(self, cfg: dict) -> None:
        super().__init__(cfg)
        try:
            self.sinks = cfg['sinks']
        except KeyError as err:
            raise base.PipelineException(
                f'Required field {err.args[0]} not specified', cfg) from err


class SampleSource(PipelineSource):
    """A ``sources`` entry of pipeline.yaml."""

    def __init__(self, cfg: dict) -> None:
        super().__init__(cfg)
        try:
            self.meters = cfg['meters']
        except KeyError as err:
            raise base.PipelineException('Missing meters value', cfg) from err
        self.check_source_filtering(self.meters, 'meters')
        self.support_meter = base.NameFilter(self.meters)


class Sink:
    """A ``sinks`` entry: transformers (sample sinks only) and publishers.

    Transformer instances belong to the sink, so every pipeline that shares
    the sink shares their state.
    """

    def __init__(self, cfg: dict, transformer_manager: Any,
                 publishers: dict[str, Any]) -> None:
        self.cfg = cfg
        try:
            self.name = cfg['name']
        except KeyError as err:
            raise base.PipelineException(
                f'Required field {err.args[0]} not specified', cfg) from err
        if not cfg.get('publishers'):
            raise base.PipelineException('No publisher specified', cfg)
        self.urls = [url for url in _normalise_urls(cfg['publishers'])
                     if publishers.get(url) is not None]
        self.publishers = [publishers[url] for url in self.urls]
        #: Per publisher (same order): what it did (the ledger's counts).
        self.outcomes = [base.Outcome() for _ in self.publishers]
        #: Samples into the transformers and out of them (flushes too).
        self.received = 0
        self.emitted = 0
        self.transformers = self._setup_transformers(transformer_manager)

    def __str__(self) -> str:
        return self.name

    def _setup_transformers(self, transformer_manager: Any) -> list[Any]:
        return []


class SampleSink(Sink):
    """Runs samples through the transformers, then every publisher."""

    def _setup_transformers(self, transformer_manager: Any) -> list[Any]:
        transformers = []
        for transformer in self.cfg.get('transformers') or []:
            parameters = transformer.get('parameters') or {}
            try:
                ext = transformer_manager[transformer['name']]
            except KeyError as err:
                raise base.PipelineException(
                    f"No transformer named {transformer['name']} loaded",
                    self.cfg) from err
            try:
                transformers.append(ext.plugin(**parameters))
            except (TypeError, ValueError) as err:
                # e.g. an expression outside the restricted grammar, or a
                # parameter the transformer does not know.
                raise base.PipelineException(
                    f"Sink {self.name}: invalid parameters for transformer "
                    f"{transformer['name']}: {err}", self.cfg) from err
            LOG.info('Pipeline %s: Setup transformer instance %s with '
                     'parameter %s', self, transformer['name'], parameters)
        return transformers

    def _transform_sample(self, start: int, sample: Any) -> Any:
        try:
            for transformer in self.transformers[start:]:
                sample = transformer.handle_sample(sample)
                if not sample:
                    LOG.debug('Pipeline %s: Sample dropped by transformer %s',
                              self, transformer)
                    return None
            return sample
        except Exception:
            LOG.error('Pipeline %s: Exit after error from transformer %s '
                      'for %s', self, transformer, sample, exc_info=True)
            return None

    def _publish_samples(self, start: int, samples: Iterable[Any]) -> None:
        transformed = [s for s in (self._transform_sample(start, sample)
                                   for sample in samples) if s]
        if not transformed:
            return
        count = len(transformed)
        self.emitted += count
        failures = []
        for publisher, outcome in zip(self.publishers, self.outcomes,
                                      strict=True):
            try:
                publisher.publish_samples(transformed)
            except Exception as err:
                outcome.failure(count, err)
                LOG.error('Pipeline %s: Continue after error from publisher '
                          '%s', self, publisher, exc_info=True)
                failures.append(f'{publisher}: {err}')
            else:
                outcome.ok(count)
        if failures:
            raise base.PublishError(failures)

    def publish_samples(self, samples: list[Any]) -> None:
        self.received += len(samples)
        self._publish_samples(0, samples)

    def flush(self) -> None:
        """Flush each transformer in order into the ones after it."""
        failures = []
        for index, transformer in enumerate(self.transformers):
            try:
                flushed = transformer.flush()
            except Exception:
                LOG.error('Pipeline %s: Error flushing transformer %s',
                          self, transformer, exc_info=True)
                continue
            if flushed:
                try:
                    self._publish_samples(index + 1, flushed)
                except base.PublishError as err:
                    failures.extend(err.failures)
        if failures:
            raise base.PublishError(failures)


def _normalise_urls(urls: Iterable[str]) -> list[str]:
    return [url if '://' in url else url + '://' for url in urls]


#: How the pipeline words a volume it drops (Ceilometer's log text).
_VOLUME_PROBLEMS = {
    wire.VolumeProblem.MISSING: 'has no volume',
    wire.VolumeProblem.NOT_A_NUMBER: 'has volume which is not a number',
}


class SamplePipeline:
    """One source coupled with one of its sinks."""

    def __init__(self, source: SampleSource, sink: SampleSink) -> None:
        self.source = source
        self.sink = sink
        self.name = (source.name if source.name == sink.name
                     else f'{source.name}:{sink.name}')
        #: Samples offered, passed to the sink, dropped for their volume;
        #: the rest were filtered out by the source.
        self.received = 0
        self.accepted = 0
        self.invalid = 0

    def __str__(self) -> str:
        return self.name

    def _validate_volume(self, sample: Any) -> bool:
        problem = wire.volume_problem(sample.volume, finite=False)
        if problem is None:
            return True
        self.invalid += 1
        LOG.warning('metering data %(name)s for %(rid)s @ %(ts)s %(problem)s '
                    '(volume: %(volume)s), the sample will be dropped',
                    {'name': sample.name, 'rid': sample.resource_id,
                     'ts': sample.timestamp or 'NO TIMESTAMP',
                     'problem': _VOLUME_PROBLEMS[problem],
                     'volume': sample.volume})
        return False

    def publish_data(self, samples: Any) -> None:
        if not isinstance(samples, list):
            samples = [samples]
        kept = [s for s in samples if self.source.support_meter(s.name)
                and self._validate_volume(s)]
        self.received += len(samples)
        self.accepted += len(kept)
        self.sink.publish_samples(kept)

    def flush(self) -> None:
        self.sink.flush()

    def get_grouping_key(self) -> list[str]:
        keys: list[str] = []
        for transformer in self.sink.transformers:
            keys.extend(k for k in transformer.grouping_keys if k not in keys)
        return keys
