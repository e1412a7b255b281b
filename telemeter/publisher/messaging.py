"""The ``notifier://`` publisher: signed dicts onto the message bus.

Samples go out as ``sample``-priority notifications on
``[publisher_notifier] metering_topic`` (``metering.sample`` on the wire),
events on ``event_topic``; the collector consumes both. The URL's ``policy``
decides what happens when the broker cannot take them (publishers.md §1).
"""

from __future__ import annotations

import collections
import threading
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import oslo_messaging
from oslo_config import cfg
from oslo_log import log

import telemeter
from telemeter import messaging, publisher, wire
from telemeter.publisher import utils
from telemeter.utils import entry_point_names

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

LOG = log.getLogger(__name__)

NOTIFIER_OPTS = [
    cfg.StrOpt('metering_topic',
               default='metering',
               help='The topic that telemeter uses for metering '
                    'notifications.'),
    cfg.StrOpt('event_topic',
               default='event',
               help='The topic that telemeter uses for event '
                    'notifications.'),
    cfg.StrOpt('telemetry_driver',
               default='messagingv2',
               deprecated_name='metering_driver',
               help='The driver that telemeter uses for metering '
                    'notifications.'),
]

POLICIES = ('default', 'drop', 'queue')
_OWN_PARAMS = ('topic', 'driver', 'policy', 'max_queue_length', 'max_retry',
               'per_meter_topic', 'max_per_message')
#: Datapoints one bus message carries at most (``max_per_message``): the
#: collector's batches, memory and requeues are counted in messages.
MAX_PER_MESSAGE = 100


