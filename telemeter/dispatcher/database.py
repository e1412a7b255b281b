"""The ``database`` dispatcher: metering dicts and events into storage."""

from __future__ import annotations

import datetime
from typing import Any

from oslo_log import log
from oslo_utils import timeutils

from telemeter import dispatcher, storage
from telemeter.dispatcher import event_conversion

LOG = log.getLogger(__name__)


def _naive_utc(timestamp: Any) -> datetime.datetime:
    """An ISO 8601 string or a datetime as a naive UTC datetime (a dict
    retried after a failed write already holds the datetime)."""
    if not isinstance(timestamp, datetime.datetime):
        timestamp = timeutils.parse_isotime(timestamp)
    return timeutils.normalize_time(timestamp)


def _prepare(meter: dict) -> None:
    """Check the keys storage needs and convert the timestamp in place;
    raise KeyError, ValueError or TypeError for a dict storage would
    refuse forever."""
    for key in ('counter_name', 'resource_id', 'message_id'):
        if not isinstance(meter[key], str) or not meter[key]:
            raise ValueError(f'{key} must be a non-empty string')
    volume = meter.get('counter_volume')
    if isinstance(volume, str):
        meter['counter_volume'] = float(volume)
    elif volume is not None and not isinstance(volume, (int, float)):
        raise TypeError(f'counter_volume {volume!r} is not a number')
    if meter.get('timestamp'):
        meter['timestamp'] = _naive_utc(meter['timestamp'])


class MeterDatabaseDispatcher(dispatcher.MeterDispatcherBase):
    """Writes metering dicts through the metering storage driver.

    The connection is made on first use, so a collector starts even while
    the database is still coming up; a write error propagates and the bus
    batch is requeued.
    """

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        self._conn = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = storage.get_connection_from_config(self.conf)
        return self._conn

    def record_metering_data(self, data: list[dict] | dict) -> None:
        """Store ``data``; a malformed dict is logged and dropped
        (requeueing it would never help), a storage error is raised."""
        if not data:
            return
        if isinstance(data, dict):
            data = [data]
        valid = []
        for meter in data:
            LOG.debug('metering data %s', meter)
            try:
                _prepare(meter)
            except (KeyError, ValueError, TypeError) as err:
                LOG.error('Error processing sample and it will be dropped '
                          '(%(err)s): %(sample)s',
                          {'err': err, 'sample': meter})
                continue
            valid.append(meter)
        if not valid:
            return
        try:
            self.conn.record_metering_data_batch(valid)
        except Exception as err:
            LOG.error('Failed to record %(len)s: %(err)s.',
                      {'len': len(valid), 'err': err})
            raise


class EventDatabaseDispatcher(dispatcher.EventDispatcherBase):
    """Writes serialized events through the event storage driver.

    The whole batch goes to storage at once (one transaction on the SQL
    drivers); a dict that is not an event is logged and dropped, a
    storage error propagates and the bus batch is requeued.
    """

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        self._conn = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = storage.get_connection_from_config(self.conf,
                                                            'event')
        return self._conn

    def record_events(self, events: list[dict] | dict) -> None:
        """Store ``events`` (serialized event dicts)."""
        if isinstance(events, dict):
            events = [events]
        event_list = []
        for ev in events:
            try:
                event_list.append(event_conversion.event_from_dict(ev))
            except Exception:
                LOG.exception('Error processing event and it will be '
                              'dropped: %s', ev)
        self.conn.record_events(event_list)
