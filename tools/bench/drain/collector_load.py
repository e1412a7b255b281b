"""The collector's pre-load: ``metering.sample`` notifications of signed
metering dicts, as the ``notifier://`` publisher sends them.

Samples: ``--resources`` (1,000) instances, each with its user, project
and 10 metadata keys (one of them the nested ``flavor`` dict), and the 10
meters the packaged compute pollsters poll; sample number ``i`` is meter
``(i // resources) % 10`` of resource ``i % resources`` in polling cycle
``i // (10 * resources)`` (ten minutes apart), so a message holds one
meter of consecutive resources as a polling cycle does.  Each dict is
``telemeter.publisher.utils.meter_message_from_counter`` of a
``telemeter.sample.Sample``, signed with the collector's
``telemetry_secret``; its message id is ``<run prefix><sample number>``
(``tools/bench/e2e/accounting``), so the database tells which sample is
missing or doubled.

Messages: what ``NotifierPublisher._send`` builds (``event_type`` the
metering topic, priority ``SAMPLE``, publisher ``telemetry.publisher.
<host>``, a fresh message id, the send time), for routing key
``<metering topic>.sample`` on the control exchange (``telemeter``).
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from telemeter import sample as sample_mod
from telemeter.publisher import utils as publisher_utils
from tools.bench.e2e.accounting import make_message_id
from tools.bench.e2e.packaged import POLLED_METERS

from .wire import WireMessage

METERING_TOPIC = 'metering'
CYCLE_SECONDS = 600
START = datetime.datetime(2026, 1, 1)
FLAVORS = (('1', 'm1.tiny', 1, 512, 1), ('2', 'm1.small', 1, 2048, 20),
           ('3', 'm1.medium', 2, 4096, 40), ('4', 'm1.large', 4, 8192, 80))


@dataclasses.dataclass(frozen=True)
class Resource:
    """One instance and what its samples carry."""

    id: str
    user_id: str
    project_id: str
    metadata: dict[str, Any]


def make_resources(count: int, seed: int = 7) -> list[Resource]:
    """``count`` instances over 50 projects, 200 users, 20 hosts and 4
    flavors; 10 metadata keys each, ``flavor`` a nested dict."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    space = uuid.UUID(int=rng.getrandbits(128))
    resources = []
    for index in range(count):
        flavor_id, name, vcpus, ram, disk = FLAVORS[index % len(FLAVORS)]
        metadata = {
            'display_name': f'vm-{index:04d}',
            'host': f'compute-{index % 20:02d}',
            'instance_type': name,
            'image_ref': str(uuid.uuid5(space, f'image-{index % 5}')),
            'status': 'active',
            'availability_zone': 'nova',
            'architecture': 'x86_64',
            'vcpus': vcpus,
            'memory_mb': ram,
            'flavor': {'id': flavor_id, 'name': name, 'vcpus': vcpus,
                       'ram': ram, 'disk': disk},
        }
        resources.append(Resource(
            id=str(uuid.uuid5(space, f'instance-{index}')),
            user_id=uuid.uuid5(space, f'user-{index % 200}').hex,
            project_id=uuid.uuid5(space, f'project-{index % 50}').hex,
            metadata=metadata))
    return resources


def volume(meter: str, resource_index: int, cycle: int) -> float:
    """A plausible value: cumulative meters grow each cycle, the gauge
    (memory.usage) wanders."""
    speed = 1 + resource_index % 7
    if meter == 'memory.usage':
        return float(256 + (resource_index * 37 + cycle * 11) % 1024)
    return float(speed * (1_000_000 + cycle * 60_000))


def make_sample(resources: Sequence[Resource], seq: int,
                id_prefix: str) -> sample_mod.Sample:
    """Sample number ``seq``, as a compute pollster yields it."""
    count = len(resources)
    resource = resources[seq % count]
    meter, type_, unit, _ = POLLED_METERS[(seq // count)
                                          % len(POLLED_METERS)]
    cycle = seq // (count * len(POLLED_METERS))
    stamp = START + datetime.timedelta(seconds=cycle * CYCLE_SECONDS
                                       + seq % count * 0.01)
    return sample_mod.Sample(
        name=meter, type=type_, unit=unit,
        volume=volume(meter, seq % count, cycle),
        user_id=resource.user_id, project_id=resource.project_id,
        resource_id=resource.id, timestamp=stamp.isoformat(),
        resource_metadata=resource.metadata,
        id=make_message_id(id_prefix, seq),
        monotonic_time=float(cycle * CYCLE_SECONDS))


def metering_dict(resources: Sequence[Resource], seq: int, id_prefix: str,
                  secret: str) -> dict[str, Any]:
    """Signed metering dict of sample number ``seq``, as the
    ``notifier://`` publisher makes it of the Sample."""
    return publisher_utils.meter_message_from_counter(
        make_sample(resources, seq, id_prefix), secret)


def publisher_message(payload: list[dict[str, Any]], host: str,
                      topic: str = METERING_TOPIC) -> dict[str, Any]:
    """The notification ``NotifierPublisher._send`` builds for a list of
    metering dicts."""
    return {'message_id': str(uuid.uuid4()),
            'publisher_id': f'telemetry.publisher.{host}',
            'event_type': topic,
            'priority': 'SAMPLE',
            'payload': payload,
            'timestamp': str(datetime.datetime.now(datetime.UTC).replace(
                tzinfo=None))}


def collector_messages(count: int, per_message: int,
                       resources: Sequence[Resource], secret: str,
                       id_prefix: str, host: str,
                       topic: str = METERING_TOPIC
                       ) -> Iterator[WireMessage]:
    """``count`` notifications of ``per_message`` samples each, numbered
    0 .. count * per_message - 1."""
    for index in range(count):
        first = index * per_message
        payload = [metering_dict(resources, seq, id_prefix, secret)
                   for seq in range(first, first + per_message)]
        yield WireMessage(exchange=None, routing_key=f'{topic}.sample',
                          message=publisher_message(payload, host, topic))
