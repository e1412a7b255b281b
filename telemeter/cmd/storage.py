"""``telemeter-dbsync`` / ``telemeter-upgrade`` and ``telemeter-expirer``.

``telemeter-upgrade`` also creates Gnocchi's archive policies and resource
types (:mod:`telemeter.gnocchi.upgrade`) when Gnocchi is configured
(``[gnocchi] url`` set or ``gnocchi`` among ``meter_dispatchers``), unless
``--skip-gnocchi-resource-types``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from oslo_config import cfg
from oslo_log import log

from telemeter import service, storage

LOG = log.getLogger(__name__)

DBSYNC_CLI_OPTS = [
    cfg.BoolOpt('skip-metering-database',
                default=False,
                help='Skip metering database upgrade.'),
    cfg.BoolOpt('skip-event-database',
                default=False,
                help='Skip event database upgrade.'),
    cfg.BoolOpt('skip-gnocchi-resource-types',
                default=False,
                help='Skip the creation or update of the Gnocchi '
                     'archive policies and resource types '
                     '(telemeter-upgrade; telemeter-dbsync never does '
                     'it).'),
]


def _prepare(cli_opts: Sequence[cfg.Opt] | None = None,
             argv: list[str] | None = None,
             description: str | None = None) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    if cli_opts:
        conf.register_cli_opts(cli_opts)
    return service.prepare_service(argv=argv, conf=conf,
                                   description=description)


def run_dbsync(conf: cfg.ConfigOpts) -> None:
    """Create or upgrade the metering and event schemas per ``conf``.

    With no database configured at all, there is nothing it could do: that
    is an error (exit status 1), most often a missing ``--config-file``.
    """
    if not (conf.database.connection or conf.database.metering_connection
            or conf.database.event_connection):
        sys.exit('telemeter-dbsync: no database configured: set [database] '
                 'connection (or metering_connection / event_connection) '
                 'in the file given with --config-file')
    for purpose, namespace, skip in (
            ('metering', storage.METERING_NAMESPACE,
             conf.skip_metering_database),
            ('event', storage.EVENT_NAMESPACE, conf.skip_event_database)):
        if skip:
            LOG.info('Skipping %s database upgrade', purpose)
            continue
        url = (getattr(conf.database, f'{purpose}_connection')
               or conf.database.connection)
        if not url:
            LOG.info('Skipping %s database upgrade, legacy database backend '
                     'not configured.', purpose)
            continue
        LOG.debug('Upgrading %s database', purpose)
        connection = storage.get_connection(conf, url, namespace)
        try:
            connection.upgrade()
        finally:
            connection.dispose()


def dbsync(argv: list[str] | None = None) -> None:
    """Console script: create / upgrade the storage schemas."""
    run_dbsync(_prepare(DBSYNC_CLI_OPTS, argv, description=(
        'Creates or upgrades the metering and event database schemas '
        '([database] connection, metering_connection, event_connection) '
        'to the latest migration. Safe to run again.')))


def gnocchi_configured(conf: cfg.ConfigOpts) -> bool:
    """Whether the configuration sends samples to Gnocchi."""
    from telemeter.gnocchi import client as gnocchi_client

    gnocchi_client.register_opts(conf)
    return bool(conf.gnocchi.url) or 'gnocchi' in conf.meter_dispatchers


def run_upgrade(conf: cfg.ConfigOpts) -> None:
    """:func:`run_dbsync` when a database is configured, then Gnocchi's
    resource types when Gnocchi is configured and not skipped."""
    gnocchi = gnocchi_configured(conf) and not conf.skip_gnocchi_resource_types
    if gnocchi and not (conf.database.connection
                        or conf.database.metering_connection
                        or conf.database.event_connection):
        LOG.info('No database configured: only Gnocchi is upgraded')
    else:
        run_dbsync(conf)
    if conf.skip_gnocchi_resource_types:
        LOG.info('Skipping the Gnocchi resource types')
    elif not gnocchi:
        LOG.info('Gnocchi is not configured ([gnocchi] url, '
                 'meter_dispatchers): no resource types to create')
    else:
        from telemeter.gnocchi import upgrade as gnocchi_upgrade

        gnocchi_upgrade.run(conf)


def upgrade(argv: list[str] | None = None) -> None:
    """Console script: :func:`dbsync`, plus Gnocchi's resource types."""
    run_upgrade(_prepare(DBSYNC_CLI_OPTS, argv, description=(
        'Creates or upgrades the metering and event database schemas, like '
        'telemeter-dbsync, then creates the Gnocchi archive policies and '
        'resource types of gnocchi_resources.yaml (adding missing '
        'attributes to existing types) when Gnocchi is configured. Safe '
        'to run again.')))


def run_expirer(conf: cfg.ConfigOpts) -> None:
    """Purge samples and events older than their configured TTLs."""
    metering_ttl = conf.database.metering_time_to_live
    if metering_ttl > 0:
        LOG.debug('Clearing expired metering data')
        connection = storage.get_connection_from_config(conf, 'metering')
        try:
            connection.clear_expired_metering_data(metering_ttl)
        finally:
            connection.dispose()
    else:
        LOG.info('Nothing to clean, database metering time to live is '
                 'disabled')
    event_ttl = conf.database.event_time_to_live
    if event_ttl > 0:
        LOG.debug('Clearing expired event data')
        connection = storage.get_connection_from_config(conf, 'event')
        try:
            connection.clear_expired_event_data(event_ttl)
        finally:
            connection.dispose()
    else:
        LOG.info('Nothing to clean, database event time to live is '
                 'disabled')


def expirer(argv: list[str] | None = None) -> None:
    """Console script: one-shot TTL purge (exit status 0)."""
    run_expirer(_prepare(argv=argv, description=(
        'Deletes the samples and events older than [database] '
        'metering_time_to_live / event_time_to_live, once.')))
