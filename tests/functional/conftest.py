"""Fixtures for functional tests: real servers on the loopback interface.

Every server fixture first looks at ``TELEMETER_TEST_<NAME>_URL``
(``tools/run-tests.sh`` sets them after ``tools/services.sh up``).  Without
it, the session starts its own server with ``tools/services.sh up`` on a free
port (the default one if free), once per session, and stops it at the end.
A server that cannot be started fails the requesting tests with
``pytest.fail`` naming the Debian package and the fix - never a skip.

Session scope:  rabbit_url, redis_url, postgresql_server_url,
                mysql_server_url (the server's admin database),
                snmpd_target (snmp:// URL of a read-only snmpd),
                mongodb_url (nx-27017, a MongoDB wire-protocol stand-in),
                gnocchi_service (a real Gnocchi 4.7: API + metricd),
                redis_sentinel (a Redis primary + replica under three
                Sentinels, tools/redis-sentinel.sh)
Module scope:   postgresql_url, mysql_url - a fresh empty database per test
                module, dropped afterwards
Function scope: postgresql_function_url, mysql_function_url - the same per
                test; rabbit_admin - broker helpers (list_queues, stop/start
                keeping data); the broker is running again after each test
"""

from __future__ import annotations

import urllib.parse

import pytest
import sqlalchemy

from tests.functional.fixtures import databases, rabbit, sentinel, services


def _start(request: pytest.FixtureRequest,
           name: str) -> services.SessionService:
    svc = services.SessionService(name)
    try:
        svc.setup()
    except services.ServiceError as exc:
        message = svc.failure_message(exc)
    else:
        request.addfinalizer(svc.teardown)
        return svc
    # Outside the except block, so the report is not a chained traceback.
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope='session')
def rabbit_service(request) -> services.SessionService:
    return _start(request, 'rabbitmq')


@pytest.fixture(scope='session')
def rabbit_url(rabbit_service) -> str:
    """``rabbit://guest:guest@127.0.0.1:PORT/`` of the session's broker."""
    return rabbit_service.url


@pytest.fixture(scope='session')
def redis_url(request) -> str:
    """``redis://127.0.0.1:PORT`` (no persistence; FLUSHALL if you need
    an empty server)."""
    return _start(request, 'redis').url


@pytest.fixture(scope='session')
def redis_sentinel(request) -> sentinel.RedisSentinel:
    """A Redis primary and replica watched by three Sentinels
    (``tools/redis-sentinel.sh``); ``.url`` is tooz's sentinel URL,
    ``.kill_primary()`` makes the sentinels fail over, ``.start(n)`` brings
    a killed server back as a replica."""
    session = sentinel.SessionSentinel()
    try:
        setup = session.setup()
    except (sentinel.SentinelError, services.ServiceError, OSError) as exc:
        message = (f'could not start Redis with Sentinel: {exc}\n'
                   f'It needs the Debian package redis-server (which brings '
                   f'redis-cli): `tools/install.sh` (as root), or `apt-get '
                   f'install -y --no-install-recommends redis-server`; see '
                   f'tools/redis-sentinel.sh, or point {sentinel.URL_ENV} '
                   f'at a setup it runs.')
    else:
        request.addfinalizer(session.teardown)
        return setup
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope='session')
def snmpd_target(request) -> str:
    """``snmp://<community>@127.0.0.1:PORT`` of a net-snmp agent on UDP
    loopback with a read-only v2c community (``tools/services.sh up
    snmpd``). It is a hardware pollster resource URL as it is."""
    return _start(request, 'snmpd').url


@pytest.fixture(scope='session')
def mongodb_url(request) -> str:
    """``mongodb://127.0.0.1:PORT/telemeter`` of nx-27017, a MongoDB
    wire-protocol stand-in (no mongod is installable here)."""
    return _start(request, 'mongodb').url


@pytest.fixture(scope='session')
def gnocchi_service(request) -> services.SessionService:
    """Gnocchi 4.7 (API + metricd, basic auth, file storage, PostgreSQL
    indexer); ``.url`` is ``http://127.0.0.1:PORT``. One per session."""
    return _start(request, 'gnocchi')


@pytest.fixture(scope='session')
def postgresql_server_url(request) -> str:
    """URL of the server's ``postgres`` database; prefer ``postgresql_url``."""
    return _start(request, 'postgresql').url


@pytest.fixture(scope='session')
def mysql_server_url(request) -> str:
    """URL of the server's ``test`` database; prefer ``mysql_url``."""
    return _start(request, 'mariadb').url


def _fresh_database(server_url: str, hint: str):
    try:
        name, url = databases.create_database(server_url, hint)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        pytest.fail(f'cannot create a test database on {server_url}: {exc}',
                    pytrace=False)
    return name, url


@pytest.fixture(scope='module')
def postgresql_url(request, postgresql_server_url):
    """A new empty PostgreSQL database for this test module."""
    name, url = _fresh_database(postgresql_server_url, request.module.__name__)
    yield url
    databases.drop_database(postgresql_server_url, name)


@pytest.fixture
def postgresql_function_url(request, postgresql_server_url):
    """A new empty PostgreSQL database for this test."""
    name, url = _fresh_database(postgresql_server_url, request.node.name)
    yield url
    databases.drop_database(postgresql_server_url, name)


@pytest.fixture(scope='module')
def mysql_url(request, mysql_server_url):
    """A new empty MariaDB database for this test module."""
    name, url = _fresh_database(mysql_server_url, request.module.__name__)
    yield url
    databases.drop_database(mysql_server_url, name)


@pytest.fixture
def mysql_function_url(request, mysql_server_url):
    """A new empty MariaDB database for this test."""
    name, url = _fresh_database(mysql_server_url, request.node.name)
    yield url
    databases.drop_database(mysql_server_url, name)


@pytest.fixture(scope='session')
def _rabbit_admin(rabbit_service) -> rabbit.RabbitAdmin:
    managed = rabbit_service.managed
    if managed is None:
        # The URL came from the environment: usable only if it is a broker
        # that tools/services.sh runs (as tools/run-tests.sh does).
        port = urllib.parse.urlsplit(rabbit_service.url).port or 5672
        managed = rabbit_service.service_for_port(port)
        if not managed.is_running():
            pytest.fail(
                f'rabbit_admin needs a broker run by tools/services.sh, but '
                f'TELEMETER_TEST_RABBIT_URL={rabbit_service.url} is not one '
                f'(no instance on port {port} under '
                f'{services.state_root()}): unset TELEMETER_TEST_RABBIT_URL '
                f'to let the session start its own broker.', pytrace=False)
    return rabbit.RabbitAdmin(managed, rabbit_service.url)


@pytest.fixture
def rabbit_admin(_rabbit_admin):
    """Broker helpers: ``list_queues()``, ``stop()``/``start()`` (data
    kept), ``restart()``, ``purge_queue()``, ``rabbitmqctl(...)``.

    A test that stops the broker and fails before starting it again does
    not leave the following tests without one: it is started here.
    """
    yield _rabbit_admin
    if not _rabbit_admin.is_running():
        _rabbit_admin.start()
