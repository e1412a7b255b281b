"""Sending side of workload partitioning: samples and events onto the
``telemeter-pipe-<pipeline>-<index>`` queues.

With ``[notification] workload_partitioning`` the main handlers do not run
the pipelines themselves. For each datapoint and each pipeline whose source
accepts it, the signed dict is sent to queue ``index = md5(key) %
pipeline_processing_queues`` where ``key`` joins the datapoint's grouping-key
values (``resource_id`` by default, ``event_type`` for events). Every
process computes the same index (MD5, never Python's salted ``hash()``), so
all samples of one resource reach whichever agent owns that queue.

A batch the bus does not take raises :class:`~telemeter.pipeline.
PublishError`, so the handler leaves the source notifications
unacknowledged and the broker delivers them again (oslo.messaging's
Notifier would log the failure and drop the batch).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import threading
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg
from oslo_log import log

from telemeter import messaging, wire
from telemeter.pipeline import PublishError
from telemeter.publisher import utils

LOG = log.getLogger(__name__)

SAMPLE_EVENT_TYPE = 'telemeter.pipeline'
EVENT_EVENT_TYPE = 'pipeline.event'
DEFAULT_SAMPLE_GROUPING_KEYS = ['resource_id']
EVENT_GROUPING_KEYS = ['event_type']


def queue_topic(pipeline_name: str, index: int) -> str:
    """The IPC topic of one pipeline's queue ``index``."""
    return f'telemeter-pipe-{pipeline_name}-{index}'


def queue_index(message: Mapping[str, Any], grouping_keys: list[str],
                queues: int) -> int:
    """The queue of a signed sample/event dict.

    ``key`` is the concatenation of ``str(message[k])`` for every grouping
    key whose value is truthy; the index is the MD5 of its UTF-8 bytes
    taken as an integer, modulo ``queues``.
    """
    key = ''.join(str(message[k]) for k in grouping_keys if message.get(k))
    digest = hashlib.md5(key.encode('utf-8'), usedforsecurity=False)
    return int(digest.hexdigest(), 16) % queues


def grouping_keys(pipeline: Any) -> list[str]:
    """Grouping keys of a sample pipeline's sink transformers, or the
    default ``['resource_id']``."""
    keys = pipeline.get_grouping_key() if hasattr(
        pipeline, 'get_grouping_key') else []
    return list(keys) or list(DEFAULT_SAMPLE_GROUPING_KEYS)


class _Kind:
    """What differs between samples and events on the sending side."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type

    def accepts(self, pipeline: Any, datum: Any) -> bool:
        raise NotImplementedError

    def serialize(self, datum: Any, secret: str | None) -> wire.Message:
        raise NotImplementedError

    def keys(self, pipeline: Any) -> list[str]:
        raise NotImplementedError


class _SampleKind(_Kind):
    def accepts(self, pipeline: Any, datum: Any) -> bool:
        return pipeline.source.support_meter(datum.name)

    def serialize(self, datum: Any, secret: str | None) -> wire.Message:
        return utils.meter_message_from_counter(datum, secret)

    def keys(self, pipeline: Any) -> list[str]:
        return grouping_keys(pipeline)


class _EventKind(_Kind):
    def accepts(self, pipeline: Any, datum: Any) -> bool:
        return pipeline.source.support_event(datum.event_type)

    def serialize(self, datum: Any, secret: str | None) -> wire.Message:
        return utils.message_from_event(datum, secret)

    def keys(self, pipeline: Any) -> list[str]:
        return list(EVENT_GROUPING_KEYS)


SAMPLES = _SampleKind(SAMPLE_EVENT_TYPE)
EVENTS = _EventKind(EVENT_EVENT_TYPE)


class PipeContext:
    """Publish context of :class:`PipePublisher`: each call sends its data
    at once, one notification per (pipeline, queue) it touches."""

    def __init__(self, owner: PipePublisher) -> None:
        self.owner = owner

    def __enter__(self) -> Any:
        return self.owner.send

    def __exit__(self, *exc_info: Any) -> None:
        """Nothing is held back, so there is nothing to flush."""


class PipePublisher:
    """Stands in for a pipeline manager in the handlers when partitioning.

    :param pipelines: object whose ``current.pipelines`` are the pipelines
        in force (SIGHUP may replace them)
    :param kind: :data:`SAMPLES` or :data:`EVENTS`
    """

    def __init__(self, conf: cfg.ConfigOpts, pipelines: Any, kind: _Kind,
                 transport: Any) -> None:
        self.conf = conf
        self.pipelines = pipelines
        self.kind = kind
        self.transport = transport
        self._notifiers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def publisher(self) -> PipeContext:
        return PipeContext(self)

    def _notifier(self, pipeline_name: str, topic: str) -> Any:
        """The Notifier of a driver that does not write to the bus
        (``noop``, ``log``, ...): it never fails."""
        with self._lock:
            notifier = self._notifiers.get(topic)
            if notifier is None:
                notifier = messaging.get_notifier(
                    self.transport, publisher_id=pipeline_name,
                    driver=self.conf.publisher_notifier.telemetry_driver,
                    topics=[topic])
                self._notifiers[topic] = notifier
            return notifier

    def _send(self, pipeline_name: str, topic: str,
              messages: list[wire.Message]) -> None:
        """Put one batch on ``topic``; raises what the transport raised."""
        messaging.send_sample(
            self.transport, [topic], pipeline_name, self.kind.event_type,
            messages, driver=self.conf.publisher_notifier.telemetry_driver,
            notifier=functools.partial(self._notifier, pipeline_name, topic))

    def route(self, data: Any
              ) -> dict[tuple[str, int], list[wire.Message]]:
        """Group the signed dicts of ``data`` by (pipeline name, queue)."""
        if not isinstance(data, list):
            data = [data]
        queues = self.conf.notification.pipeline_processing_queues
        secret = self.conf.publisher.telemetry_secret
        routed: dict[tuple[str, int], list[wire.Message]] = (
            collections.defaultdict(list))
        for datum in data:
            message = None
            for pipeline in self.pipelines.current.pipelines:
                if not self.kind.accepts(pipeline, datum):
                    continue
                if message is None:
                    message = self.kind.serialize(datum, secret)
                index = queue_index(message, self.kind.keys(pipeline),
                                    queues)
                routed[(pipeline.name, index)].append(message)
        return routed

    def send(self, data: Any) -> None:
        """Send ``data`` (a datapoint or a list) to the pipeline queues.

        Stops at the first batch the bus does not take and raises
        :class:`~telemeter.pipeline.PublishError`: the caller requeues the
        source notifications, and their datapoints are routed again (those
        already sent keep their ids, so storage keeps them once).
        """
        for (name, index), messages in self.route(data).items():
            topic = queue_topic(name, index)
            try:
                self._send(name, topic, messages)
            except Exception as err:
                LOG.warning('Could not send %d datapoint(s) to %s: %s',
                            len(messages), topic, err)
                raise PublishError(
                    [f'{topic}: {type(err).__name__}: {err}']) from err
