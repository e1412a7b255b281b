"""The human summary of a report, printed at the end of a run."""

from __future__ import annotations

from typing import Any

from .console import fmt_int


def print_report(report: dict[str, Any]) -> None:
    """The human summary of a report."""
    load = report['load_average']
    offered, stored = report['offered'], report['stored']
    at = (f"[load start {load.get('start')}, window "
          f"{load.get('window_start')} → {load.get('window_end')}, end "
          f"{load.get('end')}]")
    unit = offered['unit']
    print()
    print(f"== e2e bench {report['tag']} ({report['mode']}) {at}")
    notes = (f" ({fmt_int(offered['notifications'])} notifications)"
             if unit == 'samples' else '')
    print(f"offered: {fmt_int(offered['total'])} {unit}{notes}, "
          f"{offered['per_s_whole_send']:,.1f} {unit}/s over the send, "
          f"{offered['per_s_window']:,.1f}/s in the window; "
          f"{offered['send_errors']} send errors")
    if 'expected_samples_per_s_whole_send' in offered:
        samples = offered['expected_samples_per_s_whole_send']
        events = offered['expected_events_per_s_whole_send']
        print(f'  i.e. {samples:,.1f} samples/s and {events:,.1f} events/s'
              f' to store (telemeter dry run counts)')
    print(f"stored, steady window: {stored['samples_per_s_window']:,.1f} "
          f"samples/s (CV of 5 s bins {stored['samples_cv_5s_bins_window']}"
          f"), {stored['events_per_s_window']:,.1f} events/s "
          f"[load {load.get('window_end')}]")
    if 'polled_samples_per_s_window' in stored:
        print(f"  of which polled samples: "
              f"{stored['polled_samples_per_s_window']:,.1f}/s")
    print(f"stored after the send (drain): "
          f"{stored['samples_per_s_after_send']:,.1f} samples/s; drained: "
          f"{report['drained']} [load {load.get('end')}]")
    print_delivery(report)
    print('queues (ready messages, AMQP passive declare; growth in the '
          'window):')
    for name, q in report['queues'].items():
        print(f"  {name:24} max {fmt_int(q['max'])}, window "
              f"{fmt_int(q['at_window_start'])} → "
              f"{fmt_int(q['at_window_end'])} "
              f"({q['growth_per_s_in_window']} msg/s, flat: "
              f"{q['flat_in_window']}), last {fmt_int(q['last'])}")
    final = report.get('queues_after_drain_rabbitmqctl')
    if final is not None:
        held = {n: q['ready'] + (q['unacked'] or 0)
                for n, q in final.items() if q['ready'] or q['unacked']}
        print(f'after the drain (rabbitmqctl, ready + unacked): '
              f'{held or "every queue empty"}')
    share = report.get('machine_cpu_window')
    if share:
        print(f"CPU in the window: {share['busy_cores']} of "
              f"{share['cores']} cores busy, {share['bench_processes_cores']}"
              f" by the processes below, {share['other_cores']} by others")
    budget = report.get('cpu_per_item')
    if budget:
        parts = ', '.join(f'{name} {us}' for name, us in
                          budget['us'].items())
        print(f"CPU per {budget['item']} in the window (us): {parts}; "
              f"without the senders {budget['us_without_senders']} us, i.e."
              f" at most {fmt_int(budget['ceiling_per_s'])}/s on "
              f"{budget['cores']} cores")
    print(f'processes (daemons, senders, servers) [load {load.get("end")}]'
          f':')
    for name, d in report['daemons'].items():
        print(f"  {name}: CPU {d['cpu_s']:.1f} s ({d['cpu_s_window']:.1f} s"
              f" in the window), peak RSS of all its processes at once "
              f"{d['peak_rss_mb_tree']:.0f} MB")
        if not name.startswith('telemeter-'):
            continue
        for p in d['processes']:
            print(f"    {p['role']:6} pid {p['pid']:>7}: peak RSS "
                  f"{p['peak_rss_mb']:.0f} MB (VmHWM {p['peak_hwm_mb']:.0f}"
                  f"), CPU {p['cpu_s']:.1f} s")
    for note in report['notes']:
        print(f'note: {note}')


def print_delivery(report: dict[str, Any]) -> None:
    """The sent / stored / lost / duplicated lines."""
    d = report['delivery']
    if not report['drained']:
        print('NOT DRAINED: "lost" below counts what was still queued or '
              'in flight when the daemons were stopped (raise '
              '--drain-timeout); see the queues after the drain')
    if report['mode'] == 'polling':
        print(f"polled samples: sent {fmt_int(d['sent'])}, stored "
              f"{fmt_int(d['stored_distinct'])}, lost {fmt_int(d['lost'])}"
              f", duplicated {fmt_int(d['duplicated'])}, unexpected "
              f"{fmt_int(d['unexpected'])}"
              + (f" (e.g. seq {d['lost_examples']})" if d['lost'] else ''))
        print(f"derived samples (transformers): {fmt_int(d['derived_rows'])}"
              f" stored, {fmt_int(d['derived_expected_one_worker'])} "
              f"expected with one agent worker; all rows "
              f"{fmt_int(d['all_rows'])}, duplicated "
              f"{fmt_int(d['all_duplicated'])}")
        return
    s = d['stored']
    ceilo = d['expected_ceilometer']
    print(f"notifications sent {fmt_int(d['notifications_sent'])}: "
          f"samples stored {fmt_int(s['samples_base'])} (+ "
          f"{fmt_int(s['samples_derived'])} derived), events stored "
          f"{fmt_int(s['events'])}")
    print(f"  expected (Ceilometer counts): {fmt_int(ceilo['samples'])} "
          f"samples, {fmt_int(ceilo['events'])} events")
    if 'expected_telemeter_dryrun' in d:
        tel = d['expected_telemeter_dryrun']
        print(f"  expected (telemeter dry run): {fmt_int(tel['samples'])} "
              f"samples, {fmt_int(tel['events'])} events → lost "
              f"{fmt_int(d['lost_samples'])} samples, "
              f"{fmt_int(d['lost_events'])} events")
        for key, diff in tel['differs_from_ceilometer'].items():
            print(f"    {key}: Ceilometer {diff['ceilometer']}, telemeter "
                  f"{diff['telemeter']}")
    print(f"  duplicated: {fmt_int(d['duplicated_samples'])} samples, "
          f"{fmt_int(d['duplicated_events'])} events; polled samples lost "
          f"{fmt_int(d['polled_samples']['lost'])} of "
          f"{fmt_int(d['polled_samples']['sent'])}")
