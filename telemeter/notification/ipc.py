"""The ``_sample`` handler: samples the polling agent (and
``telemeter-send-sample``) already built, carried as notifications."""

from __future__ import annotations

from collections.abc import Iterator

import oslo_messaging
from oslo_config import cfg

from telemeter import sample
from telemeter.messaging import envelope
from telemeter.notification import plugin_base

OPTS = [
    cfg.StrOpt('telemeter_control_exchange',
               default='telemeter',
               help='Exchange name for telemeter notifications.'),
]


class TelemetryIpc(plugin_base.NotificationBase):
    """One Sample per metering dict of ``payload['samples']``.

    As in Ceilometer, signatures are not checked here and ``monotonic_time``
    is not carried over.
    """

    event_types = ['telemetry.api', 'telemetry.polling']
    # The polling agent's samples keep the ids it gave them.
    derive_sample_ids = False

    def get_targets(self, conf: cfg.ConfigOpts) -> list[oslo_messaging.Target]:
        return [oslo_messaging.Target(
            topic=topic, exchange=conf.telemeter_control_exchange)
            for topic in conf.oslo_messaging_notifications.topics]

    def process_notification(self, message: envelope.Notification
                             ) -> Iterator[sample.Sample]:
        for data in message['payload']['samples']:
            yield sample.from_metering_dict(data, id=data.get('message_id'))
