"""telemeter-api: Ceilometer's v2 REST API over the stored data.

The WSGI stack is WebOb (requests and responses) with Routes (URL
dispatch): two small, long-lived libraries that OpenStack itself uses and
that need no framework around them. Ceilometer used pecan + WSME; their
object mapping would add a large layer whose only job here is to turn a
few query parameters into storage calls and models into JSON, which the
modules of :mod:`telemeter.api.v2` do explicitly (and so can name the
parameter that is wrong in every 400).

Layout: :mod:`.app` builds the WSGI application (routing, errors, auth
middleware), :mod:`.query` reads the ``q.field``/``q.op``/``q.value``/
``q.type`` grammar, :mod:`.complex_query` the JSON filter of ``POST
/v2/query/samples``, :mod:`.rbac` applies oslo.policy and the project
scoping, :mod:`.render` turns storage models into Ceilometer's JSON shapes,
:mod:`.v2` holds the endpoints, :mod:`.dashboard` the operator page,
:mod:`.wsgi` the module-level ``application`` for uwsgi / mod_wsgi and
:mod:`telemeter.cmd.api` the ``telemeter-api`` server (gunicorn).
"""

from __future__ import annotations

from oslo_config import cfg

OPTS = [
    cfg.HostAddressOpt('host', default='0.0.0.0',
                       help='The address telemeter-api listens on.'),
    cfg.PortOpt('port', default=8777,
                help='The TCP port telemeter-api listens on.'),
    cfg.IntOpt('workers', default=1, min=1,
               help='Number of worker processes of telemeter-api.'),
    cfg.IntOpt('threads', default=4, min=1,
               help='Threads per worker process (requests served at once '
                    'by each worker).'),
    cfg.IntOpt('timeout', default=120, min=1,
               help='Seconds a request may run before its worker is '
                    'restarted.'),
    cfg.StrOpt('auth_mode', default='keystone',
               choices=[('keystone', 'Validate tokens with keystonemiddleware '
                                     'auth_token ([keystone_authtoken]).'),
                        ('noauth', 'No authentication: every request is '
                                   'admin unless it sends X-Roles / '
                                   'X-Project-Id headers (local use only).')],
               help='How requests are authenticated.'),
    cfg.IntOpt('default_api_return_limit', default=100, min=1,
               help='Number of items a list request returns when it sets '
                    'no limit.'),
    cfg.IntOpt('max_api_return_limit', default=10000, min=1,
               help='Largest limit a request may ask for (and most '
                    'statistics periods one request may return); larger '
                    'ones get 400.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the ``[api]`` options (idempotent)."""
    conf.register_opts(OPTS, group='api')
