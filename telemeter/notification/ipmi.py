"""``hardware.ipmi.*`` handlers: Ironic's IPMI sensor notifications.

Ironic's conductor sends ``hardware.ipmi.metrics`` notifications on the
``ironic`` exchange. ``payload.payload`` maps a sensor family
(``Temperature``, ``Voltage``, ``Current``, ``Fan``) to the sensors read,
each a dict of ``ipmitool sdr -v`` fields, for example::

    {"Sensor ID": "Fan 4A Tach (0x46)",
     "Sensor Reading": "6900 (+/- 0) RPM", ...}

Each sensor becomes one gauge, as Ceilometer 27 makes it:

- name ``hardware.ipmi.<family, lower case>``, resource
  ``<payload.node_uuid>-<Sensor ID, lower case, spaces as _>``; volume and
  unit from ``Sensor Reading`` (:func:`parse_reading`);
- user and project ids from ``payload.user_id`` / ``payload.project_id``
  (Ironic sends neither: None);
- timestamp from ``payload.timestamp`` (when Ironic read the sensors), not
  the envelope's;
- ``resource_metadata``: the sensor's own fields, plus ``node`` (the node
  uuid), ``event_type`` (``payload.event_type``, Ironic's
  ``hardware.ipmi.metrics.update``) and ``host`` (the publisher id).

Skipped: readings ``Disabled`` (silently); in the Current family, sensors
whose id contains ``Pwr Consumption`` (a power reading, not a current);
sensors without a ``Sensor ID`` or ``Sensor Reading``, or with a reading
that does not parse, and every sensor of a payload without ``node_uuid``
(each with the warning ``invalid sensor data for <resource>: <reason>``).

Where Ceilometer raises and so fails the whole notification (a sensor that
is not a mapping, a ``Sensor ID`` or ``Sensor Reading`` that is not text, a
payload timestamp missing or not ISO 8601), telemeter logs a warning and
goes on: the sensor is skipped, or the envelope's timestamp is taken.
``tests/unit/notification/data/ipmi_ceilometer27.json`` holds the outputs
of Ceilometer 27 these handlers are tested against.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_log import log

from telemeter import sample, utils
from telemeter.messaging import envelope
from telemeter.notification import plugin_base

LOG = log.getLogger(__name__)

OPTS = [
    cfg.StrOpt('ironic_exchange',
               default='ironic',
               help='Exchange name for Ironic notifications.'),
]

UNIT_MAP = {'Watts': 'W', 'Volts': 'V'}
#: The reading of a sensor that is switched off.
DISABLED = 'Disabled'
#: The resource named in a warning when a sensor's resource id cannot be
#: made.
MISSING_ID = 'missing id'


class InvalidSensorData(ValueError):
    """A sensor entry cannot be turned into a sample."""


def parse_reading(reading: Any) -> tuple[float, str]:
    """``'6900 (+/- 0) RPM'`` → ``(6900.0, 'RPM')``.

    The volume is the text before the first space, the unit the last
    space-separated word after it (so ``'41 C '`` has the unit ``''``, as
    in Ceilometer); units are mapped through ``UNIT_MAP`` (``Watts`` →
    ``W``, ``Volts`` → ``V``)."""
    if not isinstance(reading, str):
        raise InvalidSensorData(f'Sensor Reading is not text: {reading!r}')
    volume_text, space, rest = reading.partition(' ')
    if not space:
        raise InvalidSensorData(f'unparsable Sensor Reading {reading!r}')
    try:
        volume = float(volume_text)
    except ValueError as err:
        raise InvalidSensorData(
            f'unparsable Sensor Reading {reading!r}') from err
    unit = rest.rsplit(' ', 1)[-1]
    return volume, UNIT_MAP.get(unit, unit)


def transform_id(sensor_id: str) -> str:
    """Sensor ids become resource id suffixes: lower case, ``_`` for
    spaces."""
    return sensor_id.lower().replace(' ', '_')


def payload_timestamp(message: Mapping[str, Any]) -> str:
    """When the sensors were read: ``payload.timestamp`` if it is ISO 8601,
    else (with a warning) the notification's own timestamp."""
    stamp = message['payload'].get('timestamp')
    if isinstance(stamp, str):
        try:
            utils.parse_isotime(stamp)
        except ValueError:
            pass
        else:
            return stamp
    envelope = message['metadata']['timestamp']
    LOG.warning('IPMI notification %s: payload timestamp %r is not ISO 8601;'
                ' the notification timestamp %s is taken',
                message['metadata'].get('message_id'), stamp, envelope)
    return envelope