class DeliveryFailure(Exception):
    """The bus did not take a notification."""

    def __init__(self, message: str | None = None,
                 cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class NotifierPublisher(publisher.ConfigPublisherBase):
    """Shared machinery of the sample and event notifier publishers."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any,
                 default_topic: str) -> None:
        super().__init__(conf, parsed_url)
        options = urllib.parse.parse_qs(parsed_url.query)
        self.max_retry = int(options.get('max_retry', [100])[-1])
        self.policy = options.get('policy', ['default'])[-1]
        if self.policy not in POLICIES:
            LOG.warning('Publishing policy is unknown (%s) force to default',
                        self.policy)
            self.policy = 'default'
        LOG.info('Publishing policy set to %s', self.policy)
        self.max_queue_length = int(
            options.get('max_queue_length', [1024])[-1])
        self.per_meter_topic = bool(int(
            options.get('per_meter_topic', [0])[-1]))
        self.max_per_message = max(1, int(
            options.get('max_per_message', [MAX_PER_MESSAGE])[-1]))
        self.local_queue: list[tuple[str, Sequence[wire.Message]]] = []
        #: Datapoints given up: ``policy=drop``, or the oldest beyond
        #: ``max_queue_length`` with ``policy=queue``.
        self.dropped = 0
        self._queue_lock = threading.Lock()

        topics = options.get('topic', [default_topic])
        driver = options.get('driver', ['rabbit'])[0]
        if parsed_url.netloc:
            query = urllib.parse.urlencode(
                [(k, v) for k, values in options.items()
                 if k not in _OWN_PARAMS for v in values])
            url = urllib.parse.urlunsplit(
                (driver, parsed_url.netloc, parsed_url.path, query,
                 parsed_url.fragment))
        else:
            url = None
        self.topics = topics
        self.retry = None if self.policy == 'default' else 1
        self.publisher_id = f'telemetry.publisher.{conf.host}'
        self.driver = conf.publisher_notifier.telemetry_driver
        drivers = entry_point_names('oslo.messaging.notify.drivers')
        if self.driver not in drivers:
            # oslo.messaging's Notifier would drop every notification.
            raise ValueError(
                f'[publisher_notifier] telemetry_driver = {self.driver}: '
                f'not a notification driver ({", ".join(drivers)})')
        self.transport = messaging.get_transport(conf, url)
        self.notifier = messaging.get_notifier(
            self.transport, publisher_id=self.publisher_id,
            driver=self.driver, topics=topics, retry=self.retry)

    def _send(self, event_type: str, payload: Sequence[wire.Message]) -> None:
        """Send one notification; the single primitive tests replace.

        oslo.messaging's Notifier logs and swallows every delivery error,
        which would leave the policies nothing to act on. For the
        ``messagingv2`` / ``messaging`` drivers the notification is
        therefore built exactly as the Notifier builds it and handed to
        the transport directly, so a failure reaches the policy as
        :class:`DeliveryFailure`. Other drivers (``log``, ``noop``, ...)
        go through the Notifier and never fail.
        """
        try:
            messaging.send_sample(
                self.transport, self.topics, self.publisher_id, event_type,
                payload, driver=self.driver, notifier=lambda: self.notifier,
                retry=self.retry)
        except oslo_messaging.MessageDeliveryFailure as err:
            raise DeliveryFailure(str(err), err) from err

    def queued(self) -> int:
        """Datapoints held for a later attempt."""
        with self._queue_lock:
            return sum(len(p) for _, p in self.local_queue)

    def _enqueue(self, entries: list[tuple[str, Sequence[wire.Message]]]
                 ) -> None:
        size = self.max_per_message
        with self._queue_lock:
            for event_type, payload in entries:
                self.local_queue.extend(
                    (event_type, payload[start:start + size])
                    for start in range(0, len(payload), size))
        self.flush()

    def flush(self) -> None:
        """Send everything queued, oldest first, applying the policy."""
        with self._queue_lock:
            queue, self.local_queue = self.local_queue, []
        kept = self._process_queue(queue)
        with self._queue_lock:
            self.local_queue = kept + self.local_queue
            if self.policy == 'queue':
                self._check_queue_length()

    def _check_queue_length(self) -> None:
        excess = len(self.local_queue) - self.max_queue_length
        if self.max_queue_length > 0 and excess > 0:
            LOG.warning('Publisher max local_queue length is exceeded, '
                        'dropping %d oldest samples', excess)
            self.dropped += sum(len(p) for _, p in self.local_queue[:excess])
            del self.local_queue[:excess]

    def _process_queue(self, queue: list[tuple[str, Sequence[wire.Message]]]
                       ) -> list[tuple[str, Sequence[wire.Message]]]:
        pending = collections.deque(queue)
        attempts = 0
        while pending:
            event_type, payload = pending[0]
            try:
                self._send(event_type, payload)
            except DeliveryFailure:
                count = sum(len(p) for _, p in pending)
                if self.policy == 'queue':
                    LOG.warning('Failed to publish %d datapoints, queue them',
                                count)
                    return list(pending)
                if self.policy == 'drop':
                    LOG.warning('Failed to publish %d datapoints, dropping '
                                'them', count)
                    self.dropped += count
                    return []
                attempts += 1
                if attempts >= self.max_retry:
                    LOG.error('Failed to retry to send sample data with '
                              'max_retry times')
                    raise
                continue
            pending.popleft()
        return []


class SampleNotifierPublisher(NotifierPublisher):
    """``notifier://`` for samples (topic ``metering`` by default)."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url,
                         conf.publisher_notifier.metering_topic)

    def publish_samples(self, samples: list[Sample]) -> None:
        secret = self.conf.publisher.telemetry_secret
        messages = [utils.meter_message_from_counter(s, secret)
                    for s in samples]
        topic = self.conf.publisher_notifier.metering_topic
        entries: list[tuple[str, Sequence[wire.Message]]] = [
            (topic, messages)]
        if self.per_meter_topic:
            by_meter: dict[str, list[wire.MeteringMessage]] = (
                collections.defaultdict(list))
            for message in messages:
                by_meter[message['counter_name']].append(message)
            entries.extend((f'{topic}.{name}', by_meter[name])
                           for name in sorted(by_meter))
        self._enqueue(entries)

    def publish_events(self, events: list[Event]) -> None:
        raise telemeter.NotImplementedError('notifier sample publisher cannot '
                                  'publish events')


class EventNotifierPublisher(NotifierPublisher):
    """``notifier://`` for events (topic ``event`` by default)."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url,
                         conf.publisher_notifier.event_topic)

    def publish_samples(self, samples: list[Sample]) -> None:
        raise telemeter.NotImplementedError('notifier event publisher cannot '
                                  'publish samples')

    def publish_events(self, events: list[Event]) -> None:
        secret = self.conf.publisher.telemetry_secret
        self._enqueue([(self.conf.publisher_notifier.event_topic,
                        [utils.message_from_event(e, secret)
                         for e in events])])
