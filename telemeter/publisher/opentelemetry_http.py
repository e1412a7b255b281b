"""The ``opentelemetryhttp://`` publisher: OTLP/JSON metrics over HTTP.

``opentelemetryhttp://collector:4318/v1/metrics`` POSTs one
``resource_metrics`` document per sample. Both time fields carry the sample
timestamp in integer nanoseconds since the Unix epoch (a naive timestamp is
UTC) - a deliberate fix over Ceilometer, which sent seconds there.
``ssl=1`` makes the requests HTTPS. Events are not supported.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from oslo_log import log
from oslo_utils import timeutils

import telemeter
from telemeter import sample as sample_mod
from telemeter.publisher import http

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

LOG = log.getLogger(__name__)

SCOPE = {'name': 'telemeter', 'version': 'v1'}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def unix_nano(timestamp: Any) -> int:
    """Integer nanoseconds since the epoch of an ISO 8601 string or a
    datetime; naive values are UTC. Raises ValueError if unparseable."""
    if isinstance(timestamp, datetime.datetime):
        moment = timestamp
    elif isinstance(timestamp, str):
        moment = timeutils.parse_isotime(timestamp)
    else:
        raise ValueError(f'timestamp {timestamp!r} is not ISO 8601')
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    # Integer arithmetic: a float of seconds would lose the microseconds.
    return (moment - _EPOCH) // datetime.timedelta(microseconds=1) * 1000


def _attribute(key: str, value: Any) -> dict[str, Any]:
    return {'key': key, 'value': {'string_value': value}}


def metrics_document(s: Any) -> dict[str, Any]:
    """The OTLP/JSON body for one sample (ValueError if it has no usable
    timestamp or volume)."""
    nanos = unix_nano(s.timestamp)
    point = {
        'attributes': [_attribute('resource_id', s.resource_id),
                       _attribute('user_id', s.user_id),
                       _attribute('project_id', s.project_id)],
        'start_time_unix_nano': nanos,
        'time_unix_nano': nanos,
        'as_double': float(s.volume),
        'flags': 0,
    }
    kind = 'counter' if s.type == sample_mod.TYPE_CUMULATIVE else 'gauge'
    metric = {'name': s.name.replace('.', '_'),
              'description': f'{s.name} unit:{s.unit}',
              'unit': s.unit,
              kind: {'data_points': [point]}}
    return {'resource_metrics': [{'scope_metrics': [
        {'scope': dict(SCOPE), 'metrics': [metric]}]}]}


class OpentelemetryHttpPublisher(http.HttpPublisher):
    """OTLP/HTTP JSON publisher (all http:// URL parameters apply)."""

    OWN_PARAMS = (*http.HttpPublisher.OWN_PARAMS, 'ssl')

    def request_scheme(self, parsed_url: Any, params: dict[str, str]) -> str:
        return 'https' if http.bool_param(params, 'ssl', False) else 'http'

    def publish_samples(self, samples: list[Sample]) -> None:
        if not samples:
            LOG.warning('Data samples is empty!')
            return
        for s in samples:
            try:
                document = metrics_document(s)
            except (ValueError, TypeError) as err:
                LOG.warning('Get data point error, %s', err)
                continue
            self._do_post(document)

    def publish_events(self, events: list[Event]) -> None:
        raise telemeter.NotImplementedError('The opentelemetryhttp publisher '
                                            'does not support events')
