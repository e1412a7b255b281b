"""Metering and event storage: options, filters and driver loading.

Drivers live behind the stevedore namespaces ``telemeter.metering.storage``
and ``telemeter.event.storage``; the scheme of the connection URL (up to the
first ``+``) names the driver, which is constructed as ``cls(conf, url)``.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any
from urllib import parse as urlparse

from oslo_config import cfg
from oslo_db import options as oslo_db_options
from oslo_log import log
from stevedore import driver
from stevedore import exception as stevedore_exc

from telemeter import utils

LOG = log.getLogger(__name__)

OPTS = [
    cfg.IntOpt('metering_time_to_live',
               default=-1,
               help='Number of seconds that samples are kept in the '
                    'database for (<= 0 means forever).',
               deprecated_opts=[cfg.DeprecatedOpt('time_to_live',
                                                  'database')]),
    cfg.IntOpt('event_time_to_live',
               default=-1,
               help='Number of seconds that events are kept in the '
                    'database for (<= 0 means forever).'),
    cfg.StrOpt('metering_connection',
               secret=True,
               help='The connection string used to connect to the metering '
                    'database (if unset, connection is used).'),
    cfg.StrOpt('event_connection',
               secret=True,
               help='The connection string used to connect to the event '
                    'database (if unset, connection is used).'),
    cfg.BoolOpt('sql_expire_samples_only',
                default=False,
                help='Indicates if expirer expires only samples. If set '
                     'true, expired samples will be deleted, but residual '
                     'resource and meter definition data will remain.'),
]

#: The options of oslo.db's ``[database]`` group that telemeter's drivers
#: read. The others (``slave_connection``, ``use_db_reconnect``,
#: ``db_max_retries``, ...) would do nothing here, so they are neither
#: registered nor listed in the sample configuration.
OSLO_DB_OPTIONS = ('connection', 'connection_parameters', 'connection_debug',
                   'connection_recycle_time', 'max_pool_size',
                   'max_overflow', 'pool_timeout', 'max_retries',
                   'retry_interval', 'mysql_sql_mode', 'sqlite_synchronous')
DATABASE_OPTS = [opt for opt in oslo_db_options.database_opts
                 if opt.dest in OSLO_DB_OPTIONS]

METERING_NAMESPACE = 'telemeter.metering.storage'
EVENT_NAMESPACE = 'telemeter.event.storage'


class StorageUnknownWriteError(Exception):
    """An error occurred while recording data and its cause is unknown."""


class StorageBadVersion(Exception):
    """The database server is too old for the driver."""


class StorageBadAggregate(Exception):
    """The requested statistics aggregate is invalid (HTTP 400)."""

    code = 400


Aggregate = collections.namedtuple('Aggregate', ['func', 'param'],
                                   defaults=[None])
Aggregate.__doc__ = ('One statistics aggregate: function name and optional '
                     'parameter (e.g. cardinality/resource_id).')


def get_connection(conf: cfg.ConfigOpts, url: str,
                   namespace: str = METERING_NAMESPACE) -> Any:
    """Load the driver named by the scheme of ``url`` and connect it.

    ``mysql+pymysql://...`` selects the ``mysql`` driver.
    """
    if not url:
        raise ValueError('No database connection URL configured')
    return driver_class(url, namespace)(conf, url)


#: The extra of setup.cfg that installs the DB-API module of a scheme.
DRIVER_EXTRAS = {'postgresql': 'postgresql', 'mysql': 'mysql'}


class StorageConfigError(ValueError):
    """A storage URL names no driver, or its driver cannot be imported."""


def driver_class(url: str, namespace: str = METERING_NAMESPACE) -> Any:
    """The driver class the scheme of ``url`` selects, without connecting.

    Raises :class:`StorageConfigError` naming the known schemes, or the
    package to install when the driver's database module is missing.
    """
    engine_name = urlparse.urlparse(url).scheme.split('+')[0]
    LOG.debug('looking for %(name)r driver in %(namespace)r',
              {'name': engine_name, 'namespace': namespace})
    try:
        return driver.DriverManager(namespace, engine_name).driver
    except stevedore_exc.NoMatches as err:
        known = ', '.join(f'{name}://' for name in
                          utils.entry_point_names(namespace))
        raise StorageConfigError(
            f'no storage driver for {engine_name or "(no scheme)"}:// '
            f'({namespace}); the known schemes are {known}') from err


def check_url(url: str, namespace: str = METERING_NAMESPACE) -> None:
    """Check that ``url`` selects a driver whose database module is
    installed (a SQLAlchemy URL's DB-API module is imported, nothing
    connects). Raises :class:`StorageConfigError`."""
    driver_class(url, namespace)
    if not url.startswith(('postgresql', 'mysql', 'sqlite')):
        return
    from telemeter.storage.sqlalchemy import engine

    try:
        parsed = engine.normalise_url(url)
        parsed.get_dialect().import_dbapi()
    except ImportError as err:
        default = engine.normalise_url(parsed.get_backend_name() + '://')
        extra = DRIVER_EXTRAS.get(parsed.get_backend_name())
        hint = (f"; install it (pip install 'telemeter[{extra}]' gives "
                f'{default.drivername}://)' if extra else '')
        raise StorageConfigError(
            f'{parsed.drivername}:// needs the Python module {err.name}, '
            f'which is not installed{hint}') from err
    except Exception as err:  # an unknown dialect, a malformed URL
        raise StorageConfigError(f'invalid database URL: {err}') from err


def get_connection_from_config(conf: cfg.ConfigOpts,
                               purpose: str = 'metering') -> Any:
    """Connect to the ``purpose`` (metering or event) database.

    The URL is ``[database] <purpose>_connection``, else ``[database]
    connection``. Connecting is retried every ``retry_interval`` seconds, at
    most ``max_retries`` attempts (``-1`` retries forever); the last error
    is re-raised.
    """
    url = (getattr(conf.database, f'{purpose}_connection')
           or conf.database.connection)
    if not url:
        raise ValueError(f'No database connection URL configured for '
                         f'{purpose} (set [database] {purpose}_connection '
                         f'or connection)')
    namespace = f'telemeter.{purpose}.storage'
    max_retries = conf.database.max_retries
    interval = conf.database.retry_interval
    attempt = 0
    while True:
        attempt += 1
        try:
            return get_connection(conf, url, namespace)
        except Exception as err:
            if 0 <= max_retries <= attempt:
                raise
            LOG.error('Unable to connect to the database server: '
                      '%(err)s. Retrying in %(interval)s seconds '
                      '(attempt %(attempt)d).',
                      {'err': err, 'interval': interval,
                       'attempt': attempt})
            time.sleep(interval)


@dataclasses.dataclass(frozen=True)
class ResourceFilter:
    """What ``get_resources`` selects: resources with samples of that user,
    project, source and resource id, whose metadata holds ``metaquery``
    (``metadata.<dotted key>`` → value) and whose sample timestamps fall
    in the span; at most ``limit`` resources (0: none, None: all)."""

    user: str | None = None
    project: str | None = None
    source: str | None = None
    start_timestamp: Any = None
    start_timestamp_op: str | None = None
    end_timestamp: Any = None
    end_timestamp_op: str | None = None
    metaquery: dict | None = None
    resource: str | None = None
    limit: int | None = None


@dataclasses.dataclass(frozen=True)
class MeterFilter:
    """What ``get_meters`` selects: one meter per (meter, resource id),
    judged by its latest sample, or one per meter with ``unique``."""

    user: str | None = None
    project: str | None = None
    resource: str | None = None
    source: str | None = None
    metaquery: dict | None = None
    limit: int | None = None
    unique: bool = False


@dataclasses.dataclass(frozen=True)
class SampleFilter:
    """What ``get_samples`` and ``get_meter_statistics`` select: samples
    of that user, project, resource, meter, source and message id, in the
    time span, whose resource metadata holds ``metaquery``
    (``metadata.<dotted key>`` → value).

    Timestamps are normalised to naive UTC datetimes when the filter is
    made (:func:`telemeter.utils.sanitize_timestamp`); ``metaquery``
    None is ``{}``.
    """

    user: str | None = None
    project: str | None = None
    start_timestamp: Any = None
    start_timestamp_op: str | None = None
    end_timestamp: Any = None
    end_timestamp_op: str | None = None
    resource: str | None = None
    meter: str | None = None
    source: str | None = None
    message_id: str | None = None
    metaquery: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self, 'start_timestamp', 'end_timestamp')
        object.__setattr__(self, 'metaquery', self.metaquery or {})


@dataclasses.dataclass(frozen=True)
class EventFilter:
    """What ``get_events`` selects.

    ``traits_filter`` is a list of ``{'key': k, '<string|integer|float|
    datetime>': v, 'op': 'eq|lt|le|gt|ge|ne'}`` dicts (None is ``[]``);
    ``admin_proj`` keeps only events without a ``project_id`` trait or
    with that project. Timestamps are normalised as in
    :class:`SampleFilter`.
    """

    start_timestamp: Any = None
    end_timestamp: Any = None
    event_type: str | None = None
    message_id: str | None = None
    traits_filter: list[dict[str, Any]] = dataclasses.field(
        default_factory=list)
    admin_proj: str | None = None

    def __post_init__(self) -> None:
        _normalise(self, 'start_timestamp', 'end_timestamp')
        object.__setattr__(self, 'traits_filter', self.traits_filter or [])


def _normalise(query: Any, *names: str) -> None:
    """Timestamps of a frozen filter as naive UTC datetimes."""
    for name in names:
        object.__setattr__(query, name,
                           utils.sanitize_timestamp(getattr(query, name)))
