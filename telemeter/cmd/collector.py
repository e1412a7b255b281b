"""``telemeter-collector``."""

from __future__ import annotations

import cotyledon
from cotyledon import oslo_config_glue

from telemeter import service
from telemeter.collector import service as collector_service


def main() -> None:
    conf = service.prepare_service()
    manager = cotyledon.ServiceManager()
    oslo_config_glue.setup(manager, conf)
    manager.add(collector_service.CollectorService,
                workers=conf.collector.workers, args=(conf,))
    manager.run()
