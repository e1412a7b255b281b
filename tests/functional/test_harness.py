"""The functional-test harness itself: each server fixture gives a usable,
isolated server, and a missing server fails loudly instead of skipping."""

from __future__ import annotations

import threading
import uuid

import kombu
import kombu.exceptions
import oslo_messaging
import pytest
import sqlalchemy
from oslo_config import cfg

from tests.functional.fixtures import redis, services


class _Collector:
    def __init__(self):
        self.received = []
        self.event = threading.Event()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.received.append((publisher_id, event_type, payload))
        self.event.set()


def test_rabbit_notification_reaches_a_listener(rabbit_url, rabbit_admin):
    conf = cfg.ConfigOpts()
    conf([], project='telemeter-harness', default_config_files=[])
    transport = oslo_messaging.get_notification_transport(conf, url=rabbit_url)
    # No heartbeat thread: the test is over long before it would matter.
    conf.set_override('heartbeat_timeout_threshold', 0,
                      group='oslo_messaging_rabbit')
    topic = f'harness-{uuid.uuid4().hex[:8]}'
    collector = _Collector()
    listener = oslo_messaging.get_notification_listener(
        transport, [oslo_messaging.Target(topic=topic)], [collector],
        executor='threading')
    listener.start()
    try:
        notifier = oslo_messaging.Notifier(
            transport, publisher_id='harness.host', driver='messagingv2',
            topics=[topic])
        notifier.info({}, 'harness.ping', {'n': 1})
        assert collector.event.wait(30), 'notification not received in 30 s'
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()
    assert collector.received == [('harness.host', 'harness.ping', {'n': 1})]

    queues = rabbit_admin.list_queues()
    assert queues[f'{topic}.info'] == 0
    rabbit_admin.delete_queue(f'{topic}.info')
    assert f'{topic}.info' not in rabbit_admin.list_queues()


@pytest.mark.slow
def test_rabbit_restart_keeps_durable_messages(rabbit_url, rabbit_admin):
    amqp_url = rabbit_url.replace('rabbit://', 'amqp://', 1)
    name = f'harness-durable-{uuid.uuid4().hex[:8]}'
    exchange = kombu.Exchange(name, type='direct', durable=True)
    queue = kombu.Queue(name, exchange, routing_key=name, durable=True)
    with kombu.Connection(amqp_url) as conn:
        conn.Producer().publish({'kept': True}, exchange=exchange,
                                routing_key=name, declare=[queue],
                                delivery_mode=2)
    assert rabbit_admin.list_queues()[name] == 1

    rabbit_admin.stop()
    assert not rabbit_admin.is_running()
    with pytest.raises(kombu.exceptions.OperationalError), \
            kombu.Connection(amqp_url, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1)
    rabbit_admin.start()

    assert rabbit_admin.list_queues()[name] == 1
    with kombu.Connection(amqp_url) as conn:
        message = conn.SimpleQueue(queue).get(timeout=10)
        assert message.payload == {'kept': True}
        message.ack()
    rabbit_admin.delete_queue(name)


def _check_fresh_database(url: str, server_url: str):
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        assert sqlalchemy.make_url(url).database != \
            sqlalchemy.make_url(server_url).database
        assert sqlalchemy.inspect(engine).get_table_names() == []
        meta = sqlalchemy.MetaData()
        table = sqlalchemy.Table(
            'harness', meta,
            sqlalchemy.Column('id', sqlalchemy.Integer, primary_key=True),
            sqlalchemy.Column('name', sqlalchemy.String(32)))
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{'name': 'a'}, {'name': 'b'}])
        with engine.connect() as conn:
            names = conn.execute(sqlalchemy.select(table.c.name)
                                 .order_by(table.c.id)).scalars().all()
        assert names == ['a', 'b']
    finally:
        engine.dispose()


def test_postgresql_module_database(postgresql_url, postgresql_server_url):
    _check_fresh_database(postgresql_url, postgresql_server_url)


def test_postgresql_function_database_is_separate(
        postgresql_url, postgresql_function_url, postgresql_server_url):
    # postgresql_url already holds a table from the test above.
    assert postgresql_function_url != postgresql_url
    _check_fresh_database(postgresql_function_url, postgresql_server_url)


def test_mysql_module_database(mysql_url, mysql_server_url):
    _check_fresh_database(mysql_url, mysql_server_url)


def test_mysql_function_database_is_separate(
        mysql_url, mysql_function_url, mysql_server_url):
    assert mysql_function_url != mysql_url
    _check_fresh_database(mysql_function_url, mysql_server_url)


def test_redis_answers(redis_url):
    assert redis.ping(redis_url) == 'PONG'
    key = f'harness:{uuid.uuid4().hex}'
    assert redis.command(redis_url, 'SET', key, 'v') == 'OK'
    assert redis.command(redis_url, 'GET', key) == 'v'
    assert redis.command(redis_url, 'DEL', key) == 1


def test_missing_server_is_a_failure_with_the_fix(monkeypatch):
    # No server is started: services.sh finds no PostgreSQL binaries.
    monkeypatch.delenv('TELEMETER_TEST_POSTGRESQL_URL', raising=False)
    monkeypatch.setenv('TELEMETER_PG_BIN', '/nonexistent')
    svc = services.SessionService('postgresql')
    with pytest.raises(services.ServiceError) as excinfo:
        svc.setup()
    message = svc.failure_message(excinfo.value)
    assert 'postgresql-15 is not installed' in message
    assert 'tools/install.sh' in message
    assert svc.managed is None and svc._claim is None
