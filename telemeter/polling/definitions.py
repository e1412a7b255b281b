"""polling.yaml: which meters the polling agent polls, how often, on what.

Sources are validated with the rules shared with the pipelines
(:mod:`telemeter.pipeline.base`); ``telemeter.pipeline.setup_polling`` is
the spec's name for :func:`setup_polling`.

``setup_polling(conf)`` reads ``[polling] cfg_file`` and returns a
:class:`PollingManager` whose ``sources`` are :class:`PollingSource` objects.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from oslo_log import log

from telemeter.pipeline import base

LOG = log.getLogger(__name__)


class PollingSource(base.Source):
    """One source of polling.yaml: meters, interval, resources, discovery.

    Invalid sources raise :class:`~telemeter.pipeline.base.PipelineException`
    (as Ceilometer Pike does) in the order of pipeline.md §4.
    """

    exception = base.PipelineException

    def __init__(self, cfg: dict) -> None:
        super().__init__(cfg)
        try:
            self.meters: list[str] = cfg['meters']
        except KeyError as err:
            raise base.PipelineException('Missing meters value', cfg) from err

        try:
            raw_interval = cfg['interval']
        except KeyError as err:
            raise base.PipelineException(
                'Missing interval value', cfg) from err
        try:
            self.interval = int(raw_interval)
        except (TypeError, ValueError) as err:
            raise base.PipelineException(
                'Invalid interval value', cfg) from err
        if self.interval <= 0:
            raise base.PipelineException('Interval value should > 0', cfg)

        resources = cfg.get('resources')
        self.resources: list[Any] = [] if resources is None else resources
        if not isinstance(self.resources, list):
            raise base.PipelineException('Resources should be a list', cfg)

        discovery = cfg.get('discovery')
        self.discovery: list[str] = [] if discovery is None else discovery
        if not isinstance(self.discovery, list):
            raise base.PipelineException('Discovery should be a list', cfg)

        self.check_source_filtering(self.meters, 'meters')

    def get_interval(self) -> int:
        """The polling interval in seconds."""
        return self.interval

    def support_meter(self, meter_name: str) -> bool:
        """Whether this source's ``meters`` accept ``meter_name``."""
        return base.is_supported(self.meters, meter_name)


class PollingManager:
    """The parsed and validated polling definitions.

    If ``cfg_file`` cannot be opened, the deprecated sample pipeline file
    (``[DEFAULT] pipeline_cfg_file``) is read as polling definitions.
    """

    def __init__(self, conf: cfg.ConfigOpts, cfg_file: str) -> None:
        self.conf = conf
        try:
            self.cfg_path, content = base.load_yaml(conf, cfg_file)
        except (OSError, TypeError):
            LOG.warning('Using the pipeline configuration for polling is '
                        'deprecated. %s should be used instead.', cfg_file)
            self.cfg_path, content = base.load_yaml(
                conf, conf.pipeline_cfg_file)
        if not isinstance(content, dict) or 'sources' not in content:
            raise base.PollingException('sources required', content)
        self.sources: list[PollingSource] = [
            PollingSource(source) for source in content['sources'] or []]


def setup_polling(conf: cfg.ConfigOpts) -> PollingManager:
    """Load ``[polling] cfg_file`` (see pipeline.md §1)."""
    return PollingManager(conf, conf.polling.cfg_file)
