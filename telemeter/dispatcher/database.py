"""The ``database`` dispatcher: metering dicts and events into storage."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from oslo_log import log

from telemeter import dispatcher, storage
from telemeter.dispatcher import event_conversion
from telemeter.storage import validation

LOG = log.getLogger(__name__)

_DATETIME = datetime.datetime


def storable(data: list) -> tuple[list[dict], list[tuple[Any, str]]]:
    """The metering dicts of a bus batch in the form storage takes (their
    ``timestamp`` strings become naive UTC datetimes, in place), and the
    ``(dict, reason)`` of those that cannot be stored for a reason of the
    bus.

    Only what is particular to the bus is checked here: the message id
    that makes redelivery harmless must be there, and the timestamp must
    be a time. Every other rule (names, lengths, volume...) is the storage
    driver's, applied once there (:mod:`telemeter.storage.validation`).
    """
    valid: list[dict] = []
    dropped: list[tuple[Any, str]] = []
    append = valid.append
    for meter in data:
        reason = None
        try:
            message_id = meter.get('message_id')
            if not message_id or not isinstance(message_id, str):
                reason = 'message_id is missing'
            else:
                when = meter.get('timestamp')
                if when is not None and (when.__class__ is not _DATETIME
                                         or when.tzinfo is not None):
                    meter['timestamp'] = validation.timestamp(when)
        except validation.InvalidSample as err:
            reason = str(err)
        except AttributeError:
            reason = f'not a metering dict but {type(meter).__name__}'
        if reason is None:
            append(meter)
        else:
            dropped.append((meter, reason))
    return valid, dropped


class _Storage:
    """The storage connection of a database dispatcher, made on first use
    (so that a collector starts while the database is still coming up)."""

    conf: Any
    #: Which database: ``metering`` or ``event``.
    purpose = 'metering'
    _conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = storage.get_connection_from_config(self.conf,
                                                            self.purpose)
        return self._conn

    @property
    def opened_connection(self) -> Any:
        """The storage connection if one was made (never connects)."""
        return self._conn


class MeterDatabaseDispatcher(_Storage, dispatcher.MeterDispatcherBase):
    """Writes metering dicts through the metering storage driver.

    The connection is made on first use, so a collector starts even while
    the database is still coming up; a write error propagates and the bus
    batch is requeued.
    """

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        self._checker = validation.SampleChecker()

    @property
    def dropped(self) -> int:
        """Metering dicts dropped as impossible to store, here and by the
        storage driver."""
        checkers = {id(c): c for c in (
            self._checker, getattr(self._conn, 'checker', None))
            if c is not None}
        return sum(c.dropped for c in checkers.values())

    def record_metering_data(self, data: list[dict] | dict) -> None:
        """Store ``data``; a dict that cannot be stored is logged, counted
        and dropped (requeueing it would never help), a storage error is
        raised so that the bus batch is requeued."""
        if not data:
            return
        if isinstance(data, dict):
            data = [data]
        if LOG.isEnabledFor(logging.DEBUG):
            for meter in data:
                LOG.debug('metering data %s', meter)
        valid, dropped = storable(data)
        conn = self.conn if valid else self._conn
        for meter, reason in dropped:
            # Counted with the driver's own drops when it keeps a count.
            checker = getattr(conn, 'checker', None) or self._checker
            checker.drop(meter, reason)
        if not valid:
            return
        try:
            conn.record_metering_data_batch(valid)
        except Exception as err:
            LOG.error('Failed to record %(len)s: %(err)s.',
                      {'len': len(valid), 'err': err})
            raise


class EventDatabaseDispatcher(_Storage, dispatcher.EventDispatcherBase):
    """Writes serialized events through the event storage driver.

    The whole batch goes to storage at once (one transaction on the SQL
    drivers); a dict that is not an event is logged and dropped, a
    storage error propagates and the bus batch is requeued.
    """

    purpose = 'event'

    def __init__(self, conf: Any) -> None:
        super().__init__(conf)
        #: Dicts that were not events (logged and dropped).
        self.unconvertible = 0

    @property
    def dropped(self) -> int:
        """Events dropped as impossible to store, here and by the
        storage driver."""
        checker = getattr(self._conn, 'checker', None)
        return self.unconvertible + getattr(checker, 'dropped', 0)

    def record_events(self, events: list[dict] | dict) -> None:
        """Store ``events`` (serialized event dicts)."""
        if isinstance(events, dict):
            events = [events]
        event_list = []
        for ev in events:
            try:
                event_list.append(event_conversion.event_from_dict(ev))
            except Exception:
                self.unconvertible += 1
                LOG.exception('Error processing event and it will be '
                              'dropped: %s', ev)
        self.conn.record_events(event_list)
