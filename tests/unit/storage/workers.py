"""Child-process bodies for the storage concurrency tests.

Kept apart from the test suite so that spawned children import only the
storage package, not every telemeter service module.
"""

from __future__ import annotations

import datetime
import time

from oslo_config import cfg
from oslo_db import options as db_options

from telemeter import storage
from telemeter.storage import impl_sqlalchemy


def _conf() -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf.register_opts(storage.OPTS, 'database')
    db_options.set_defaults(conf)
    conf([], project='telemeter')
    return conf


def write_batches(url: str, batches: list[list[dict]], start: int) -> None:
    """Write every batch, starting at index ``start``."""
    impl_sqlalchemy.Connection.WRITE_RETRY_INTERVAL = 0.05
    connection = storage.get_connection(_conf(), url)
    for batch in batches[start:] + batches[:start]:
        connection.record_metering_data_batch(batch)
    connection.dispose()


def upgrade(url: str) -> None:
    """Upgrade the metering and event schemas."""
    conf = _conf()
    for namespace in (storage.METERING_NAMESPACE, storage.EVENT_NAMESPACE):
        connection = storage.get_connection(conf, url, namespace)
        connection.upgrade()
        connection.dispose()


def write_expiring_batches(url: str, writer: int, rounds: int) -> None:
    """Write batches whose ``old-*`` samples the expirer removes at once
    (so their meter and resource rows become residual while this writer
    still caches them) next to ``keep`` samples that must all stay."""
    impl_sqlalchemy.Connection.WRITE_RETRY_INTERVAL = 0.05
    old = datetime.datetime(2000, 1, 1)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    connection = storage.get_connection(_conf(), url)
    for index in range(rounds):
        batch = []
        # Many samples: a longer transaction, a wider window for the
        # expirer to look at these rows while they are being used.
        for slot in range(400):
            batch.append(_sample(f'old-{slot % 4}', f'old-res-{slot % 8}',
                                 old, f'w{writer}-{index}-old{slot}'))
        batch.append(_sample('keep', f'keep-res-{writer}', now,
                             f'w{writer}-{index}-keep'))
        connection.record_metering_data_batch(batch)
    connection.dispose()


def expire_repeatedly(url: str, seconds: float) -> None:
    """Run the SQL expiry (TTL one day) over and over for ``seconds``."""
    connection = storage.get_connection(_conf(), url)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        connection.clear_expired_metering_data(86400)
    connection.dispose()


def _sample(name: str, resource_id: str, when: datetime.datetime,
            message_id: str) -> dict:
    return {'counter_name': name, 'counter_type': 'gauge',
            'counter_unit': 'u', 'counter_volume': 1.0,
            'user_id': 'u', 'project_id': 'p', 'resource_id': resource_id,
            'timestamp': when, 'resource_metadata': {'k': resource_id},
            'source': 'openstack', 'message_id': message_id,
            'message_signature': 'sig', 'monotonic_time': None}


def write_event_batches(url: str, batches: list[list], start: int) -> None:
    """Write every batch of Event models, starting at index ``start``."""
    impl_sqlalchemy.EventConnection.WRITE_RETRY_INTERVAL = 0.05
    connection = storage.get_connection(_conf(), url,
                                        storage.EVENT_NAMESPACE)
    for batch in batches[start:] + batches[:start]:
        connection.record_events(batch)
    connection.dispose()


def write_expiring_events(url: str, writer: int, rounds: int) -> None:
    """Write batches of ``old-*`` events the expirer removes at once, of
    event types it then finds unused, next to ``keep-*`` events that must
    all stay with every trait."""
    from tests.unit.storage.event_suite import batch_events

    impl_sqlalchemy.EventConnection.WRITE_RETRY_INTERVAL = 0.05
    old = datetime.datetime(2000, 1, 1)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    connection = storage.get_connection(_conf(), url,
                                        storage.EVENT_NAMESPACE)
    for index in range(rounds):
        batch = batch_events(100, f'w{writer}-{index}-old')
        for event in batch:
            event.generated = old
            event.event_type = f'old.{event.event_type}'
        keep = batch_events(1, f'w{writer}-{index}-keep')
        keep[0].generated = now
        connection.record_events(batch + keep)
    connection.dispose()


def expire_events_repeatedly(url: str, seconds: float) -> None:
    """Run the SQL event expiry (TTL one day) for ``seconds``."""
    connection = storage.get_connection(_conf(), url,
                                        storage.EVENT_NAMESPACE)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        connection.clear_expired_event_data(86400)
    connection.dispose()
