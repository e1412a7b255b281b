"""The pure parts of the e2e bench (tools/bench/e2e/): the polling agent's
message shape and signature, delivery accounting and rate windows."""

from __future__ import annotations

import copy
import datetime
import threading
import time
import types
import uuid
from pathlib import Path

import oslo_messaging
import pytest
import yaml

from telemeter.polling import manager as manager_mod
from telemeter.polling import task as task_mod
from telemeter.publisher import utils as publisher_utils
from tools.bench.e2e import (
    accounting,
    daemon_conf,
    errors,
    notification_plan,
    packaged,
    polling_load,
    procwatch,
    queues,
    rates,
    sender,
    sender_group,
)

REPO = Path(__file__).resolve().parents[3]
PIPELINE_DATA = REPO / 'telemeter' / 'pipeline' / 'data'

FIXED_EPOCH = 1_750_000_000.25
SECRET = 'bench-secret'


def fixed_load(instances: int = 120, batch: int = 50) -> object:
    return polling_load.PollingLoad(
        polling_load.make_instances(instances), SECRET,
        'a1b2c3d4-e5f6-4a7b-8c9d-', batch=batch,
        clock=lambda: FIXED_EPOCH, monotonic=lambda: 42.0)


# ------------------------------------------------ message shape, signature


class StubManager:
    """What ``PollingTask._send`` needs of the polling agent."""

    def __init__(self, batch_size: int, secret: str) -> None:
        self.batch_size = batch_size
        self.conf = types.SimpleNamespace(
            publisher=types.SimpleNamespace(telemetry_secret=secret))
        self.sent: list[list[dict]] = []

    def send_samples(self, samples: list[dict]) -> None:
        self.sent.append(samples)


def test_batches_are_what_the_polling_task_sends():
    load = fixed_load(instances=120)
    samples = load.next_samples()
    agent_copies = copy.deepcopy(samples)
    ours = load.sign(samples)

    stub = StubManager(batch_size=50, secret=SECRET)
    timestamp = datetime.datetime.fromtimestamp(
        FIXED_EPOCH, datetime.UTC).replace(tzinfo=None).isoformat()
    task_mod.PollingTask(stub)._send(agent_copies, timestamp)

    assert stub.sent == [ours]
    assert len(ours) == 50


def test_signatures_verify_with_the_configured_secret_only():
    batch = fixed_load().next_batch()
    assert all(publisher_utils.verify_signature(m, SECRET) for m in batch)
    assert not any(publisher_utils.verify_signature(m, 'other')
                   for m in batch)


def test_envelope_is_the_polling_agents():
    assert packaged.POLLING_PUBLISHER_ID == manager_mod.PUBLISHER_ID
    assert packaged.POLLING_EVENT_TYPE == manager_mod.EVENT_TYPE
    assert packaged.POLLING_BATCH == 50


class Endpoint:
    def __init__(self) -> None:
        self.samples: list[dict] = []
        self.infos: list[dict] = []
        self.event = threading.Event()

    def sample(self, messages):
        self.samples.extend(messages)
        self.event.set()

    def info(self, messages):
        self.infos.extend(messages)


def test_sent_on_the_notifications_topic_at_sample_priority(conf):
    conf.set_override('transport_url', 'fake://')
    notifier = sender.polling_notifier(conf)
    endpoint = Endpoint()
    listener = oslo_messaging.get_batch_notification_listener(
        notifier.transport, [oslo_messaging.Target(topic='notifications')],
        [endpoint], executor='threading', batch_size=10, batch_timeout=0.1)
    listener.start()
    try:
        batch = fixed_load().next_batch()
        sender.send_polling_batch(notifier, batch)
        assert endpoint.event.wait(5)
        time.sleep(0.2)
    finally:
        listener.stop()
        listener.wait()
        from oslo_messaging._drivers import impl_fake

        from telemeter import messaging
        messaging.cleanup()
        impl_fake.FakeExchangeManager.cleanup()
    [message] = endpoint.samples
    assert endpoint.infos == []
    assert message['publisher_id'] == 'telemeter.polling'
    assert message['event_type'] == 'telemetry.polling'
    assert message['ctxt'] == {}
    assert message['payload'] == {'samples': batch}


