"""Per-process counts (``/metrics``) and health (``/healthz``) of a daemon.

Every worker process of ``telemeter-polling``,
``telemeter-agent-notification`` and ``telemeter-collector`` can serve two
pages on a loopback port of its own (``[health]``):

* ``/metrics``: the worker's :class:`~.ledger.Ledger` in the Prometheus
  text format, read from the daemon's own counters at scrape time;
* ``/healthz``: JSON, status 200 when the worker consumes and its next hop
  is reachable, 503 with the failing checks otherwise (:mod:`.checks`).

Worker ``i`` (0-based) of a daemon serves on ``<daemon>_port + i``.
"""

from __future__ import annotations

from oslo_config import cfg

#: Daemon name -> the option holding its first port.
PORT_OPTIONS = {
    'polling': 'polling_port',
    'notification': 'notification_port',
    'collector': 'collector_port',
}

OPTS = [
    cfg.BoolOpt('enabled',
                default=False,
                help='Serve /metrics (Prometheus text format) and /healthz '
                     '(JSON; 200 when the worker consumes and its next hop '
                     'is reachable, 503 otherwise) over HTTP from every '
                     'worker process of the daemons.'),
    cfg.HostAddressOpt('host',
                       default='127.0.0.1',
                       help='Address the health endpoints listen on. The '
                            'pages carry no secret but are not '
                            'authenticated: keep them on loopback or a '
                            'management network.'),
    cfg.PortOpt('polling_port',
                default=9910,
                help='Port of the health endpoints of telemeter-polling. '
                     'Worker i (0-based) of a daemon with several workers '
                     'listens on this port + i.'),
    cfg.PortOpt('notification_port',
                default=9920,
                help='Port of the health endpoints of '
                     'telemeter-agent-notification; worker i listens on '
                     'this port + i ([notification] workers).'),
    cfg.PortOpt('collector_port',
                default=9930,
                help='Port of the health endpoints of telemeter-collector; '
                     'worker i listens on this port + i ([collector] '
                     'workers).'),
    cfg.FloatOpt('probe_timeout',
                 default=2.0,
                 min=0.1,
                 help='Seconds a /healthz probe of the next hop (the '
                      'collector\'s database) may take before it counts '
                      'as failed. A probe result is reused for one '
                      'second, so frequent scrapes cost one probe.'),
]
