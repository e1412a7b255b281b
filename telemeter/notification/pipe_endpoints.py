"""Receiving side of workload partitioning: one endpoint per pipeline on the
``telemeter-pipe-*`` queues this agent owns.

Each endpoint takes the messages its pipeline's publisher id names, verifies
the signatures, rebuilds the datapoints and publishes a batch through that
pipeline alone, so the stateful transformers of a sink see every sample of
the resources routed to this agent, in timestamp order.
"""

from __future__ import annotations

import collections
import re
import threading
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_log import log
from oslo_utils import timeutils
from stevedore import extension

from telemeter import pipeline as pipeline_mod
from telemeter import sample as sample_mod
from telemeter.notification import pipe
from telemeter.publisher import utils
from telemeter.storage import models

LOG = log.getLogger(__name__)


class TransformerStates:
    """Transformer instances per sink *and per pipeline queue*.

    The state of a stateful transformer (the previous sample of each
    resource for ``rate_of_change``) belongs to the queue its resources are
    routed to, which is the unit agents hand over: when this agent gives a
    queue up, :meth:`forget` drops that state, so that if the queue ever
    comes back the first sample starts afresh instead of being compared
    with one from before the agent lost it.
    """

    def __init__(self) -> None:
        self._manager: Any = None
        self._states: dict[tuple[str, int], list[Any]] = {}
        #: Held while a sink runs with one queue's transformers.
        self.lock = threading.Lock()

    def _transformer_manager(self) -> Any:
        if self._manager is None:
            self._manager = extension.ExtensionManager(
                'telemeter.transformer')
        return self._manager

    def transformers(self, sink: Any, index: int) -> list[Any]:
        """The transformers of ``sink`` for queue ``index`` (built from
        the sink's configuration on first use)."""
        key = (sink.name, index)
        if key not in self._states:
            manager = self._transformer_manager()
            self._states[key] = [
                manager[t['name']].plugin(**(t.get('parameters') or {}))
                for t in sink.cfg.get('transformers') or []]
        return self._states[key]

    def forget(self, index: int) -> None:
        """Drop the state of queue ``index`` (no longer consumed here)."""
        with self.lock:
            for key in [k for k in self._states if k[1] == index]:
                del self._states[key]

    def clear(self) -> None:
        """Drop every state (the pipelines were reloaded)."""
        with self.lock:
            self._states.clear()


class PipeEndpoint:
    """Base of the per-pipeline IPC endpoints.

    :param pipelines: object whose ``current.pipelines`` are the pipelines
        in force; the pipeline is looked up by name for every batch, so a
        SIGHUP reload takes effect at once
    """

    def __init__(self, conf: cfg.ConfigOpts, pipelines: Any,
                 pipeline_name: str,
                 states: TransformerStates | None = None) -> None:
        self.conf = conf
        self.pipelines = pipelines
        self.pipeline_name = pipeline_name
        self.states = states or TransformerStates()
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
                data.append((item, self.rebuild(item)))
            except Exception as err:
                self.rejected += 1
                LOG.warning('Pipeline %s: dropping malformed datapoint '
                            '%.200r: %s', self.pipeline_name, item, err)
        if not data:
            return oslo_messaging.NotificationResult.HANDLED
        return self.publish(pipeline, data)

    def rebuild(self, item: dict) -> Any:
        raise NotImplementedError

    def publish(self, pipeline: Any, data: list[tuple[dict, Any]]) -> Any:
        """Publish ``(received dict, rebuilt datapoint)`` pairs."""
        raise NotImplementedError


class SamplePipeEndpoint(PipeEndpoint):
    """Samples of one sample pipeline, sorted by timestamp per batch."""

    def rebuild(self, item: dict) -> sample_mod.Sample:
        # The id is derived from the sent one (and the pipeline): a
        # message delivered twice on a pipeline queue (a fail-over, a
        # killed agent) gives samples that storage keeps once.
        sent = item.get('message_id')
        rebuilt = sample_mod.from_metering_dict(
            item, monotonic_time=item.get('monotonic_time'),
            id=sample_mod.derived_id(str(sent), 'pipe', self.pipeline_name)
            if sent else None)
        # Fails here, not while sorting, for a timestamp that cannot be
        # parsed.
        rebuilt.get_iso_timestamp()
        return rebuilt

    def publish(self, pipeline: Any, data: list[tuple[dict, Any]]) -> Any:
        sink = pipeline.sink
        if not sink.cfg.get('transformers'):
            self._publish(pipeline, [sample for _item, sample in data])
            return oslo_messaging.NotificationResult.HANDLED
        # Group by the queue each sample was routed to (the sender's
        # computation, repeated), and run each group through that queue's
        # transformers.
        keys = pipe.grouping_keys(pipeline)
        queues = self.conf.notification.pipeline_processing_queues
        by_queue: dict[int, list[Any]] = collections.defaultdict(list)
        for item, sample in data:
            by_queue[pipe.queue_index(item, keys, queues)].append(sample)
        with self.states.lock:
            template = sink.transformers
            try:
                for index in sorted(by_queue):
                    sink.transformers = self.states.transformers(sink,
                                                                 index)
                    self._publish(pipeline, by_queue[index])
            finally:
                sink.transformers = template
        return oslo_messaging.NotificationResult.HANDLED

    @staticmethod
    def _publish(pipeline: Any, data: list[Any]) -> None:
        data.sort(key=lambda s: s.get_iso_timestamp())
        with pipeline_mod.PublishContext([pipeline]) as publish:
            publish(data)


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

    def publish(self, pipeline: Any, data: list[tuple[dict, Any]]) -> Any:
        try:
            with pipeline_mod.PublishContext([pipeline]) as publish:
                publish([event for _item, event in data])
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
              event_pipelines: Any,
              states: TransformerStates | None = None
              ) -> list[PipeEndpoint]:
    """One endpoint per sample and event pipeline in force."""
    states = states or TransformerStates()
    result: list[PipeEndpoint] = [
        SamplePipeEndpoint(conf, sample_pipelines, p.name, states)
        for p in sample_pipelines.current.pipelines]
    result.extend(EventPipeEndpoint(conf, event_pipelines, p.name)
                  for p in event_pipelines.current.pipelines)
    return result
