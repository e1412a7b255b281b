"""``telemeter-agent-notification``."""

from __future__ import annotations

import cotyledon
from cotyledon import oslo_config_glue

from telemeter import preflight, service, systemd
from telemeter.health import server as health_server
from telemeter.notification import service as notification_service

DESCRIPTION = ('The notification agent: turns OpenStack notifications into '
               'samples and events through the meter and event definitions '
               'and sends them through pipeline.yaml and event_pipeline.yaml.')


def main() -> None:
    conf = service.prepare_service(description=DESCRIPTION)
    preflight.require(conf, 'notification', 'telemeter-agent-notification')
    health_server.bind_or_exit(conf, 'notification',
                               conf.notification.workers)
    manager = cotyledon.ServiceManager()
    systemd.attach(manager)
    oslo_config_glue.setup(manager, conf)
    manager.add(notification_service.NotificationService,
                workers=conf.notification.workers, args=(conf,))
    manager.run()
