"""The events endpoint of the notification agent's main listeners."""

from __future__ import annotations

import oslo_messaging
from oslo_log import log
from stevedore import extension

from telemeter.messaging import dispatch
from telemeter.notification import event_converter, plugin_base
from telemeter.storage import models

LOG = log.getLogger(__name__)

TRAIT_PLUGIN_NAMESPACE = 'telemeter.event.trait_plugin'


class EventsNotificationEndpoint:
    """Converts ``info`` and ``error`` notifications into events and
    publishes each in its own context on the event pipelines.

    ``manager`` exposes ``.conf`` and ``.publisher()``: the event pipeline
    manager, or the IPC publisher when workload partitioning is on.
    A notification that cannot be converted is rejected (acknowledged,
    a copy quarantined); a publishing error requeues the batch, or is
    logged and the batch acknowledged when ``[notification]
    ack_on_event_error`` is True (Ceilometer's default; telemeter's is
    False).
    """

    def __init__(self, manager: plugin_base.HandlerManager[models.Event]
                 ) -> None:
        self.manager = manager
        self.conf = manager.conf
        self.event_converter = event_converter.setup_events(
            self.conf, extension.ExtensionManager(TRAIT_PLUGIN_NAMESPACE))
        #: Notifications that failed and were acknowledged anyway.
        self.failures = 0
        #: Events built and handed to the pipelines (again if requeued).
        self.produced = 0

    def info(self, notifications: plugin_base.Notifications
             ) -> plugin_base.HandlerResult:
        """Handle ``info`` notifications."""
        return self.process_notifications('info', notifications)

    def error(self, notifications: plugin_base.Notifications
              ) -> plugin_base.HandlerResult:
        """Handle ``error`` notifications."""
        return self.process_notifications('error', notifications)

    def process_notifications(self, priority: str,
                              notifications: plugin_base.Notifications
                              ) -> plugin_base.HandlerResult:
        """Convert the batch, then publish its events in one context.

        A notification that cannot be converted is logged, counted and
        returned as :class:`~telemeter.messaging.dispatch.Rejected` (the
        listener keeps a copy in the quarantine; requeuing it would fail
        the same way). A publishing error requeues the batch, or with
        ``ack_on_event_error`` is logged and the batch acknowledged.
        """
        events: list[models.Event] = []
        rejected = dispatch.Rejected()
        for notification in notifications:
            try:
                event = self.event_converter.to_event(priority, notification)
            except Exception as err:
                self.failures += 1
                LOG.error('Fail to process a notification', exc_info=True)
                rejected.append((notification, f'event conversion: '
                                               f'{type(err).__name__}: {err}'))
                continue
            if event is not None:
                events.append(event)
        if not events:
            return rejected or oslo_messaging.NotificationResult.HANDLED
        self.produced += len(events)
        try:
            with self.manager.publisher() as publish:
                publish(events)
        except Exception:
            if not self.conf.notification.ack_on_event_error:
                LOG.warning('Fail to publish %d event(s), requeuing the '
                            'batch (ack_on_event_error is False)',
                            len(events), exc_info=True)
                return oslo_messaging.NotificationResult.REQUEUE
            self.failures += len(events)
            LOG.error('Fail to process a notification batch: publishing '
                      '%d event(s) failed', len(events), exc_info=True)
        return rejected or oslo_messaging.NotificationResult.HANDLED
