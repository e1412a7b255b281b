"""The ``[service_credentials]`` group: how agents authenticate to APIs.

keystoneauth1 (and requests with it) is imported on first use: the
collector and the notification agent without a Keystone-authenticated
publisher never load it, which keeps about 6 MB out of each of their
processes. Its options are registered then too; oslo.config reads an
option registered after the command line was parsed from the files it
already parsed.
"""

from __future__ import annotations

import os
from typing import Any

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


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the region and interface options (no keystoneauth1)."""
    conf.register_opts(CLI_OPTS, group=CFG_GROUP)


def register_keystoneauth_opts(conf: cfg.ConfigOpts) -> None:
    """Register the auth-plugin, session and region options, once."""
    register_opts(conf)
    if 'auth_type' in conf[CFG_GROUP]:
        return
    from keystoneauth1 import loading as ka_loading

    ka_loading.register_auth_conf_options(conf, CFG_GROUP)
    ka_loading.register_session_conf_options(
        conf, CFG_GROUP,
        deprecated_opts={'cacert': [
            cfg.DeprecatedOpt('os-cacert', group=CFG_GROUP),
            cfg.DeprecatedOpt('os-cacert', group='DEFAULT')]})


def _interface(conf: cfg.ConfigOpts) -> str:
    """``[service_credentials] interface`` without a legacy ``URL`` suffix."""
    interface = conf.service_credentials.interface
    return interface[:-3] if interface.endswith('URL') else interface


def get_session(conf: cfg.ConfigOpts) -> Any:
    """A keystoneauth Session authenticated with ``[service_credentials]``.

    Raises ``keystoneauth1.exceptions`` errors (e.g. ``MissingRequiredOptions``
    when no ``auth_type`` is configured).
    """
    from keystoneauth1 import exceptions as ka_exceptions
    from keystoneauth1 import loading as ka_loading

    register_keystoneauth_opts(conf)
    auth = ka_loading.load_auth_from_conf_options(conf, CFG_GROUP)
    if auth is None:
        raise ka_exceptions.AuthPluginException(
            f'[{CFG_GROUP}] auth_type is not set: configure the service '
            f'credentials (auth_type, auth_url, username, password, ...) in '
            f'telemeter.conf')
    session = ka_loading.load_session_from_conf_options(
        conf, CFG_GROUP, auth=auth)
    if session.timeout is None:
        session.timeout = conf.http_timeout
    return session


class KeystoneClient:
    """The few Identity API calls the discoverers need, over one Session.

    The service catalog comes with the token; endpoints are filtered by
    ``[service_credentials] interface`` and ``region_name``.
    """

    def __init__(self, conf: cfg.ConfigOpts, session: Any) -> None:
        self.conf = conf
        self.session = session
        self.interface = _interface(conf)
        self.region_name = conf.service_credentials.region_name

    @property
    def catalog(self) -> Any:
        """The keystoneauth ServiceCatalog of the current token."""
        return self.session.auth.get_access(self.session).service_catalog

    def get_endpoints(self, service_type: str | None = None) -> list[str]:
        """Catalog URLs of ``service_type`` (every service when None)."""
        if service_type:
            urls = self.catalog.get_urls(service_type=service_type,
                                         interface=self.interface,
                                         region_name=self.region_name)
            return list(urls or ())
        endpoints = self.catalog.get_endpoints(interface=self.interface,
                                               region_name=self.region_name)
        return [ep['url'] for eps in endpoints.values() for ep in eps
                if ep.get('url')]

    def _identity_url(self) -> str:
        urls = self.get_endpoints('identity')
        if not urls:
            from keystoneauth1 import exceptions as ka_exceptions

            raise ka_exceptions.EndpointNotFound(
                'No identity endpoint in the service catalog')
        url = urls[0].rstrip('/')
        return url if url.endswith('/v3') else url + '/v3'

    def _get_list(self, path: str, key: str,
                  params: dict | None = None) -> list[dict]:
        response = self.session.get(self._identity_url() + path,
                                    params=params or {})
        return list(response.json().get(key, []))

    def list_domains(self) -> list[dict]:
        """Every domain (``GET /v3/domains``)."""
        return self._get_list('/domains', 'domains')

    def list_projects(self, domain_id: str | None = None) -> list[dict]:
        """Projects, of one domain when ``domain_id`` is given."""
        params = {'domain_id': domain_id} if domain_id else None
        return self._get_list('/projects', 'projects', params)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET ``url`` with the token and return the decoded JSON body."""
        return self.session.get(url, **kwargs).json()


def get_client(conf: cfg.ConfigOpts) -> KeystoneClient:
    """The client factory used by the polling agent (one per cycle)."""
    return KeystoneClient(conf, get_session(conf))


SERVICE_TYPES_OPTS = [
    cfg.StrOpt('glance', default='image',
               help='Glance service type.'),
    cfg.StrOpt('neutron', default='network',
               help='Neutron service type.'),
    cfg.StrOpt('neutron_lbaas_version', default='v2', choices=('v1', 'v2'),
               help='Neutron load balancer version.'),
    cfg.StrOpt('nova', default='compute',
               help='Nova service type.'),
    cfg.StrOpt('radosgw',
               help='Radosgw service type.'),
    cfg.StrOpt('swift', default='object-store',
               help='Swift service type.'),
    cfg.StrOpt('cinder', default='volumev3',
               deprecated_name='cinderv2',
               help='Cinder service type.'),
]
