"""Every figure of a run as one JSON-friendly dict."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .accounting import Delivery, count_delivery, expected_derived
from .notification_plan import expected_totals
from .packaged import is_derived_meter
from .queues import queue_report
from .rates import (
    after_rate,
    binned,
    counter_rate,
    variation,
    window_rate,
)
from .storage_scan import StorageScan

if TYPE_CHECKING:
    from .run import Run


def build_report(run: Run, scan: StorageScan) -> dict[str, Any]:
    """Every figure of the run as one JSON-friendly dict."""
    args, times = run.args, run.times
    assert run.sender is not None and run.sender.final is not None
    final = run.sender.final
    window = (times.window_start, times.window_end)
    sent_series = [(t, s) for t, _, s in run.sender.series]
    notif_series = [(t, n) for t, n, _ in run.sender.series]
    send_seconds = max(times.send_end - times.send_start, 1e-9)
    event_series = [(t, e) for t, _, e in run.counts]
    bins5 = binned(scan.all_recorded, *window, width=5.0)
    offered_msgs = counter_rate(notif_series, *window)
    report: dict[str, Any] = {
        'tag': run.tag, 'mode': args.mode,
        'command': ' '.join(sys.argv),
        'config': run.config.read_text(),
        'workdir': str(run.workdir),
        'load_average': dict(run.load),
        'timeline': {k: (None if v is None else round(v - times.start, 2))
                     for k, v in dataclasses.asdict(times).items()},
        'offered': {
            'unit': 'samples' if args.mode == 'polling' else 'notifications',
            'total': final['samples'],
            'notifications': final['notifications'],
            'send_errors': final['errors'],
            'per_s_whole_send': round(final['samples'] / send_seconds, 1),
            'per_s_window': round(counter_rate(sent_series, *window), 1),
            'notifications_per_s_window': round(offered_msgs, 1),
        },
        'stored': {
            'samples_rows': scan.rows,
            'samples_by_meter': scan.by_meter,
            'samples_per_s_window': round(window_rate(
                scan.all_recorded, *window), 1),
            'samples_cv_5s_bins_window': _round(variation(bins5), 3),
            'samples_5s_bins_window': bins5,
            'samples_per_s_after_send': round(
                after_rate(scan.all_recorded, times.send_end), 1),
            'events_rows': scan.events,
            'events_by_type': scan.events_by_type,
            'events_per_s_window': round(counter_rate(event_series,
                                                      *window), 1),
            'storage_scan_s': round(scan.seconds, 1),
        },
        'queues': queue_report(run.queues.copy() if run.queues else [],
                               window, times.start, offered_msgs),
        'machine_cpu_window': machine_share(run),
        'queues_after_drain_rabbitmqctl': run.final_queues,
        'drained': times.drained is not None,
        'lost_is_upper_bound': times.drained is None,
        'daemons': run.procs.summary(),
        'notes': run.notes,
    }
    if args.mode == 'polling':
        report['delivery'] = polling_delivery(final, scan)
        report['stored']['polled_samples_per_s_window'] = round(
            window_rate(scan.own_recorded, *window), 1)
        report['cpu_per_item'] = cpu_per_item(
            report, 'stored sample', report['stored']['samples_per_s_window']
            * (times.window_end - times.window_start))
    else:
        delivery = notification_delivery(run, final, scan)
        report['delivery'] = delivery
        expected = delivery.get('expected_telemeter_dryrun',
                               delivery['expected_ceilometer'])
        offered = report['offered']
        offered['expected_samples_per_s_whole_send'] = round(
            expected['samples'] / send_seconds, 1)
        offered['expected_events_per_s_whole_send'] = round(
            expected['events'] / send_seconds, 1)
        report['cpu_per_item'] = cpu_per_item(
            report, 'notification offered', offered_msgs
            * (times.window_end - times.window_start))
    return report


def machine_share(run: Run) -> dict[str, float] | None:
    """Cores busy in the window: the whole machine, the processes the
    bench watched, and the rest (other users of a shared box)."""
    start, end = (run.machine.get('window_start'),
                  run.machine.get('window_end'))
    if start is None or end is None or end[1] <= start[1]:
        return None
    cores = os.cpu_count() or 1
    wall = (end[1] - start[1]) / cores
    busy = (end[0] - start[0]) / wall
    ours = sum(d['cpu_s_window']
               for d in run.procs.summary().values()) / wall
    return {'cores': cores, 'busy_cores': round(busy, 2),
            'bench_processes_cores': round(ours, 2),
            'other_cores': round(busy - ours, 2)}


def cpu_per_item(report: dict[str, Any], item: str, count: float
                 ) -> dict[str, Any] | None:
    """CPU microseconds each watched process spent in the window per
    ``item`` (a sample stored in it, polled and derived rows; or a
    notification the senders offered in it, meaningful when the queues
    stayed flat), and the rate at which the daemons and servers alone
    would keep every core busy: the machine's ceiling for this data path,
    whatever the senders could offer."""
    if count <= 0:
        return None
    per_process = {name: round(d['cpu_s_window'] / count * 1e6, 1)
                   for name, d in report['daemons'].items()}
    path = sum(us for name, us in per_process.items()
               if not name.startswith('sender-'))
    cores = os.cpu_count() or 1
    return {'item': item, 'us': per_process,
            'us_without_senders': round(path, 1), 'cores': cores,
            'ceiling_per_s': round(cores * 1e6 / path) if path else None}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def numbered_delivery(final: dict, scan: StorageScan) -> Delivery:
    """The id ranges the senders sent against the numbered samples
    stored."""
    return count_delivery([tuple(r) for r in final['sent_ranges']],
                          scan.own_seqs)


def polling_delivery(final: dict, scan: StorageScan) -> dict[str, Any]:
    """Sent / stored / lost / duplicated of the numbered samples, and the
    derived samples against the packaged pipeline's expectation."""
    delivery = numbered_delivery(final, scan)
    derived = scan.rows - delivery.stored_rows
    return dict(dataclasses.asdict(delivery),
                derived_rows=derived,
                derived_expected_one_worker=expected_derived(
                    final['meter_counts'], final['meter_resources']),
                all_rows=scan.rows,
                all_duplicated=scan.rows - scan.distinct_ids)


