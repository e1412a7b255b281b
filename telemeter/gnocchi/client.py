"""The gnocchiclient every Gnocchi writer of telemeter uses.

``[gnocchi] auth_mode = keystone`` authenticates with ``[service_credentials]``
and finds the ``metric`` endpoint in the catalog (``url`` overrides it);
``basic`` talks to a standalone Gnocchi (its ``auth_mode = basic``) at
``url`` as ``user``. Building a client does no network I/O: the first
request authenticates and resolves the endpoint, so a daemon whose Gnocchi
is down still starts.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

GROUP = 'gnocchi'

OPTS = [
    cfg.StrOpt('auth_mode',
               default='keystone',
               choices=[('keystone', 'Keystone session of '
                         '[service_credentials], endpoint from the catalog '
                         '(service type "metric") unless url is set'),
                        ('basic', 'HTTP basic auth as user, for a Gnocchi '
                         'running with auth_mode = basic; url is required')],
               help='How to authenticate to Gnocchi.'),
    cfg.URIOpt('url',
               schemes=['http', 'https'],
               help='Gnocchi endpoint, e.g. http://gnocchi.example:8041. '
                    'Required with auth_mode = basic; with keystone it '
                    'overrides the service catalog.'),
    cfg.StrOpt('user',
               default='admin',
               help='User name sent with auth_mode = basic (Gnocchi\'s '
                    'basic mode takes no password).'),
    cfg.FloatOpt('timeout',
                 default=6.05, min=0.1,
                 help='Seconds to wait for each Gnocchi request.'),
    cfg.IntOpt('retries',
               default=3, min=0,
               help='Retries of a batch that failed because Gnocchi was '
                    'unreachable or answered 5xx, before it goes to the '
                    'backlog (or is refused when the backlog is full).'),
    cfg.FloatOpt('retry_backoff',
                 default=0.5, min=0,
                 help='Seconds before the first retry; doubled at each '
                      'further retry, up to retry_backoff_max.'),
    cfg.FloatOpt('retry_backoff_max',
                 default=8.0, min=0,
                 help='Upper bound of the wait between two retries.'),
    cfg.IntOpt('backlog_size',
               default=10000, min=0,
               help='Measures kept in memory (per publisher or dispatcher) '
                    'while Gnocchi cannot be reached; they are sent first '
                    'once it answers again. Past it a batch is refused: '
                    'its notification is not acknowledged and the broker '
                    'delivers it again. 0 keeps nothing: every batch Gnocchi '
                    'does not take is refused at once (nothing is lost if '
                    'the daemon dies while Gnocchi is down).'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register ``[gnocchi]`` (idempotent)."""
    conf.register_opts(OPTS, group=GROUP)


def get_client(conf: cfg.ConfigOpts) -> Any:
    """A ``gnocchiclient.v1.client.Client`` configured by ``[gnocchi]``.

    Raises ``ValueError`` for a configuration that cannot work (basic auth
    without ``url``) and keystoneauth errors for incomplete Keystone
    credentials; never a network error.
    """
    from gnocchiclient import client as gnocchi_client

    register_opts(conf)
    options = conf[GROUP]
    adapter_options: dict[str, Any] = {'connect_retries': 0}
    if options.auth_mode == 'basic':
        from gnocchiclient import auth as gnocchi_auth
        from keystoneauth1 import session as ka_session

        if not options.url:
            raise ValueError('[gnocchi] url is required with '
                             'auth_mode = basic')
        session = ka_session.Session(
            auth=gnocchi_auth.GnocchiBasicPlugin(options.user, options.url),
            timeout=options.timeout)
        adapter_options['endpoint_override'] = options.url
    else:
        from telemeter import keystone_client

        session = keystone_client.get_session(conf)
        session.timeout = options.timeout
        credentials = conf[keystone_client.CFG_GROUP]
        interface = credentials.interface
        adapter_options['interface'] = (interface[:-3]
                                        if interface.endswith('URL')
                                        else interface)
        adapter_options['region_name'] = credentials.region_name
        if options.url:
            adapter_options['endpoint_override'] = options.url
    return gnocchi_client.Client('1', session,
                                 adapter_options=adapter_options)


def endpoint_description(conf: cfg.ConfigOpts) -> str:
    """Where the client goes, for log messages."""
    register_opts(conf)
    options = conf[GROUP]
    return options.url or 'the "metric" endpoint of the service catalog'
