"""``--mode polling`` load: simulated instances and the signed
``telemetry.polling`` batches the polling agent would send for them."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from telemeter import sample as sample_mod
from telemeter.publisher import utils as publisher_utils

from .accounting import make_message_id
from .packaged import POLLED_METERS, POLLING_BATCH


@dataclasses.dataclass
class Instance:
    """One simulated Nova instance and the metadata its samples carry."""

    index: int
    id: str
    user_id: str
    project_id: str
    metadata: dict[str, Any]
    vnic_id: str
    vnic_metadata: dict[str, Any]
    speed: float  # scales the cumulative counters


FLAVORS = (
    {'id': '1', 'name': 'm1.tiny', 'vcpus': 1, 'ram': 512, 'disk': 1,
     'ephemeral': 0, 'swap': 0},
    {'id': '2', 'name': 'm1.small', 'vcpus': 1, 'ram': 2048, 'disk': 20,
     'ephemeral': 0, 'swap': 0},
    {'id': '3', 'name': 'm1.medium', 'vcpus': 2, 'ram': 4096, 'disk': 40,
     'ephemeral': 0, 'swap': 0},
    {'id': '4', 'name': 'm1.large', 'vcpus': 4, 'ram': 8192, 'disk': 80,
     'ephemeral': 0, 'swap': 0},
)


def make_instances(count: int, seed: int = 1) -> list[Instance]:
    """``count`` instances spread over 50 projects, 200 users, 20 hosts
    and 4 flavors, with the metadata ``instance_metadata`` builds."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    namespace = uuid.UUID(int=rng.getrandbits(128))
    projects = [uuid.uuid5(namespace, f'project-{i}').hex for i in range(50)]
    users = [uuid.uuid5(namespace, f'user-{i}').hex for i in range(200)]
    images = [str(uuid.uuid5(namespace, f'image-{i}')) for i in range(5)]
    instances = []
    for index in range(count):
        instance_id = str(uuid.uuid5(namespace, f'instance-{index}'))
        flavor = dict(FLAVORS[index % len(FLAVORS)])
        image = images[index % len(images)]
        name = f'instance-{index + 1:08x}'
        host_index = index % 20
        metadata = {
            'display_name': f'vm-{index:04d}', 'name': name,
            'instance_id': instance_id, 'instance_type': flavor['name'],
            'host': uuid.uuid5(namespace, f'host-{host_index}').hex,
            'instance_host': f'compute-{host_index:02d}', 'flavor': flavor,
            'status': 'active', 'state': 'active', 'task_state': None,
            'image': {'id': image}, 'image_ref': image,
            'image_ref_url': None, 'vcpus': flavor['vcpus'],
            'memory_mb': flavor['ram'], 'disk_gb': flavor['disk'],
            'ephemeral_gb': flavor['ephemeral'], 'root_gb': flavor['disk'],
            'architecture': 'x86_64', 'availability_zone': 'nova',
            'os_type': 'hvm',
        }
        tap = f'tap{instance_id[:11]}'
        vnic_metadata = dict(
            metadata, name=tap, mac=f'fa:16:3e:{index >> 16 & 255:02x}:'
            f'{index >> 8 & 255:02x}:{index & 255:02x}', fref=None,
            parameters={'projmask': None, 'ip': f'10.{index >> 16 & 255}.'
                        f'{index >> 8 & 255}.{index & 255}'},
            vnic_name=tap, instance_id=instance_id)
        instances.append(Instance(
            index=index, id=instance_id,
            user_id=users[index % len(users)],
            project_id=projects[index % len(projects)],
            metadata=metadata, vnic_id=f'{name}-{instance_id}-{tap}',
            vnic_metadata=vnic_metadata,
            speed=0.5 + rng.random()))
    return instances


