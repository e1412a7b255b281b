"""Samples and events for the publisher unit tests."""

from __future__ import annotations

import datetime

from telemeter import publisher, sample
from telemeter.storage import models


def samples(*names, resource='r1', type='gauge', timestamp=None):
    return [sample.Sample(name, type, 'B', float(i + 1), 'user', 'project',
                          resource,
                          timestamp=timestamp or
                          f'2031-01-0{i % 9 + 1}T00:00:00',
                          resource_metadata={'i': i})
            for i, name in enumerate(names)]


def event(message_id='e1', payload=None):
    return models.Event(message_id, 'compute.instance.create.end',
                        datetime.datetime(2031, 1, 1, 12, 0, 0),
                        [models.Trait('n', models.Trait.INT_TYPE, 5)],
                        {'payload': payload} if payload is not None else {})


def build(conf, url, namespace='telemeter.sample.publisher'):
    """The publisher for ``url`` as the pipeline loads it."""
    return publisher.get_publisher(conf, url, namespace)


def split(url):
    return publisher.split_url(url)
