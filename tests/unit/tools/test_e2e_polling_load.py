"""tools/bench/e2e/polling_load.py: the polling agent's message shape and
signature, a polling cycle, the instances of several senders."""

from __future__ import annotations

import copy
import datetime
import types

from telemeter.polling import sending
from telemeter.publisher import utils as publisher_utils
from tools.bench.e2e import accounting, packaged, polling_load

FIXED_EPOCH = 1_750_000_000.25
SECRET = 'bench-secret'


def fixed_load(instances: int = 120, batch: int = 50) -> object:
    return polling_load.PollingLoad(
        polling_load.make_instances(instances), SECRET,
        'a1b2c3d4-e5f6-4a7b-8c9d-', batch=batch,
        clock=lambda: FIXED_EPOCH, monotonic=lambda: 42.0)


class StubManager:
    """What the polling agent's ``SampleSender`` needs: conf, notifier."""

    def __init__(self, batch_size: int, secret: str) -> None:
        self.conf = types.SimpleNamespace(
            batch_polled_samples=True,
            polling=types.SimpleNamespace(batch_size=batch_size),
            publisher=types.SimpleNamespace(telemetry_secret=secret))
        self.sent: list[list[dict]] = []

    def sample(self, ctxt: dict, event_type: str, payload: dict) -> None:
        self.sent.append(payload['samples'])


def test_batches_are_what_the_polling_task_sends():
    load = fixed_load(instances=120)
    samples = load.next_samples()
    agent_copies = copy.deepcopy(samples)
    ours = load.sign(samples)

    stub = StubManager(batch_size=50, secret=SECRET)
    timestamp = datetime.datetime.fromtimestamp(
        FIXED_EPOCH, datetime.UTC).replace(tzinfo=None).isoformat()
    sending.SampleSender(stub.conf, stub).send('cpu', agent_copies,
                                               timestamp)

    assert stub.sent == [ours]
    assert len(ours) == 50


def test_signatures_verify_with_the_configured_secret_only():
    batch = fixed_load().next_batch()
    assert all(publisher_utils.verify_signature(m, SECRET) for m in batch)
    assert not any(publisher_utils.verify_signature(m, 'other')
                   for m in batch)


def test_a_cycle_goes_meter_by_meter_over_every_instance():
    load = fixed_load(instances=120)
    batches = [load.next_samples() for _ in range(3 * len(
        packaged.POLLED_METERS))]
    assert [len(b) for b in batches[:3]] == [50, 50, 20]
    names = [b[0].name for b in batches[::3]]
    assert names == [m[0] for m in packaged.POLLED_METERS]
    assert load.meter_resources() == dict.fromkeys(names, 120)
    cpu = batches[0][0]
    assert cpu.resource_metadata['cpu_number'] == \
        cpu.resource_metadata['vcpus']
    vnic = batches[18][0]
    assert vnic.name == 'network.incoming.bytes'
    assert vnic.resource_id.startswith('instance-')
    assert vnic.resource_metadata['instance_id'] in vnic.resource_id


def test_cumulative_volumes_grow():
    instance = polling_load.make_instances(1)[0]
    for meter, type_, *_ in packaged.POLLED_METERS:
        if type_ == 'cumulative':
            assert polling_load.meter_volume(meter, instance, 10.0) < \
                polling_load.meter_volume(meter, instance, 20.0)


def test_ids_are_unique_across_batches():
    load = fixed_load(instances=70)
    ids = [m['message_id'] for _ in range(5) for m in load.next_batch()]
    assert len(set(ids)) == len(ids) == 50 + 20 + 50 + 20 + 50


def test_senders_share_out_instances_and_id_numbers():
    instances = polling_load.make_instances(10)
    shares = [instances[i::3] for i in range(3)]
    assert sorted(i.index for s in shares for i in s) == list(range(10))
    load = polling_load.PollingLoad(
        shares[1], SECRET, 'a1b2c3d4-e5f6-4a7b-8c9d-',
        start_seq=accounting.first_seq(1))
    assert load.next_samples()[0].id.endswith(f'{accounting.SEQ_SPAN:012x}')