def meter_volume(meter: str, instance: Instance, elapsed: float) -> float:
    """A plausible value of ``meter`` ``elapsed`` seconds into the run:
    cumulative meters only grow, gauges wander."""
    speed = instance.speed
    vcpus = instance.metadata['vcpus']
    if meter == 'cpu':
        return int(3.6e12 * speed + elapsed * 0.3e9 * vcpus * speed)
    if meter == 'memory.usage':
        ram = instance.metadata['memory_mb']
        return round(ram * (0.3 + 0.2 * speed) + (elapsed % 60), 1)
    per_second = {'bytes': 250_000.0, 'requests': 30.0, 'packets': 400.0}
    unit_rate = per_second[meter.rsplit('.', 1)[1]]
    return int(unit_rate * speed * (100_000 + elapsed))


class PollingLoad:
    """Builds the ``telemetry.polling`` batches of a polling cycle after
    another: meter by meter, every instance, ``batch`` samples a batch,
    signed as the polling agent signs them."""

    def __init__(self, instances: list[Instance], secret: str,
                 id_prefix: str, batch: int = POLLING_BATCH,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 start_seq: int = 0) -> None:
        self.instances = instances
        self.secret = secret
        self.id_prefix = id_prefix
        self.batch = batch
        self.clock = clock
        self.monotonic = monotonic
        self.started = clock()
        self.next_seq = start_seq
        self._meter_index = 0
        self._instance_index = 0
        self.meter_counts: collections.Counter[str] = collections.Counter()
        self._seen: dict[str, set[str]] = collections.defaultdict(set)

    def meter_resources(self) -> dict[str, int]:
        """Distinct resources sent per meter."""
        return {meter: len(ids) for meter, ids in self._seen.items()}

    def make_sample(self, meter_def: tuple[str, str, str, str],
                    instance: Instance, seq: int,
                    now: float, monotonic: float) -> sample_mod.Sample:
        """The Sample a compute pollster yields for one instance."""
        name, type_, unit, kind = meter_def
        if kind == 'vnic':
            resource_id, metadata = instance.vnic_id, instance.vnic_metadata
        else:
            resource_id, metadata = instance.id, instance.metadata
            if name == 'cpu':
                metadata = dict(metadata, cpu_number=metadata['vcpus'])
            elif name.startswith('disk.'):
                metadata = dict(metadata, device=['vda'])
        return sample_mod.Sample(
            name=name, type=type_, unit=unit,
            volume=meter_volume(name, instance, now - self.started),
            user_id=instance.user_id, project_id=instance.project_id,
            resource_id=resource_id, resource_metadata=metadata,
            id=make_message_id(self.id_prefix, seq),
            monotonic_time=monotonic)

    def next_samples(self) -> list[sample_mod.Sample]:
        """The next batch's Samples (one meter, consecutive instances)."""
        meter_def = POLLED_METERS[self._meter_index]
        now, monotonic = self.clock(), self.monotonic()
        chosen = self.instances[self._instance_index:
                                self._instance_index + self.batch]
        samples = []
        for instance in chosen:
            samples.append(self.make_sample(meter_def, instance,
                                            self.next_seq, now, monotonic))
            self.next_seq += 1
            self._seen[meter_def[0]].add(samples[-1].resource_id)
        self.meter_counts[meter_def[0]] += len(samples)
        self._instance_index += len(chosen)
        if self._instance_index >= len(self.instances):
            self._instance_index = 0
            self._meter_index = (self._meter_index + 1) % len(POLLED_METERS)
        return samples

    def sign(self, samples: list[sample_mod.Sample]) -> list[dict]:
        """Stamp and sign as the agent's ``SampleSender`` does: one ISO
        timestamp (naive UTC) for the call, one metering dict per Sample."""
        timestamp = datetime.datetime.fromtimestamp(
            self.clock(), datetime.UTC).replace(tzinfo=None).isoformat()
        messages = []
        for one in samples:
            one.set_timestamp(timestamp)
            messages.append(publisher_utils.meter_message_from_counter(
                one, self.secret))
        return messages

    def next_batch(self) -> list[dict]:
        """The next signed batch: the payload's ``samples`` list."""
        return self.sign(self.next_samples())


def polling_payload(batch: list[dict]) -> dict[str, Any]:
    """The payload of one ``telemetry.polling`` notification."""
    return {'samples': batch}
