"""``telemeter-status upgrade check``: is this deployment ready to run?

Built on oslo.upgradecheck, so the exit status is its code of the worst
result: 0 success, 1 warning, 2 failure (255 if a check itself crashed).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from oslo_config import cfg
from oslo_log import log
from oslo_upgradecheck import upgradecheck

from telemeter import preflight, service, storage
from telemeter.publisher import utils as publisher_utils

Code = upgradecheck.Code
Result = upgradecheck.Result

DESCRIPTION = ('Checks a telemeter deployment before an upgrade or a start: '
               'the configuration (as telemeter-validate does), the '
               'databases (reachable, schema at the latest migration), the '
               'message broker (reachable) and the signing secret.')
#: ``[publisher] telemetry_secret``'s default, which everyone knows.
DEFAULT_SECRET = next(opt.default for opt in publisher_utils.OPTS
                      if opt.name == 'telemetry_secret')
BROKER_TIMEOUT = 5.0


def _worst(results: list[tuple[Code, str]]) -> Result:
    code = max((code for code, _ in results), default=Code.SUCCESS)
    return Result(code, '; '.join(text for _, text in results) or None)


class Checks(upgradecheck.UpgradeCommands):
    """The checks, each a method returning an oslo.upgradecheck Result."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__()
        self.conf = conf

    def _configuration(self) -> Result:
        problems = preflight.check(self.conf)
        if problems:
            return Result(Code.FAILURE, '; '.join(map(str, problems)))
        return Result(Code.SUCCESS, 'pipelines, definitions, publishers, '
                                    'dispatchers and URLs are valid')

    def _databases(self) -> Result:
        results = []
        for purpose in ('metering', 'event'):
            url = (getattr(self.conf.database, f'{purpose}_connection')
                   or self.conf.database.connection)
            if not url:
                results.append((Code.FAILURE, f'{purpose}: no [database] '
                                              'connection configured'))
                continue
            results.append(self._database(purpose, url))
        return _worst(results)

    def _database(self, purpose: str, url: str) -> tuple[Code, str]:
        path = _sqlite_path(url)
        if path is not None and not os.path.exists(path):
            # Connecting would create an empty file.
            return Code.FAILURE, (f'{purpose}: {path} does not exist: run '
                                  'telemeter-dbsync')
        try:
            connection = storage.get_connection(
                self.conf, url, f'telemeter.{purpose}.storage')
            engine = getattr(connection, 'engine', None)
            if engine is None:
                return Code.SUCCESS, f'{purpose}: reachable (no versioned ' \
                                     'schema)'
            from telemeter.storage.sqlalchemy import migration

            schema = migration.SCHEMAS[purpose]
            current = migration.current_revision(engine, schema)
            engine.dispose()
        except Exception as err:
            first = (str(err).strip().splitlines() or [''])[0]
            return Code.FAILURE, (f'{purpose}: cannot connect '
                                  f'({type(err).__name__}: {first})')
        head = migration.head_revision(schema)
        if current is None:
            return Code.FAILURE, (f'{purpose}: no telemeter schema: run '
                                  'telemeter-dbsync')
        if current != head:
            return Code.FAILURE, (f'{purpose}: schema at {current}, the '
                                  f'latest is {head}: run telemeter-dbsync')
        return Code.SUCCESS, f'{purpose}: schema at the latest ({head})'

    def _broker(self) -> Result:
        import oslo_messaging

        try:
            url = oslo_messaging.TransportURL.parse(self.conf,
                                                    self.conf.transport_url)
        except Exception as err:
            return Result(Code.FAILURE, f'transport_url: {err}')
        if url.transport not in ('rabbit', 'kombu', None):
            return Result(Code.WARNING, f'{url.transport}:// broker not '
                                        'checked (only RabbitMQ is)')
        hosts = url.hosts or [None]
        results = [_reach_rabbit(host, url.virtual_host) for host in hosts]
        reached = sum(code == Code.SUCCESS for code, _ in results)
        if 0 < reached < len(results):
            # A cluster with a node down still carries the data.
            results = [(min(code, Code.WARNING), text)
                       for code, text in results]
        return _worst(results)

    def _secret(self) -> Result:
        secret = self.conf.publisher.telemetry_secret
        if secret == DEFAULT_SECRET:
            return Result(Code.WARNING, '[publisher] telemetry_secret is '
                          "the default, known to anyone: set the same "
                          'random value on every node')
        if not secret:
            return Result(Code.WARNING, '[publisher] telemetry_secret is '
                          'empty: samples are not signed or verified')
        return Result(Code.SUCCESS, 'set')

    _upgrade_checks: tuple[tuple[str, Callable], ...] = (
        ('Configuration', _configuration),
        ('Databases', _databases),
        ('Message broker', _broker),
        ('Signing secret', _secret),
    )


def _sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///path`` URL (None for others and for an
    in-memory database)."""
    if not url.startswith('sqlite'):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return database if database and database != ':memory:' else None


def _reach_rabbit(host: object, virtual_host: str | None
                  ) -> tuple[Code, str]:
    import kombu

    hostname = getattr(host, 'hostname', None) or 'localhost'
    port = getattr(host, 'port', None) or 5672
    connection = kombu.Connection(
        hostname=hostname, port=port,
        userid=getattr(host, 'username', None) or 'guest',
        password=getattr(host, 'password', None) or 'guest',
        virtual_host=virtual_host or '/',
        connect_timeout=BROKER_TIMEOUT)
    where = f'{hostname}:{port}'
    try:
        connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
    except Exception as err:
        return Code.FAILURE, f'{where}: unreachable ({err})'
    finally:
        connection.release()
    return Code.SUCCESS, f'{where}: reachable'


def main(argv: list[str] | None = None) -> int:
    conf = cfg.ConfigOpts()
    checks = Checks(conf)
    upgradecheck.register_cli_options(conf, checks)
    log.register_options(conf)
    # Standard output is for the report (a table, or JSON with --json).
    conf.set_default('use_stderr', True)
    service.prepare_service(argv if argv is not None else sys.argv,
                            conf=conf, description=DESCRIPTION)
    upgradecheck.CONF = conf  # where it looks for --json
    return upgradecheck.run(conf)
