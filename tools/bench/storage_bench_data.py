"""Data and queries of tools/bench/storage_bench.py.

The metering dicts look like what the collector hands the database
dispatcher: built like ``meter_message_from_counter`` builds them, sent
through JSON (so every dict and its nested metadata are separate objects
and timestamps ISO 8601 strings), in time order, round-robin over
resources and meters.
"""

from __future__ import annotations

import datetime
import json
import statistics
import time
import uuid
from collections.abc import Iterator

from telemeter import storage

BASE = datetime.datetime(2026, 1, 1)
STEP = datetime.timedelta(minutes=10)


class Stopwatch:
    """``with Stopwatch() as w: ...``; then ``w.elapsed`` seconds."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self.elapsed = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self._start


def resource_metadata(r: int) -> dict:
    """Nine keys like a nova instance's, one of them a nested dict."""
    return {'display_name': f'vm-{r}', 'host': f'host-{r % 20}',
            'instance_type': f'type-{r % 4}',
            'flavor': {'name': 'm1.small', 'vcpus': 1, 'ram': 2048,
                       'disk': 20},
            'image_ref': f'{uuid.UUID(int=r % 7)}', 'status': 'active',
            'memory_mb': 2048, 'availability_zone': 'nova',
            'state': 'running'}


def _pairs(samples: int, resources: int,
           meters: int) -> Iterator[tuple[int, int, int]]:
    per_pair = max(1, -(-samples // (resources * meters)))
    produced = 0
    for step in range(per_pair):
        for r in range(resources):
            for m in range(meters):
                if produced == samples:
                    return
                produced += 1
                yield step, r, m


def _when(step: int, r: int, m: int) -> datetime.datetime:
    return BASE + step * STEP + datetime.timedelta(
        seconds=m, microseconds=(r * 997 + m * 31) % 1_000_000)


def _metering(step: int, r: int, m: int) -> dict:
    when = _when(step, r, m)
    # Half the senders give an offset, half a naive UTC time.
    stamp = (when.replace(tzinfo=datetime.UTC).isoformat() if r % 2
             else when.isoformat())
    msg = {'source': 'openstack', 'counter_name': f'meter-{m}',
           'counter_type': 'gauge', 'counter_unit': 'unit',
           'counter_volume': float((step * 7 + r + m) % 100) + 0.5,
           'user_id': f'user-{r % 50}', 'project_id': f'project-{r % 10}',
           'resource_id': f'resource-{r}', 'timestamp': stamp,
           'resource_metadata': resource_metadata(r),
           'message_id': str(uuid.uuid4()),
           'monotonic_time': None if m % 3 else 1234.5 + step}
    if m % 4 == 0:
        msg['publisher_id'] = 'telemeter.polling'
    msg['message_signature'] = uuid.uuid4().hex + uuid.uuid4().hex
    return msg


def timed_batches(samples: int, resources: int, meters: int,
                  batch_size: int) -> Iterator[list[dict]]:
    """Yield JSON-decoded batches of metering dicts."""
    batch: list[dict] = []
    for step, r, m in _pairs(samples, resources, meters):
        batch.append(_metering(step, r, m))
        if len(batch) == batch_size:
            yield json.loads(json.dumps(batch))
            batch = []
    if batch:
        yield json.loads(json.dumps(batch))


def raw_batches(samples: int, resources: int, meters: int,
                batch_size: int) -> Iterator[list[tuple]]:
    """Yield batches of pre-built ``sample`` rows of the same shape:
    (meter_id, resource_id, volume, timestamp, recorded_at, signature,
    message_id)."""
    batch: list[tuple] = []
    recorded = datetime.datetime(2026, 2, 1)
    for step, r, m in _pairs(samples, resources, meters):
        batch.append((m + 1, r + 1, float((step * 7 + r + m) % 100) + 0.5,
                      _when(step, r, m), recorded,
                      uuid.uuid4().hex + uuid.uuid4().hex,
                      str(uuid.uuid4())))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def timed(label: str, func, repeat: int = 3) -> list[float]:
    """Run ``func`` ``repeat`` times; print and return the times."""
    times = []
    result = None
    for _ in range(repeat):
        with Stopwatch() as watch:
            result = func()
        times.append(watch.elapsed)
    size = len(result) if hasattr(result, '__len__') else '?'
    print(f'{label:<58} {min(times):7.3f} s (median '
          f'{statistics.median(times):.3f} s, {size} results)', flush=True)
    return times


def run_queries(conn, skip_extra: bool) -> None:
    """Time the main queries on the loaded data."""
    analyse = getattr(conn, 'analyse', None)
    if analyse:
        analyse()
    flt = storage.SampleFilter
    timed("get_meter_statistics(meter-3, period=3600)",
          lambda: conn.get_meter_statistics(flt(meter='meter-3'),
                                            period=3600))
    timed("get_meter_statistics(meter-3, period=3600, "
          "groupby=['resource_id'])",
          lambda: conn.get_meter_statistics(flt(meter='meter-3'),
                                            period=3600,
                                            groupby=['resource_id']))
    timed('get_samples(resource=resource-42, limit=100)',
          lambda: conn.get_samples(flt(resource='resource-42'), limit=100))
    if skip_extra:
        return
    timed('get_meter_statistics(meter-3) no period',
          lambda: conn.get_meter_statistics(flt(meter='meter-3')))
    timed('get_samples(meter=meter-3, limit=100)',
          lambda: conn.get_samples(flt(meter='meter-3'), limit=100))
    timed('query_samples(and(=resource, >volume), limit=100)',
          lambda: conn.query_samples(
              {'and': [{'=': {'resource_id': 'resource-7'}},
                       {'>': {'counter_volume': 50}}]}, limit=100))
    timed('get_resources()', lambda: conn.get_resources(), repeat=1)
    timed('get_resources(resource=resource-42)',
          lambda: conn.get_resources(resource='resource-42'))
    timed('get_meters(resource=resource-42)',
          lambda: conn.get_meters(resource='resource-42'))
    timed('get_meters(unique=True)',
          lambda: conn.get_meters(unique=True), repeat=1)
