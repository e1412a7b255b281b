"""``telemeter-agent-notification``."""

from __future__ import annotations

import cotyledon
from cotyledon import oslo_config_glue

from telemeter import service, systemd
from telemeter.health import server as health_server
from telemeter.notification import service as notification_service


def main() -> None:
    conf = service.prepare_service()
    health_server.bind_or_exit(conf, 'notification',
                               conf.notification.workers)
    manager = cotyledon.ServiceManager()
    systemd.attach(manager)
    oslo_config_glue.setup(manager, conf)
    manager.add(notification_service.NotificationService,
                workers=conf.notification.workers, args=(conf,))
    manager.run()
