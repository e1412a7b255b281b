"""The ``database`` dispatcher: metering dicts and events into storage."""

from __future__ import annotations

from typing import Any

from oslo_log import log
from oslo_utils import timeutils

from telemeter import dispatcher, storage
from telemeter.storage import models

LOG = log.getLogger(__name__)


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
        if not data:
            return
        if isinstance(data, dict):
            data = [data]
        for meter in data:
            LOG.debug('metering data %(counter_name)s for %(resource_id)s '
                      '@ %(timestamp)s: %(counter_volume)s', meter)
            if meter.get('timestamp'):
                meter['timestamp'] = timeutils.normalize_time(
                    timeutils.parse_isotime(meter['timestamp']))
        try:
            self.conn.record_metering_data_batch(data)
        except Exception as err:
            LOG.error('Failed to record %(len)s: %(err)s.',
                      {'len': len(data), 'err': err})
            raise


class EventDatabaseDispatcher(dispatcher.EventDispatcherBase):
    """Writes serialized events through the event storage driver."""

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
        if isinstance(events, dict):
            events = [events]
        event_list = []
        for ev in events:
            try:
                event_list.append(models.Event(
                    message_id=ev['message_id'],
                    event_type=ev['event_type'],
                    generated=timeutils.normalize_time(
                        timeutils.parse_isotime(ev['generated'])),
                    traits=[models.Trait(
                        name, dtype, models.Trait.convert_value(dtype, value))
                        for name, dtype, value in ev['traits']],
                    raw=ev.get('raw', {})))
            except Exception:
                LOG.exception('Error processing event and it will be '
                              'dropped: %s', ev)
        self.conn.record_events(event_list)
