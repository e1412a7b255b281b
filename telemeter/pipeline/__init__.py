"""pipeline.yaml and event_pipeline.yaml: sources, sinks, publish contexts.

``setup_pipeline(conf)`` / ``setup_event_pipeline(conf)`` build a
:class:`PipelineManager`; callers publish through a context so that
transformers are flushed when the context closes::

    with manager.publisher() as publish:
        publish(samples)
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from oslo_log import log
from stevedore import extension

from telemeter import publisher
from telemeter.pipeline import base, event, sample
from telemeter.pipeline.base import (  # noqa: F401  (public names)
    ConfigException,
    PipelineException,
    PollingException,
    PublishError,
)

LOG = log.getLogger(__name__)

OPTS = [
    cfg.StrOpt('pipeline_cfg_file',
               default='pipeline.yaml',
               help='Configuration file for pipeline definition.'),
    cfg.StrOpt('event_pipeline_cfg_file',
               default='event_pipeline.yaml',
               help='Configuration file for event pipeline definition.'),
]

SAMPLE_TYPE = {'name': 'sample',
               'pipeline': sample.SamplePipeline,
               'source': sample.SampleSource,
               'sink': sample.SampleSink,
               'publisher_namespace': 'telemeter.sample.publisher'}

EVENT_TYPE = {'name': 'event',
              'pipeline': event.EventPipeline,
              'source': event.EventSource,
              'sink': event.EventSink,
              'publisher_namespace': 'telemeter.event.publisher'}


class PublishContext:
    """Feeds data to pipelines and flushes them all on exit."""

    def __init__(self, pipelines: list[Any] | None = None) -> None:
        self.pipelines = list(pipelines or [])

    def add_pipelines(self, pipelines: list[Any]) -> None:
        self.pipelines.extend(pipelines)

    def __enter__(self) -> Any:
        self.failures: list[str] = []

        def publish(data: Any) -> None:
            for pipeline in self.pipelines:
                try:
                    pipeline.publish_data(data)
                except base.PublishError as err:
                    self.failures.extend(err.failures)
        return publish

    def __exit__(self, *exc_info: Any) -> None:
        for pipeline in self.pipelines:
            try:
                pipeline.flush()
            except base.PublishError as err:
                self.failures.extend(err.failures)
        if self.failures and exc_info[0] is None:
            raise base.PublishError(self.failures)


class PipelineManager:
    """Every pipeline of one pipeline file, validated at construction.

    Any :class:`ConfigException` is raised from here, so a daemon given a bad
    file refuses to start and says which source or sink is wrong.
    """

    def __init__(self, conf: cfg.ConfigOpts, cfg_file: str,
                 transformer_manager: Any, p_type: dict = SAMPLE_TYPE
                 ) -> None:
        self.conf = conf
        #: Publisher URLs that failed to load, with the reason. The sinks
        #: go on without them (pipeline behaviour); the daemons' start-up
        #: check (:mod:`telemeter.preflight`) refuses to start.
        self.publisher_errors: dict[str, str] = {}
        self.cfg_file, content = base.load_yaml(conf, cfg_file)
        try:
            self.pipelines = self._build(content, transformer_manager,
                                         p_type)
        except ConfigException as err:
            # Name the file: the daemon's refusal to start must say where.
            err.cfg_file = self.cfg_file
            raise

    def _build(self, content: Any, transformer_manager: Any,
               p_type: dict) -> list[Any]:
        if (not isinstance(content, dict) or 'sources' not in content
                or 'sinks' not in content):
            raise PipelineException('Both sources & sinks are required',
                                    content)
        sources = []
        source_names: set[str] = set()
        for source_cfg in content['sources'] or []:
            name = source_cfg.get('name')
            if name in source_names:
                raise PipelineException(
                    f'Duplicated source names: {name}', content)
            source_names.add(name)
            sources.append(p_type['source'](source_cfg))

        publishers: dict[str, Any] = {}
        sinks = {}
        for sink_cfg in content['sinks'] or []:
            name = sink_cfg.get('name')
            if name in sinks:
                raise PipelineException(
                    f'Duplicated sink names: {name}', content)
            self._load_publishers(sink_cfg, publishers,
                                  p_type['publisher_namespace'])
            sinks[name] = p_type['sink'](sink_cfg, transformer_manager,
                                         publishers)

        pipelines = []
        names: set[str] = set()
        for source in sources:
            if not source.sinks:
                raise PipelineException(
                    f'No sink defined in source {source}', source.cfg)
            for sink_name in source.sinks:
                if sink_name not in sinks:
                    raise PipelineException(
                        f'Dangling sink {sink_name} from source {source}',
                        source.cfg)
                pipeline = p_type['pipeline'](source, sinks[sink_name])
                if pipeline.name in names:
                    raise PipelineException(
                        f'Duplicate pipeline name: {pipeline.name}. Ensure '
                        'pipeline names are unique. (name is the source and '
                        'sink names combined)', content)
                names.add(pipeline.name)
                pipelines.append(pipeline)
        return pipelines

    def _load_publishers(self, sink_cfg: dict, publishers: dict[str, Any],
                         namespace: str) -> None:
        for url in sample._normalise_urls(sink_cfg.get('publishers') or []):
            if url in publishers:
                continue
            try:
                publishers[url] = publisher.get_publisher(self.conf, url,
                                                          namespace)
            except Exception as err:
                LOG.error('Unable to load publisher %s', url, exc_info=True)
                publishers[url] = None
                self.publisher_errors[url] = str(err) or type(err).__name__

    def publisher(self) -> PublishContext:
        """A new publish context over every pipeline."""
        return PublishContext(self.pipelines)


def _transformer_manager() -> extension.ExtensionManager:
    return extension.ExtensionManager('telemeter.transformer')


def setup_pipeline(conf: cfg.ConfigOpts, transformer_manager: Any = None
                   ) -> PipelineManager:
    """Build the sample pipelines of ``[DEFAULT] pipeline_cfg_file``."""
    return PipelineManager(conf, conf.pipeline_cfg_file,
                           transformer_manager or _transformer_manager(),
                           SAMPLE_TYPE)


def setup_event_pipeline(conf: cfg.ConfigOpts, transformer_manager: Any = None
                         ) -> PipelineManager:
    """Build the event pipelines of ``[DEFAULT] event_pipeline_cfg_file``."""
    return PipelineManager(conf, conf.event_pipeline_cfg_file,
                           transformer_manager or _transformer_manager(),
                           EVENT_TYPE)


def setup_polling(conf: cfg.ConfigOpts) -> Any:
    """Build the polling definitions of ``[polling] cfg_file``.

    The parser lives in :mod:`telemeter.polling.definitions` (it builds on
    :mod:`telemeter.pipeline.base`); it is imported on call so that the
    notification agent and the collector, which load this package, do not
    load the polling package.
    """
    from telemeter.polling import definitions

    return definitions.setup_polling(conf)


def get_pipeline_grouping_key(pipe: Any) -> list[str]:
    """Union of the grouping keys of the pipeline's sink transformers."""
    return pipe.get_grouping_key()