def test_meters_are_packaged_polling_meters():
    polling = yaml.safe_load((PIPELINE_DATA / 'polling.yaml').read_text())
    polled = {m for source in polling['sources'] for m in source['meters']}
    assert {m[0] for m in packaged.POLLED_METERS} <= polled


def test_derived_counts_follow_the_packaged_pipeline():
    pipeline = yaml.safe_load((PIPELINE_DATA / 'pipeline.yaml').read_text())
    transforming = {s['name'] for s in pipeline['sinks']
                    if s.get('transformers')}
    for meter, *_ in packaged.POLLED_METERS:
        sinks = [sink for source in pipeline['sources']
                 if meter in source['meters']
                 for sink in source['sinks'] if sink in transforming]
        assert packaged.DERIVED_PER_SAMPLE.get(meter, 0) == len(sinks), meter


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


# ------------------------------------------------------------- ids


def test_message_ids_are_uuids_that_give_their_number_back():
    prefix = accounting.make_id_prefix(__import__('random').Random(3))
    for seq in (0, 1, 123_456, 2 ** 40):
        message_id = accounting.make_message_id(prefix, seq)
        assert str(uuid.UUID(message_id)) == message_id
        assert accounting.parse_message_id(prefix, message_id) == seq
    assert accounting.parse_message_id(prefix, str(uuid.uuid4())) is None
    assert accounting.parse_message_id(prefix, None) is None
    assert accounting.parse_message_id(prefix, prefix + 'zz') is None


def test_ids_are_unique_across_batches():
    load = fixed_load(instances=70)
    ids = [m['message_id'] for _ in range(5) for m in load.next_batch()]
    assert len(set(ids)) == len(ids) == 50 + 20 + 50 + 20 + 50


# --------------------------------------------------- delivery accounting


def test_count_delivery_lost_duplicated_unexpected():
    sent = [(0, 10), (20, 25)]
    stored = [0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 20, 21, 22, 23, 24, 24, 24, 99]
    result = accounting.count_delivery(sent, stored)
    assert result.sent == 15
    assert result.stored_rows == 18
    assert result.stored_distinct == 15
    assert result.lost == 1
    assert result.lost_examples == [9]
    assert result.duplicated == 3
    assert result.unexpected == 1


def test_count_delivery_everything_stored_once():
    result = accounting.count_delivery([(0, 1000)], range(1000))
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0)


def test_ranges_merge_and_membership():
    merged = accounting.merge_ranges(
        [(5, 8), (0, 3), (3, 4), (7, 10), (12, 12)])
    assert merged == [(0, 4), (5, 10)]
    assert [v for v in range(12) if accounting.in_ranges(merged, v)] == \
        [0, 1, 2, 3, 5, 6, 7, 8, 9]


def test_expected_derived_skips_each_resources_first_sample():
    counts = {'cpu': 3000, 'memory.usage': 3000, 'disk.read.bytes': 2500}
    resources = {'cpu': 1000, 'memory.usage': 1000, 'disk.read.bytes': 1000}
    assert accounting.expected_derived(counts, resources) == 2 * 2000 + 1500


def test_expected_totals():
    per = {'a': {'samples': 2, 'events': 1}, 'b': {'samples': 0,
                                                   'events': 1}}
    assert notification_plan.expected_totals(
        {'a': 3, 'b': 4, 'c': 1}, per) == (6, 7, ['c'])


def test_derived_meter_names():
    assert packaged.is_derived_meter('cpu_util')
    assert packaged.is_derived_meter('cpu.delta')
    assert packaged.is_derived_meter('network.incoming.bytes.rate')
    assert not packaged.is_derived_meter('cpu')


# --------------------------------------------------------- rate windows


def test_counter_rate_interpolates():
    series = [(100.0, 0), (101.0, 100), (103.0, 500), (104.0, 500)]
    assert rates.counter_at(series, 102.0) == pytest.approx(300)
    assert rates.counter_at(series, 50.0) == 0
    assert rates.counter_at(series, 200.0) == 500
    assert rates.counter_rate(series, 100.5, 102.5) == pytest.approx(175)
    assert rates.counter_rate(series, 5, 5) == 0.0


def test_window_rate_counts_half_open_window():
    times = [10.0, 10.5, 11.0, 19.99, 20.0, 25.0]
    assert rates.count_in_window(times, 10.0, 20.0) == 4
    assert rates.window_rate(times, 10.0, 20.0) == pytest.approx(0.4)
    assert rates.window_rate(times, 20.0, 20.0) == 0.0


