"""The packaged pipeline.yaml through the real daemons: cumulative ``cpu``
samples sent to the notification agent come out of the collector as
``cpu_util`` gauges (and ``cpu.delta`` deltas) with the right values."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest

import telemeter.pipeline
from telemeter import messaging, sample, storage
from telemeter.publisher import utils
from tests.functional import daemons

PACKAGED_PIPELINE = (Path(telemeter.pipeline.__file__).parent / 'data'
                     / 'pipeline.yaml').read_text()
T0 = datetime.datetime(2031, 3, 4, 5, 6, 0)


@pytest.fixture
def deployment(tmp_path, rabbit_url):
    dep = daemons.Deployment(tmp_path / 'deployment', rabbit_url,
                             pipeline=PACKAGED_PIPELINE)
    dep.run('telemeter-dbsync')
    yield dep
    dep.cleanup()
    messaging.cleanup()


def _cpu(resource: str, seconds: int, volume: float, cpus: int) -> dict:
    s = sample.Sample('cpu', 'cumulative', 'ns', volume, 'user', 'project',
                      resource,
                      timestamp=(T0 + datetime.timedelta(seconds=seconds))
                      .isoformat(),
                      resource_metadata={'cpu_number': cpus})
    return utils.meter_message_from_counter(s, daemons.SECRET)


def _wait(conn, meter: str, resource: str, count: int,
          timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    found: list = []
    while time.monotonic() < deadline:
        found = list(conn.get_samples(storage.SampleFilter(
            meter=meter, resource=resource)))
        if len(found) >= count:
            return sorted(found, key=lambda s: s.timestamp)
        time.sleep(0.5)
    raise AssertionError(f'{len(found)}/{count} {meter} samples stored for '
                         f'{resource}')


def test_cpu_util_and_cpu_delta_from_cumulative_cpu(deployment):
    dep = deployment
    dep.start('telemeter-collector').wait_for_log(
        'Collector listening on topic')
    dep.start('telemeter-agent-notification').wait_for_log(
        'Notification agent listening')
    transport = messaging.get_transport(dep.conf(), dep.transport_url)
    notifier = messaging.get_notifier(transport, 'telemeter.polling',
                                      driver='messagingv2',
                                      topics=[dep.notification_topic])
    # One notification per resource keeps each resource's samples in order.
    notifier.sample({}, 'telemetry.polling', {'samples': [
        _cpu('vm-1', 0, 10e9, 2), _cpu('vm-1', 10, 25e9, 2),
        _cpu('vm-1', 20, 33e9, 2), _cpu('vm-1', 30, 5e9, 2)]})
    notifier.sample({}, 'telemetry.polling', {'samples': [
        _cpu('vm-2', 0, 0, 4), _cpu('vm-2', 10, 20e9, 4),
        _cpu('vm-2', 20, 100e9, 4)]})
    conn = dep.storage()

    util = _wait(conn, 'cpu_util', 'vm-1', 3)
    # vm-1, 2 CPUs, scale 100 / (1e9 * 2):
    #   t10: (25e9 - 10e9) / 10 s = 1.5e9 ns/s -> 75 %
    #   t20: (33e9 - 25e9) / 10 s = 0.8e9 ns/s -> 40 %
    #   t30: 5e9 < 33e9 is a counter reset: 5e9 / 10 s = 0.5e9 -> 25 %
    assert [s.counter_volume for s in util] == pytest.approx(
        [75.0, 40.0, 25.0])
    assert [s.timestamp for s in util] == [
        T0 + datetime.timedelta(seconds=n) for n in (10, 20, 30)]
    assert {(s.counter_type, s.counter_unit) for s in util} == {
        ('gauge', '%')}
    assert {(s.user_id, s.project_id) for s in util} == {('user',
                                                          'project')}

    util2 = _wait(conn, 'cpu_util', 'vm-2', 2)
    # vm-2, 4 CPUs, scale 100 / (1e9 * 4):
    #   t10: 20e9 / 10 s = 2e9 ns/s -> 50 %
    #   t20: 80e9 / 10 s = 8e9 ns/s -> 200 %, capped at max 100
    assert [s.counter_volume for s in util2] == pytest.approx([50.0, 100.0])

    delta = _wait(conn, 'cpu.delta', 'vm-1', 2)
    # growth_only: 25e9 - 10e9 = 15e9, 33e9 - 25e9 = 8e9; the reset
    # (5e9 - 33e9 < 0) is dropped
    assert [s.counter_volume for s in delta] == [15e9, 8e9]
    assert {(s.counter_type, s.counter_unit) for s in delta} == {
        ('delta', 'ns')}

    # meter_sink stores the raw samples too; nothing else was produced.
    assert len(list(conn.get_samples(storage.SampleFilter(
        meter='cpu', resource='vm-1')))) == 4
    time.sleep(2)
    assert len(list(conn.get_samples(storage.SampleFilter(
        meter='cpu_util')))) == 5
    assert len(list(conn.get_samples(storage.SampleFilter(
        meter='cpu.delta')))) == 4  # vm-2: 20e9 and 80e9