class SensorNotification(plugin_base.NotificationBase):
    """One gauge ``hardware.ipmi.<metric>`` per sensor of a family."""

    event_types = ['hardware.ipmi.*']
    #: Key of the sensor family in ``payload.payload``.
    metric = ''

    def get_targets(self, conf: cfg.ConfigOpts
                    ) -> list[oslo_messaging.Target]:
        """Every notification topic on ``[DEFAULT] ironic_exchange``."""
        return [oslo_messaging.Target(topic=topic,
                                      exchange=conf.ironic_exchange)
                for topic in conf.oslo_messaging_notifications.topics]

    def skip_sensor(self, sensor_id: str) -> bool:
        """Whether a sensor of this family is not a reading of it."""
        return False

    def process_notification(self, message: envelope.Notification
                             ) -> Iterator[sample.Sample]:
        payload = message['payload']
        if not isinstance(payload, dict):
            LOG.warning('invalid sensor data: payload is not a mapping')
            return
        sensors = (payload.get('payload') or {}).get(self.metric) or {}
        if not isinstance(sensors, dict):
            LOG.warning('invalid sensor data for %s: %s is not a mapping',
                        payload.get('node_uuid'), self.metric)
            return
        timestamp: str | None = None
        for data in sensors.values():
            resource_id = MISSING_ID
            try:
                resource_id = self._resource_id(payload, data)
                if self.skip_sensor(data['Sensor ID']):
                    continue
                if 'Sensor Reading' not in data:
                    raise InvalidSensorData(
                        "missing 'Sensor Reading' in payload")
                if data['Sensor Reading'] == DISABLED:
                    continue
                volume, unit = parse_reading(data['Sensor Reading'])
            except InvalidSensorData as err:
                LOG.warning('invalid sensor data for %s: %s', resource_id,
                            err)
                continue
            if timestamp is None:
                timestamp = payload_timestamp(message)
            yield self._sample(message, resource_id, data, volume, unit,
                               timestamp)

    @staticmethod
    def _resource_id(payload: dict, data: Any) -> str:
        """``<node uuid>-<sensor id>`` of one sensor entry; raises
        :class:`InvalidSensorData` if either is missing."""
        if not isinstance(data, dict):
            raise InvalidSensorData(f'sensor entry is not a mapping: '
                                    f'{data!r}')
        for key, where in (('node_uuid', payload), ('Sensor ID', data)):
            if key not in where:
                raise InvalidSensorData(f'missing key in payload: {key!r}')
        sensor_id = data['Sensor ID']
        if not isinstance(sensor_id, str):
            raise InvalidSensorData(f'Sensor ID is not text: {sensor_id!r}')
        return f'{payload["node_uuid"]}-{transform_id(sensor_id)}'

    def _sample(self, message: Mapping[str, Any], resource_id: str,
                data: dict,
                volume: float, unit: str, timestamp: str) -> sample.Sample:
        payload = message['payload']
        metadata = dict(data)
        metadata['node'] = payload['node_uuid']
        metadata['event_type'] = payload.get('event_type',
                                             message['event_type'])
        metadata['host'] = message['publisher_id']
        return sample.Sample.from_notification(
            name=f'hardware.ipmi.{self.metric.lower()}',
            type=sample.TYPE_GAUGE,
            volume=volume,
            unit=unit,
            user_id=payload.get('user_id'),
            project_id=payload.get('project_id'),
            resource_id=resource_id,
            message=message,
            timestamp=timestamp,
            metadata=metadata)


class TemperatureSensorNotification(SensorNotification):
    metric = 'Temperature'


class CurrentSensorNotification(SensorNotification):
    metric = 'Current'

    def skip_sensor(self, sensor_id: str) -> bool:
        # Power consumption is reported in the Current family by some
        # BMCs; it is a power reading (W), not a current.
        return 'Pwr Consumption' in sensor_id


class FanSensorNotification(SensorNotification):
    metric = 'Fan'


class VoltageSensorNotification(SensorNotification):
    metric = 'Voltage'
