"""Base class of the notification handlers (``telemeter.notification``)."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeAlias, TypeVar

import oslo_messaging
from oslo_config import cfg
from oslo_log import log

from telemeter import pipeline, sample
from telemeter.messaging import dispatch, envelope

LOG = log.getLogger(__name__)

#: What a handler's hook returns to the listener: ``None`` (handled),
#: ``REQUEUE``/``HANDLED``, or the notifications it rejected.
HandlerResult: TypeAlias = (
    'oslo_messaging.NotificationResult | dispatch.Rejected | None')
Notifications: TypeAlias = list[envelope.Notification]

_T = TypeVar('_T')


class Publishing(Protocol[_T]):
    """A publish context: entered, it gives the function that hands data
    (samples or events) to every pipeline; leaving it flushes them, and
    raises :class:`~telemeter.pipeline.PublishError` if a publisher did
    not take its data."""

    def __enter__(self) -> Callable[[list[_T]], None]: ...

    def __exit__(self, *exc_info: Any) -> Any: ...


class HandlerManager(Protocol[_T]):
    """What a handler is built with (the spec's ``manager``): the
    configuration and the pipelines' publish context. The notification
    agent's pipeline manager, its partitioning publisher and
    ``telemeter-dryrun``'s collector each provide it."""

    conf: cfg.ConfigOpts

    def publisher(self) -> Publishing[_T]: ...


class EventTypeFilter:
    """An endpoint's ``filter_rule`` on the event type alone.

    It matches as ``oslo_messaging.NotificationFilter(event_type=...)``
    does (any of the regular expressions, searched from the start) and
    remembers its verdict per event type.
    """

    LIMIT = 4096

    def __init__(self, patterns: list[str]) -> None:
        self.rule = oslo_messaging.NotificationFilter(
            event_type='|'.join(patterns))
        self._known: dict[Any, bool] = {}

    def match(self, ctxt: dict[str, Any], publisher_id: str | None,
              event_type: object, metadata: dict[str, Any],
              payload: Any) -> bool:
        """True if ``event_type`` matches (it comes off the bus: a
        malformed notification may carry anything there)."""
        try:
            return self._known[event_type]
        except (KeyError, TypeError):
            pass
        verdict = self.rule.match(ctxt, publisher_id, event_type, metadata,
                                  payload)
        if isinstance(event_type, str):
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[event_type] = verdict
        return verdict


class NotificationBase(metaclass=abc.ABCMeta):
    """Turns notifications into samples and publishes them.

    ``manager`` exposes ``.conf`` and ``.publisher()``. Instances are
    oslo.messaging batch endpoints: ``info`` and ``sample`` receive lists of
    notification dicts (``ctxt``, ``publisher_id``, ``event_type``,
    ``payload``, ``metadata``).
    """

    #: Regular expressions of the event types this handler accepts; empty
    #: means every event type.
    event_types: list[str] = []
    #: Whether sample ids are derived from the notification's message id
    #: (False for handlers whose samples carry their own ids).
    derive_sample_ids = True

    def __init__(self, manager: HandlerManager[sample.Sample]) -> None:
        self.manager = manager
        self.conf = manager.conf
        #: Notifications that could not be processed (logged and dropped).
        self.failures = 0
        #: Samples built and handed to the pipelines.
        self.produced = 0
        if self.event_types:
            self.filter_rule = EventTypeFilter(self.event_types)

    def get_targets(self, conf: cfg.ConfigOpts) -> list[oslo_messaging.Target]:
        """Every notification topic on every configured exchange."""
        return [oslo_messaging.Target(topic=topic, exchange=exchange)
                for topic in conf.oslo_messaging_notifications.topics
                for exchange in
                conf.notification.notification_control_exchanges]

    @abc.abstractmethod
    def process_notification(self, message: envelope.Notification
                             ) -> Iterable[sample.Sample]:
        """Return the samples built from one notification dict."""

    def info(self, notifications: Notifications) -> HandlerResult:
        """Handle ``info`` notifications."""
        return self._process(notifications)

    def sample(self, notifications: Notifications) -> HandlerResult:
        """Handle ``sample`` notifications."""
        return self._process(notifications)

    def _process(self, notifications: Notifications) -> HandlerResult:
        """Build the samples of every notification, then publish them in
        one context: transformers are flushed and publishers called once
        per batch. A notification that cannot be processed is logged,
        counted and returned as :class:`~telemeter.messaging.dispatch.
        Rejected` (the listener keeps a copy in the quarantine); the others
        are published. If a publisher fails, the batch is requeued
        (``REQUEUE``)."""
        samples: list[sample.Sample] = []
        rejected = dispatch.Rejected()
        for notification in notifications:
            try:
                # All of a notification's samples or none of them.
                built = list(self.process_notification(notification))
            except Exception as err:
                self.failures += 1
                LOG.error('Fail to process notification', exc_info=True)
                rejected.append((notification, f'{type(self).__name__}: '
                                               f'{type(err).__name__}: {err}'))
                continue
            if self.derive_sample_ids:
                _derive_ids(type(self).__name__, notification, built)
            samples.extend(built)
        if not samples:
            return rejected or None
        self.produced += len(samples)
        try:
            with self.manager.publisher() as publish:
                publish(samples)
        except pipeline.PublishError as err:
            # Not acknowledged: the broker keeps the notifications and
            # hands them out again after a back-off; their samples keep
            # their ids, so what one publisher already took is stored once.
            LOG.warning('Requeuing %d notification(s): a publisher did not '
                        'take their samples (%s)', len(notifications), err)
            return oslo_messaging.NotificationResult.REQUEUE
        return rejected or None

    # Other priorities are acknowledged and discarded.
    def audit(self, notifications: Notifications) -> None:
        """Discard ``audit`` notifications."""

    def debug(self, notifications: Notifications) -> None:
        """Discard ``debug`` notifications."""

    def warn(self, notifications: Notifications) -> None:
        """Discard ``warn`` notifications."""

    def error(self, notifications: Notifications) -> None:
        """Discard ``error`` notifications."""

    def critical(self, notifications: Notifications) -> None:
        """Discard ``critical`` notifications."""


def _derive_ids(handler: str, notification: envelope.Notification,
                samples: list[sample.Sample]) -> None:
    """Give the samples of a notification ids derived from its message id,
    the handler and their position, so a redelivered notification makes
    the same samples (which storage keeps once) rather than new ones."""
    message_id = (notification.get('metadata') or {}).get('message_id')
    if not message_id:
        return
    for index, made in enumerate(samples):
        made.id = sample.derived_id(str(message_id), handler, str(index))
