"""``telemeter-collector``."""

from __future__ import annotations

import cotyledon
from cotyledon import oslo_config_glue

from telemeter import preflight, service, systemd
from telemeter.collector import service as collector_service
from telemeter.health import server as health_server

DESCRIPTION = ('The collector: stores the samples and events of the '
               'metering.sample / event.sample queues and of UDP datagrams '
               'through its dispatchers.')


def main() -> None:
    conf = service.prepare_service(description=DESCRIPTION)
    preflight.require(conf, 'collector', 'telemeter-collector')
    health_server.bind_or_exit(conf, 'collector', conf.collector.workers)
    manager = cotyledon.ServiceManager()
    systemd.attach(manager)
    oslo_config_glue.setup(manager, conf)
    manager.add(collector_service.CollectorService,
                workers=conf.collector.workers, args=(conf,))
    manager.run()