def test_after_rate_runs_to_the_last_event():
    assert rates.after_rate([1.0, 5.0, 6.0, 10.0], 5.0) == pytest.approx(
        3 / 5)
    assert rates.after_rate([1.0, 2.0], 5.0) == 0.0


def test_proc_watch_reads_this_process():
    watch = procwatch.ProcWatch()
    watch.track('me', __import__('os').getpid(), baseline=True)
    watch.sample()
    watch.mark('window_start')
    sum(range(200_000))
    watch.sample()
    watch.mark('window_end')
    summary = watch.summary()['me']
    [me] = [p for p in summary['processes'] if p['role'] == 'master']
    assert me['peak_rss_mb'] > 10
    assert me['peak_hwm_mb'] >= me['peak_rss_mb'] - 1
    assert 0 <= summary['cpu_s_window'] <= summary['cpu_s'] + 0.01


def test_binned_and_variation():
    times = [0.1, 0.2, 1.5, 2.2, 2.3, 2.4, 3.9]
    assert rates.binned(times, 0.0, 3.0) == [2, 1, 3]
    assert rates.binned(times, 0.0, 4.0, width=2.0) == [3, 4]
    assert rates.variation([5, 5, 5]) == 0.0
    assert rates.variation([1]) is None
    assert rates.variation([0, 0]) is None


def test_slope_and_flatness():
    assert rates.slope([(0, 10), (1, 12), (2, 14)]) == pytest.approx(2.0)
    assert rates.slope([(1, 5)]) is None
    assert rates.is_flat(0.5, 0.0)
    assert rates.is_flat(-3.0, 200.0)
    assert not rates.is_flat(30.0, 200.0)
    assert rates.is_flat(None, 10.0) is None


def test_queue_report():
    d = queues.QueueDepth
    series = [(100.0, {'q': d(0, 0, 1)}), (105.0, {'q': d(40, 10, 1)}),
              (107.0, {'q': d(70, 0, 1)}), (110.0, {'q': d(90, 10, 1)}),
              (120.0, {'q': d(0, None, 1)})]
    report = queues.queue_report(series, (104.0, 111.0), 100.0, 20.0)['q']
    assert report['max'] == 100
    assert report['at_window_start'] == 50
    assert report['at_window_end'] == 100
    assert report['samples_in_window'] == 3
    assert report['growth_per_s_in_window'] == pytest.approx(10.0)
    assert report['flat_in_window'] is False
    assert report['series'][0] == [0.0, 0]
    assert report['last'] == 0
    # Too few samples in the window to judge.
    short = queues.queue_report(series, (104.0, 108.0), 100.0, 20.0)['q']
    assert short['growth_per_s_in_window'] is None
    assert short['flat_in_window'] is None


