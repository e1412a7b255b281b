"""``POST /v2/meters/<name>``: new samples, published through the
pipelines of ``pipeline.yaml`` (as ``telemeter-send-sample`` does), or
with ``direct=True`` (admin only) written straight to storage."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import webob
from oslo_utils import strutils

from telemeter import pipeline, sample, utils, wire
from telemeter.api import context, errors, query, render
from telemeter.publisher import utils as publisher_utils
from telemeter.storage import validation

TEXT_FIELDS = ('counter_type', 'counter_unit', 'resource_id', 'user_id',
               'project_id', 'source')
ALLOWED = {*TEXT_FIELDS, 'counter_name', 'counter_volume', 'timestamp',
           'resource_metadata', 'message_id', 'recorded_at'}


class PipelinePublisher:
    """The pipelines of one process, built on first use."""

    def __init__(self, conf: Any) -> None:
        self.conf = conf
        self._lock = threading.Lock()
        self._manager: Any = None

    def publish(self, samples: list[sample.Sample]) -> None:
        """Send ``samples`` through every pipeline."""
        with self._lock:
            if self._manager is None:
                self._manager = pipeline.setup_pipeline(self.conf)
        with self._manager.publisher() as publish_samples:
            publish_samples(samples)

    def close(self) -> None:
        """Close every publisher (sockets, files) of the pipelines."""
        with self._lock:
            manager, self._manager = self._manager, None
        if manager is None:
            return
        closed: set[int] = set()
        for line in manager.pipelines:
            for publisher in line.sink.publishers:
                if id(publisher) not in closed:
                    closed.add(id(publisher))
                    publisher.close()


def _text(item: dict, name: str, index: int, required: bool) -> Any:
    value = item.get(name)
    if value is None or value == '':
        if required:
            raise errors.BadRequest(f'[{index}].{name}', 'is required')
        return None
    if not isinstance(value, str):
        raise errors.BadRequest(f'[{index}].{name}', 'must be a string')
    return value


def _build(ctx: context.Context, meter_name: str, index: int,
           item: Any, now: datetime.datetime) -> sample.Sample:
    if not isinstance(item, dict):
        raise errors.BadRequest(f'[{index}]', 'each sample must be an '
                                'object')
    unknown = sorted(set(item) - ALLOWED)
    if unknown:
        raise errors.BadRequest(f'[{index}].{unknown[0]}', 'unknown '
                                'attribute')
    if item.get('counter_name') != meter_name:
        raise errors.BadRequest(f'[{index}].counter_name',
                                f'should be {meter_name}')
    if item.get('message_id'):
        raise errors.BadRequest(f'[{index}].message_id',
                                'The message_id must not be set')
    kind = _text(item, 'counter_type', index, True)
    if kind not in sample.TYPES:
        raise errors.BadRequest(f'[{index}].counter_type',
                                'The counter type must be: '
                                + ', '.join(sample.TYPES))
    unit = _text(item, 'counter_unit', index, True)
    resource_id = _text(item, 'resource_id', index, True)
    volume = item.get('counter_volume')
    # JSON's true and false are not numbers here, as in Ceilometer's API.
    if isinstance(volume, bool) or wire.volume_problem(volume, finite=True):
        raise errors.BadRequest(f'[{index}].counter_volume',
                                'must be a finite number')
    volume = float(volume)
    metadata = item.get('resource_metadata') or {}
    if not isinstance(metadata, dict):
        raise errors.BadRequest(f'[{index}].resource_metadata',
                                'must be an object')
    stamp = item.get('timestamp')
    if stamp:
        if not isinstance(stamp, str):
            raise errors.BadRequest(f'[{index}].timestamp',
                                    'must be an ISO 8601 string')
        moment = query.parse_datetime(stamp, f'[{index}].timestamp')
    else:
        moment = now
    user_id = _text(item, 'user_id', index, False) or ctx.creds.user_id
    project_id = (_text(item, 'project_id', index, False)
                  or ctx.creds.project_id)
    limited = ctx.limited_project
    if limited is not None and project_id != limited:
        raise errors.BadRequest(f'[{index}].project_id',
                                'can not post samples to other projects')
    source = _text(item, 'source', index, False) or ctx.conf.sample_source
    return sample.Sample(
        name=meter_name, type=kind, unit=unit, volume=volume,
        user_id=user_id, project_id=project_id, resource_id=resource_id,
        timestamp=moment.isoformat(),
        resource_metadata=utils.restore_nesting(metadata, separator='.'),
        source=f'{project_id}:{source}')


def create_samples(ctx: context.Context, meter_name: str) -> webob.Response:
    """Publish (or, with ``direct``, store) the posted samples; 201 with
    them as stored, ``message_id`` set."""
    ctx.enforce('create_samples')
    direct_text = ctx.param('direct') or ''
    try:
        direct = strutils.bool_from_string(direct_text, strict=True) \
            if direct_text else False
    except ValueError:
        raise errors.BadRequest('direct', f'{direct_text!r} is not a '
                                'boolean') from None
    if direct:
        ctx.enforce('create_samples_direct')
    body = ctx.json_body()
    if not isinstance(body, list) or not body:
        raise errors.BadRequest('body', 'Samples should be included in '
                                'request body (a non-empty JSON list)')
    maximum = ctx.conf.api.max_api_return_limit
    if len(body) > maximum:
        raise errors.BadRequest('body', f'more than {maximum} samples')
    now = datetime.datetime.utcnow().replace(microsecond=0)
    built = [_build(ctx, meter_name, index, item, now)
             for index, item in enumerate(body)]
    secret = ctx.conf.publisher.telemetry_secret
    # The signed messages with their timestamps as datetimes, as storage
    # keeps them.
    messages: list[dict[str, Any]] = [
        dict(publisher_utils.meter_message_from_counter(item, secret))
        for item in built]
    for index, message in enumerate(messages):
        message['timestamp'] = utils.sanitize_timestamp(message['timestamp'])
        problem = validation.problem(message)
        if problem:
            raise errors.BadRequest(f'[{index}]', problem)
    if direct:
        for message in messages:
            ctx.metering.record_metering_data(dict(message))
    else:
        ctx.publisher.publish(built)
    result = []
    for message in messages:
        shown = {key: message[key] for key in (
            'source', 'counter_name', 'counter_type', 'counter_unit',
            'counter_volume', 'user_id', 'project_id', 'resource_id',
            'message_id')}
        shown['timestamp'] = render.isotime(message['timestamp'])
        shown['recorded_at'] = None
        shown['resource_metadata'] = render.flatten_metadata(
            message['resource_metadata'])
        result.append(shown)
    response = webob.Response(status=201, content_type='application/json',
                              charset='UTF-8')
    response.json_body = result
    return response


ROUTES = [('/v2/meters/{meter_name}', 'POST', create_samples)]
