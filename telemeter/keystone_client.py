"""The ``[service_credentials]`` group: how agents authenticate to APIs."""

from __future__ import annotations

import os

from keystoneauth1 import loading as ka_loading
from oslo_config import cfg

CFG_GROUP = 'service_credentials'

CLI_OPTS = [
    cfg.StrOpt('region-name',
               deprecated_group='DEFAULT',
               deprecated_name='os-region-name',
               default=os.environ.get('OS_REGION_NAME'),
               help='Region name to use for OpenStack service endpoints.'),
    cfg.StrOpt('interface',
               default=os.environ.get(
                   'OS_INTERFACE', os.environ.get('OS_ENDPOINT_TYPE',
                                                  'public')),
               deprecated_name='os-endpoint-type',
               choices=('public', 'internal', 'admin', 'auth', 'publicURL',
                        'internalURL', 'adminURL'),
               help='Type of endpoint in Identity service catalog to use '
                    'for communication with OpenStack services.'),
]


def register_keystoneauth_opts(conf: cfg.ConfigOpts) -> None:
    """Register the auth-plugin, session and region options."""
    ka_loading.register_auth_conf_options(conf, CFG_GROUP)
    ka_loading.register_session_conf_options(
        conf, CFG_GROUP,
        deprecated_opts={'cacert': [
            cfg.DeprecatedOpt('os-cacert', group=CFG_GROUP),
            cfg.DeprecatedOpt('os-cacert', group='DEFAULT')]})
    conf.register_opts(CLI_OPTS, group=CFG_GROUP)
