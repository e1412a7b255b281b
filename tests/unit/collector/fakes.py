"""Dispatchers and managers for the collector's unit tests."""

from __future__ import annotations

import threading

from stevedore import extension, named

from telemeter import sample
from telemeter.publisher import utils

SECRET = 'secret'


class RecordingDispatcher:
    """Records every call; the first ``failures`` calls raise, and so does
    every call whose data contains a dict named in ``poison``."""

    def __init__(self, failures: int = 0, poison: tuple[str, ...] = ()):
        self.calls: list[tuple[str, object]] = []
        self.failures = failures
        self.poison = poison
        self.lock = threading.Lock()

    def _record(self, method, data):
        with self.lock:
            items = data if isinstance(data, list) else [data]
            if self.failures:
                self.failures -= 1
                raise ConnectionError('database down')
            if any(i.get('counter_name') in self.poison for i in items):
                raise ValueError('poisoned')
            self.calls.append((method, data))

    def record_metering_data(self, data):
        self._record('record_metering_data', data)

    def record_events(self, events):
        self._record('record_events', events)

    def names(self) -> list[str]:
        """Every counter_name stored so far, in order."""
        with self.lock:
            out = []
            for _, data in self.calls:
                items = data if isinstance(data, list) else [data]
                out.extend(i['counter_name'] for i in items)
            return out


def manager(*dispatchers):
    """A stevedore manager over ``dispatchers`` as the collector gets it
    (exceptions of ``map_method`` propagate)."""
    return named.NamedExtensionManager.make_test_instance(
        [extension.Extension(f'd{i}', None, None, d)
         for i, d in enumerate(dispatchers)],
        propagate_map_exceptions=True)


def signed(name: str, secret: str = SECRET) -> dict:
    s = sample.Sample(name, 'gauge', 'u', 1, 'user', 'project', 'r',
                      timestamp='2031-01-01T00:00:00')
    return utils.meter_message_from_counter(s, secret)


def notification(payload) -> dict:
    return {'ctxt': {}, 'publisher_id': 'p', 'event_type': 'metering',
            'payload': payload, 'metadata': {}}
