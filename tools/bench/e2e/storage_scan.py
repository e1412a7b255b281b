"""What the database holds after the run, read through the public storage
API: every sample (our ids, recorded_at) and every event."""

from __future__ import annotations

import dataclasses
import datetime
import time
from pathlib import Path
from typing import Any

from .accounting import parse_message_id


def utc_epoch(value: datetime.datetime) -> float:
    """Epoch seconds of a naive-UTC (or aware) datetime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


@dataclasses.dataclass
class StorageScan:
    """What the database holds after the run."""

    own_seqs: list[int]
    own_recorded: list[float]
    all_recorded: list[float]
    by_meter: dict[str, int]
    rows: int
    distinct_ids: int
    events: int
    distinct_events: int
    events_by_type: dict[str, int]
    seconds: float


def scan_storage(config: Path, id_prefix: str) -> StorageScan:
    """Every stored sample (meter by meter) and event, through the public
    storage API."""
    from oslo_config import cfg

    from telemeter import service, storage
    started = time.monotonic()
    conf = service.prepare_service(argv=['e2e-bench'],
                                   config_files=[str(config)],
                                   conf=cfg.ConfigOpts())
    metering = storage.get_connection_from_config(conf, 'metering')
    own_seqs: list[int] = []
    own_recorded: list[float] = []
    all_recorded: list[float] = []
    by_meter: dict[str, int] = {}
    ids: set[str] = set()
    rows = 0
    try:
        names = sorted({m.name for m in metering.get_meters(unique=True)})
        for name in names:
            found = metering.get_samples(storage.SampleFilter(meter=name))
            by_meter[name] = len(found)
            for one in found:
                rows += 1
                ids.add(one.message_id)
                recorded = utc_epoch(one.recorded_at)
                all_recorded.append(recorded)
                seq = parse_message_id(id_prefix, one.message_id)
                if seq is not None:
                    own_seqs.append(seq)
                    own_recorded.append(recorded)
    finally:
        metering.dispose()
    events, distinct_events, by_type = scan_events(conf)
    return StorageScan(own_seqs=own_seqs, own_recorded=own_recorded,
                       all_recorded=all_recorded, by_meter=by_meter,
                       rows=rows, distinct_ids=len(ids), events=events,
                       distinct_events=distinct_events,
                       events_by_type=by_type,
                       seconds=time.monotonic() - started)


def scan_events(conf: Any) -> tuple[int, int, dict[str, int]]:
    """(rows, distinct message ids, rows per event type) of events."""
    from telemeter import storage
    conn = storage.get_connection_from_config(conf, 'event')
    rows = 0
    ids: set[str] = set()
    by_type: dict[str, int] = {}
    try:
        for event_type in conn.get_event_types():
            found = conn.get_events(storage.EventFilter(
                event_type=event_type))
            by_type[event_type] = len(found)
            rows += len(found)
            ids.update(e.message_id for e in found)
    finally:
        conn.dispose()
    return rows, len(ids), by_type
