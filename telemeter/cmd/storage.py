"""``telemeter-dbsync`` / ``telemeter-upgrade`` and ``telemeter-expirer``."""

from __future__ import annotations

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
                help='Skip gnocchi resource-types upgrade (accepted for '
                     'compatibility, ignored).'),
]


def _prepare(cli_opts: list[cfg.Opt] | None = None,
             argv: list[str] | None = None) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    if cli_opts:
        conf.register_cli_opts(cli_opts)
    return service.prepare_service(argv=argv, conf=conf)


def run_dbsync(conf: cfg.ConfigOpts) -> None:
    """Create or upgrade the metering and event schemas per ``conf``."""
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
            _dispose(connection)


def _dispose(connection: object) -> None:
    """Close the connection's pooled database connections, if it has
    any."""
    dispose = getattr(connection, 'dispose', None)
    if dispose is not None:
        dispose()


def dbsync(argv: list[str] | None = None) -> None:
    """Console script: create / upgrade the storage schemas."""
    run_dbsync(_prepare(DBSYNC_CLI_OPTS, argv))


def upgrade(argv: list[str] | None = None) -> None:
    """Console script: alias of :func:`dbsync`."""
    dbsync(argv)


def run_expirer(conf: cfg.ConfigOpts) -> None:
    """Purge samples and events older than their configured TTLs."""
    metering_ttl = conf.database.metering_time_to_live
    if metering_ttl > 0:
        LOG.debug('Clearing expired metering data')
        connection = storage.get_connection_from_config(conf, 'metering')
        try:
            connection.clear_expired_metering_data(metering_ttl)
        finally:
            _dispose(connection)
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
            _dispose(connection)
    else:
        LOG.info('Nothing to clean, database event time to live is '
                 'disabled')


def expirer(argv: list[str] | None = None) -> None:
    """Console script: one-shot TTL purge (exit status 0)."""
    run_expirer(_prepare(argv=argv))