def notification_delivery(run: Run, final: dict,
                          scan: StorageScan) -> dict[str, Any]:
    """Expected samples and events of the notifications sent (Ceilometer
    golden counts and telemeter's dry run) against the stored rows."""
    peer_dir = Path(run.args.peer_dir)
    with open(peer_dir / 'expected-counts.json') as stream:
        golden = json.load(stream)['per_notification']
    by_key = final['by_key']
    g_samples, g_events, g_unknown = expected_totals(by_key, golden)
    result: dict[str, Any] = {
        'notifications_sent': sum(by_key.values()),
        'sent_by_key': by_key,
        'expected_ceilometer': {'samples': g_samples, 'events': g_events,
                                'keys_without_counts': g_unknown},
    }
    derived = sum(n for m, n in scan.by_meter.items()
                  if is_derived_meter(m))
    base = scan.rows - derived
    result['stored'] = {'samples_base': base, 'samples_derived': derived,
                        'events': scan.events}
    if run.dryrun is not None:
        t_samples, t_events, t_unknown = expected_totals(by_key, run.dryrun)
        result['expected_telemeter_dryrun'] = {
            'samples': t_samples, 'events': t_events,
            'keys_without_counts': t_unknown,
            'per_key': run.dryrun,
            'differs_from_ceilometer': {
                k: {'ceilometer': golden.get(k), 'telemeter': v}
                for k, v in sorted(run.dryrun.items())
                if golden.get(k) != v}}
        result['lost_samples'] = t_samples - base
        result['lost_events'] = t_events - scan.events
    result['duplicated_samples'] = scan.rows - scan.distinct_ids
    result['duplicated_events'] = scan.events - scan.distinct_events
    own = numbered_delivery(final, scan)
    result['polled_samples'] = dataclasses.asdict(own)
    return result
