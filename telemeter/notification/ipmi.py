"""``hardware.ipmi.*`` handlers: Ironic's IPMI sensor notifications.

Ironic's conductor sends ``hardware.ipmi.metrics`` notifications on the
``ironic`` exchange. ``payload.payload`` maps a sensor family
(``Temperature``, ``Voltage``, ``Current``, ``Fan``) to the sensors read,
each a dict of ``ipmitool sdr -v`` fields, for example::

    {"Sensor ID": "Fan 4A Tach (0x46)",
     "Sensor Reading": "6900 (+/- 0) RPM", ...}
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_log import log

from telemeter import sample
from telemeter.notification import plugin_base

LOG = log.getLogger(__name__)

OPTS = [
    cfg.StrOpt('ironic_exchange',
               default='ironic',
               help='Exchange name for Ironic notifications.'),
]

UNIT_MAP = {'Watts': 'W', 'Volts': 'V'}


class InvalidSensorData(ValueError):
    """A sensor entry cannot be turned into a sample."""


def parse_reading(reading: Any) -> tuple[float, str]:
    """``'6900 (+/- 0) RPM'`` → ``(6900.0, 'RPM')``; units are mapped
    through ``UNIT_MAP`` (``Watts`` → ``W``, ``Volts`` → ``V``)."""
    if not isinstance(reading, str):
        raise InvalidSensorData(f'Sensor Reading is not text: {reading!r}')
    parts = reading.split()
    if len(parts) < 2:
        raise InvalidSensorData(f'unparsable Sensor Reading {reading!r}')
    try:
        volume = float(parts[0])
    except ValueError as err:
        raise InvalidSensorData(
            f'unparsable Sensor Reading {reading!r}') from err
    unit = parts[-1]
    return volume, UNIT_MAP.get(unit, unit)


def transform_id(sensor_id: str) -> str:
    """Sensor ids become resource id suffixes: lower case, ``_`` for
    spaces."""
    return sensor_id.lower().replace(' ', '_')


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

    def process_notification(self, message: dict
                             ) -> Iterator[sample.Sample]:
        payload = message['payload']
        node = payload['node_uuid']
        sensors = (payload.get('payload') or {}).get(self.metric) or {}
        if not isinstance(sensors, dict):
            LOG.warning('invalid sensor data for %s: %s is not a mapping',
                        node, self.metric)
            return
        for key, data in sensors.items():
            built = self._sample(message, node, key, data)
            if built is not None:
                yield built

    def _sample(self, message: dict, node: str, key: str, data: Any
                ) -> sample.Sample | None:
        sensor_id = key
        if isinstance(data, dict) and isinstance(data.get('Sensor ID'), str):
            sensor_id = data['Sensor ID']
        resource_id = f'{node}-{transform_id(str(sensor_id))}'
        if self.skip_sensor(str(sensor_id)):
            return None
        try:
            if not isinstance(data, dict):
                raise InvalidSensorData(f'sensor entry is not a mapping: '
                                        f'{data!r}')
            reading = data.get('Sensor Reading')
            if reading is None:
                raise InvalidSensorData('missing Sensor Reading')
            if isinstance(reading, str) and reading.strip() == 'Disabled':
                return None
            volume, unit = parse_reading(reading)
        except InvalidSensorData as err:
            LOG.warning('invalid sensor data for %s: %s', resource_id, err)
            return None
        payload = message['payload']
        return sample.Sample.from_notification(
            name=f'hardware.ipmi.{self.metric.lower()}',
            type=sample.TYPE_GAUGE,
            volume=volume,
            unit=unit,
            user_id=None,
            project_id=None,
            resource_id=resource_id,
            message=message,
            metadata={'node': node,
                      'instance_uuid': payload.get('instance_uuid'),
                      'sensor_id': sensor_id,
                      'sensor_type': self.metric})


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