def test_pacer_keeps_the_rate_without_bursting():
    now = [0.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    pacer = sender.Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        pacer.wait()
    assert now[0] == pytest.approx(0.75)
    now[0] += 5.0  # the sender fell behind: no catching up in a burst
    pacer.wait()
    pacer.wait()
    assert sleeps[-1] == pytest.approx(0.25)
    assert sender.Pacer(None).interval == 0.0


# ------------------------------------------------ notifications mode


def test_routed_entry_moves_polled_samples_to_the_telemeter_exchange():
    entry = {'exchange': 'ceilometer', 'key': 'k'}
    assert notification_plan.routed_entry(entry)['exchange'] == 'telemeter'
    assert entry['exchange'] == 'ceilometer'
    nova = {'exchange': 'nova'}
    assert notification_plan.routed_entry(nova) is nova


def test_renumbered_polled_samples_are_signed_again():
    payload = {'samples': [
        {'counter_name': 'cpu', 'message_id': 'fixed-1',
         'message_signature': 'bogus', 'resource_metadata': {'a': 1}},
        {'counter_name': 'memory.usage', 'message_id': 'fixed-2',
         'message_signature': 'bogus', 'resource_metadata': {}}]}
    prefix = 'a1b2c3d4-e5f6-4a7b-8c9d-'
    assert notification_plan.renumber_polled(payload, prefix, 7, SECRET) == 9
    ids = [s['message_id'] for s in payload['samples']]
    assert [accounting.parse_message_id(prefix, i) for i in ids] == [7, 8]
    assert all(publisher_utils.verify_signature(s, SECRET)
               for s in payload['samples'])


def test_parse_dryrun_attributes_records_between_markers():
    markers = {'m1': 'nova.exists', 'm2': 'polling'}
    lines = [
        '{"kind": "event", "message_id": "m1"}',
        '{"kind": "sample", "counter_name": "instance"}',
        '{"kind": "sample", "counter_name": "vcpus"}',
        '{"kind": "event", "message_id": "n1"}',
        '',
        '{"kind": "event", "message_id": "m2"}',
        '{"kind": "sample", "counter_name": "cpu"}',
    ]
    assert notification_plan.parse_dryrun(lines, markers) == {
        'nova.exists': {'samples': 2, 'events': 1},
        'polling': {'samples': 1, 'events': 0}}


# ------------------------------------------------------- configuration


def test_config_has_servers_workers_and_extras(tmp_path):
    path = tmp_path / 'telemeter.conf'
    text = daemon_conf.write_config(
        path, 'rabbit://guest:guest@127.0.0.1:5720/',
        'postgresql+psycopg://postgres@127.0.0.1:55470/scratch',
        tmp_path / 'log', 's3cret', 2, 3,
        ['collector.batch_size=500', 'collector.workers=4',
         'DEFAULT.debug=true'])
    assert path.read_text() == text
    lines = text.splitlines()
    assert 'transport_url = rabbit://guest:guest@127.0.0.1:5720/' in lines
    assert 'batch_size = 500' in lines
    assert 'workers = 4' in lines and 'workers = 3' not in lines
    assert 'workers = 2' in lines
    assert 'udp_address = ' in lines
    assert lines.count('[DEFAULT]') == 1
    assert 'debug = true' in lines


@pytest.mark.parametrize('item', ['batch_size=5', 'collector.batch_size',
                                  '.x=1', 'collector.=1'])
def test_bad_conf_extra(item):
    with pytest.raises(errors.BenchError):
        daemon_conf.parse_conf_extra(item)


def test_conf_extra_value_may_hold_equals_and_dots():
    assert daemon_conf.parse_conf_extra('database.connection=a://b/c?d=e') == \
        ('database', 'connection', 'a://b/c?d=e')


def test_merge_series_sums_senders_at_every_report_time():
    one = [(0.0, 0, 0), (2.0, 2, 100)]
    two = [(1.0, 0, 0), (3.0, 4, 200)]
    merged = sender_group.merge_series([one, two])
    assert [m[0] for m in merged] == [0.0, 1.0, 2.0, 3.0]
    assert merged[1] == (1.0, 1.0, 50.0)
    assert merged[2] == (2.0, 4.0, 200.0)
    assert merged[3] == (3.0, 6.0, 300.0)


def test_merge_finals():
    finals = [
        {'notifications': 2, 'samples': 100, 'errors': 0, 'done': True,
         'sent_ranges': [[0, 50], [50, 100]], 'meter_counts': {'cpu': 100},
         'meter_resources': {'cpu': 60}},
        {'notifications': 1, 'samples': 50, 'errors': 1, 'done': True,
         'sent_ranges': [[accounting.SEQ_SPAN, accounting.SEQ_SPAN + 50]],
         'meter_counts': {'cpu': 50}, 'meter_resources': {'cpu': 40}}]
    merged = sender_group.merge_finals(finals)
    assert merged['samples'] == 150 and merged['errors'] == 1
    span = accounting.SEQ_SPAN
    assert merged['sent_ranges'] == [(0, 100), (span, span + 50)]
    assert merged['meter_counts'] == {'cpu': 150}
    assert merged['meter_resources'] == {'cpu': 100}


def test_senders_share_out_instances_and_id_numbers():
    instances = polling_load.make_instances(10)
    shares = [instances[i::3] for i in range(3)]
    assert sorted(i.index for s in shares for i in s) == list(range(10))
    load = polling_load.PollingLoad(
        shares[1], SECRET, 'a1b2c3d4-e5f6-4a7b-8c9d-',
        start_seq=accounting.first_seq(1))
    assert load.next_samples()[0].id.endswith(f'{accounting.SEQ_SPAN:012x}')


def test_descendants():
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 11, 20: 1}
    assert procwatch.descendants(10, parents) == [10, 11, 12, 13]
    assert procwatch.descendants(99, parents) == [99]
