"""Receiving side of workload partitioning: one endpoint per pipeline on the
``telemeter-pipe-*`` queues this agent owns.

Each endpoint takes the messages its pipeline's publisher id names, verifies
the signatures, rebuilds the datapoints and publishes a batch through that
pipeline alone, so the stateful transformers of a sink see every sample of
the resources routed to this agent, in timestamp order.
"""

from __future__ import annotations

import re
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_log import log
from oslo_utils import timeutils

from telemeter import pipeline as pipeline_mod
from telemeter import sample as sample_mod
from telemeter.publisher import utils
from telemeter.storage import models

LOG = log.getLogger(__name__)


class PipeEndpoint:
    """Base of the per-pipeline IPC endpoints.

    :param pipelines: object whose ``current.pipelines`` are the pipelines
        in force; the pipeline is looked up by name for every batch, so a
        SIGHUP reload takes effect at once
    """

    def __init__(self, conf: cfg.ConfigOpts, pipelines: Any,
                 pipeline_name: str) -> None:
        self.conf = conf
        self.pipelines = pipelines
        self.pipeline_name = pipeline_name
        self.filter_rule = oslo_messaging.NotificationFilter(
            publisher_id='^' + re.escape(pipeline_name) + r'\Z')
        #: Datapoints dropped (bad signature or shape).
        self.rejected = 0

    def _pipeline(self) -> Any:
        for pipeline in self.pipelines.current.pipelines:
            if pipeline.name == self.pipeline_name:
                return pipeline
        return None

    def _verified(self, messages: list[dict]) -> list[dict]:
        secret = self.conf.publisher.telemetry_secret
        goods = []
        for message in messages:
            payload = message.get('payload')
            for item in payload if isinstance(payload, list) else [payload]:
                if isinstance(item, dict) and utils.verify_signature(
                        item, secret):
                    goods.append(item)
                else:
                    self.rejected += 1
                    LOG.warning('Pipeline %s: dropping a datapoint with an '
                                'invalid signature or shape: %.200r',
                                self.pipeline_name, item)
        return goods

    def sample(self, messages: list[dict]) -> Any:
        """Handle a batch of IPC messages."""
        pipeline = self._pipeline()
        if pipeline is None:
            LOG.warning('Pipeline %s no longer exists: dropping %d '
                        'messages', self.pipeline_name, len(messages))
            return oslo_messaging.NotificationResult.HANDLED
        data = []
        for item in self._verified(messages):
            try:
                data.append(self.rebuild(item))
            except Exception as err:
                self.rejected += 1
                LOG.warning('Pipeline %s: dropping malformed datapoint '
                            '%.200r: %s', self.pipeline_name, item, err)
        if not data:
            return oslo_messaging.NotificationResult.HANDLED
        return self.publish(pipeline, data)

    def rebuild(self, item: dict) -> Any:
        raise NotImplementedError

    def publish(self, pipeline: Any, data: list[Any]) -> Any:
        raise NotImplementedError


class SamplePipeEndpoint(PipeEndpoint):
    """Samples of one sample pipeline, sorted by timestamp per batch."""

    def rebuild(self, item: dict) -> sample_mod.Sample:
        rebuilt = sample_mod.Sample(
            name=item['counter_name'],
            type=item['counter_type'],
            unit=item['counter_unit'],
            volume=item['counter_volume'],
            user_id=item['user_id'],
            project_id=item['project_id'],
            resource_id=item['resource_id'],
            timestamp=item['timestamp'],
            resource_metadata=item['resource_metadata'],
            source=item.get('source'),
            monotonic_time=item.get('monotonic_time'))
        # Fails here, not while sorting, for a timestamp that cannot be
        # parsed.
        rebuilt.get_iso_timestamp()
        return rebuilt

    def publish(self, pipeline: Any, data: list[Any]) -> Any:
        data.sort(key=lambda s: s.get_iso_timestamp())
        with pipeline_mod.PublishContext([pipeline]) as publish:
            publish(data)
        return oslo_messaging.NotificationResult.HANDLED


class EventPipeEndpoint(PipeEndpoint):
    """Events of one event pipeline."""

    def rebuild(self, item: dict) -> models.Event:
        generated = timeutils.normalize_time(
            timeutils.parse_isotime(item['generated']))
        traits = [models.Trait(name, dtype,
                               models.Trait.convert_value(dtype, value))
                  for name, dtype, value in item['traits']]
        return models.Event(item['message_id'], item['event_type'],
                            generated, traits, item.get('raw', {}))

    def publish(self, pipeline: Any, data: list[Any]) -> Any:
        try:
            with pipeline_mod.PublishContext([pipeline]) as publish:
                publish(data)
        except Exception:
            if not self.conf.notification.ack_on_event_error:
                LOG.warning('Pipeline %s: publishing %d events failed, '
                            'requeuing them (ack_on_event_error is False)',
                            self.pipeline_name, len(data), exc_info=True)
                return oslo_messaging.NotificationResult.REQUEUE
            LOG.error('Pipeline %s: publishing %d events failed, '
                      'acknowledging them (ack_on_event_error is True)',
                      self.pipeline_name, len(data), exc_info=True)
        return oslo_messaging.NotificationResult.HANDLED


def endpoints(conf: cfg.ConfigOpts, sample_pipelines: Any,
              event_pipelines: Any) -> list[PipeEndpoint]:
    """One endpoint per sample and event pipeline in force."""
    result: list[PipeEndpoint] = [
        SamplePipeEndpoint(conf, sample_pipelines, p.name)
        for p in sample_pipelines.current.pipelines]
    result.extend(EventPipeEndpoint(conf, event_pipelines, p.name)
                  for p in event_pipelines.current.pipelines)
    return result
