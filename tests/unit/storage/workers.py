"""Child-process bodies for the storage concurrency tests.

Kept apart from the test suite so that spawned children import only the
storage package, not every telemeter service module.
"""

from __future__ import annotations

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
