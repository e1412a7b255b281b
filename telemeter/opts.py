"""Every option telemeter registers, for oslo-config-generator and start-up.

Each module owns its ``OPTS`` list; this module gathers them so that
``prepare_service`` and ``oslo-config-generator`` see the same set. The
process-wide ``[DEFAULT]`` options that belong to no one subsystem
(``host``, ``http_timeout``, ``max_parallel_requests``) are defined here,
so that :mod:`telemeter.service` imports this module and not the reverse.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterable

from oslo_config import cfg

OptList = list[tuple[str, Iterable[cfg.Opt]]]

OPTS = [
    cfg.HostAddressOpt('host',
                       default=socket.gethostname(),
                       sample_default='<your_hostname>',
                       help='Name of this node, which must be valid in an '
                            'AMQP key. Can be an opaque identifier. It '
                            'appears in publisher ids and resource ids of '
                            'host samples.'),
    cfg.IntOpt('http_timeout',
               default=600,
               help='Timeout seconds for HTTP requests. Set it to None to '
                    'disable timeout.'),
    cfg.IntOpt('max_parallel_requests',
               default=64,
               min=1,
               help='Maximum number of parallel requests for services to '
                    'handle at the same time.'),
]


def list_opts() -> OptList:
    """Return ``[(group, [opts])]`` with the DEFAULT group first."""
    # Imported here so that importing this module stays cheap and cannot
    # form an import cycle with the modules whose options it lists.
    import telemeter.api
    import telemeter.collector
    import telemeter.coordination
    import telemeter.dispatcher
    import telemeter.dispatcher.file
    import telemeter.dispatcher.gnocchi
    import telemeter.dispatcher.http
    import telemeter.gnocchi.client
    import telemeter.health
    import telemeter.keystone_client
    import telemeter.messaging.delivery
    import telemeter.notification
    import telemeter.notification.event_converter
    import telemeter.notification.exchanges
    import telemeter.notification.ipc
    import telemeter.notification.ipmi
    import telemeter.notification.meters
    import telemeter.pipeline
    import telemeter.polling.compute.discovery
    import telemeter.polling.compute.inspector
    import telemeter.polling.compute.virt_libvirt
    import telemeter.polling.discovery.tripleo
    import telemeter.polling.hardware.pollsters
    import telemeter.polling.hardware.snmp
    import telemeter.polling.manager
    import telemeter.publisher.messaging
    import telemeter.publisher.utils
    import telemeter.sample
    import telemeter.storage

    return [
        ('DEFAULT', itertools.chain(
            OPTS,
            telemeter.sample.OPTS,
            telemeter.pipeline.OPTS,
            telemeter.polling.manager.OPTS,
            telemeter.polling.compute.inspector.OPTS,
            telemeter.polling.compute.virt_libvirt.OPTS,
            telemeter.dispatcher.OPTS,
            telemeter.notification.ipc.OPTS,
            telemeter.notification.ipmi.OPTS,
            telemeter.notification.exchanges.OPTS,
        )),
        ('api', telemeter.api.OPTS),
        ('collector', telemeter.collector.OPTS),
        ('compute', telemeter.polling.compute.discovery.OPTS),
        ('coordination', telemeter.coordination.OPTS),
        ('database', itertools.chain(telemeter.storage.DATABASE_OPTS,
                                     telemeter.storage.OPTS)),
        ('delivery', telemeter.messaging.delivery.OPTS),
        ('dispatcher_file', telemeter.dispatcher.file.OPTS),
        ('hardware', itertools.chain(
            telemeter.polling.discovery.tripleo.OPTS,
            telemeter.polling.hardware.pollsters.OPTS,
            telemeter.polling.hardware.snmp.OPTS,
        )),
        ('dispatcher_http', telemeter.dispatcher.http.OPTS),
        ('dispatcher_gnocchi', telemeter.dispatcher.gnocchi.OPTS),
        ('gnocchi', telemeter.gnocchi.client.OPTS),
        ('health', telemeter.health.OPTS),
        ('notification', telemeter.notification.OPTS),
        ('event', telemeter.notification.event_converter.OPTS),
        ('meter', telemeter.notification.meters.OPTS),
        ('polling', telemeter.polling.manager.POLLING_OPTS),
        ('publisher', telemeter.publisher.utils.OPTS),
        ('publisher_notifier', telemeter.publisher.messaging.NOTIFIER_OPTS),
        ('service_types', telemeter.keystone_client.SERVICE_TYPES_OPTS),
    ]


def list_keystoneauth_opts() -> OptList:
    """The ``[service_credentials]`` options, for the config generator."""
    from keystoneauth1 import loading as ka_loading

    from telemeter import keystone_client

    options: list[cfg.Opt] = list(keystone_client.CLI_OPTS)
    options.extend(ka_loading.get_session_conf_options())
    options.extend(ka_loading.get_auth_common_conf_options())
    for plugin in ('password', 'v3password'):
        for opt in ka_loading.get_auth_plugin_conf_options(plugin):
            if all(opt.dest != o.dest for o in options):
                options.append(opt)
    return [(keystone_client.CFG_GROUP, options)]
