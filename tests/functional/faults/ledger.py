"""The daemons' ledgers (``/metrics``) read at the end of a scenario, and
the rules they must keep after the drain.

Counters live as long as a process: a daemon killed during the scenario
starts again from zero, so the rules that compare with the whole stream
hold only for a daemon that ran the whole scenario; the settling rule
holds for every process still running.

* Every listener settled what it received: ``telemeter_unsettled`` is 0
  (received = acknowledged + requeued + given back by a failed settle).
* The collector's bus balances after the drain, counted from the raw
  counters (not from the daemon's own ``unsettled``): received items =
  dropped + dispatched + quarantined + requeued items (a requeued item
  is received again when redelivered, so a database outage raises
  received and requeued together).
* The collector stored at least every row of the stream the database
  holds (a redelivered sample is stored, and counted, again; storage
  keeps it once).

What the agent received is put in the table's notes beside what the
stream sent: a sample missing from the database that the agent never
received was lost before the broker handed it over.
"""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import parser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def health_conf(ports: dict[str, int]) -> str:
    """The ``[health]`` section for daemon name -> port (none: off)."""
    if not ports:
        return ''
    return (f'[health]\nenabled = true\n'
            f'collector_port = {ports["telemeter-collector"]}\n'
            f'notification_port = '
            f'{ports["telemeter-agent-notification"]}\n')


class Ledger:
    """One scrape of a daemon's ``/metrics`` (Prometheus text)."""

    def __init__(self, text: str) -> None:
        self.samples = [s for family in parser.text_string_to_metric_families(
            text) for s in family.samples]

    @classmethod
    def scrape(cls, port: int) -> Ledger:
        url = f'http://127.0.0.1:{port}/metrics'
        with urllib.request.urlopen(url, timeout=10) as answer:
            return cls(answer.read().decode())

    def value(self, name: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(s.value for s in self.samples
                   if s.name == f'telemeter_{name}'
                   and wanted <= set(s.labels.items()))

    def unsettled(self) -> dict[str, float]:
        """Stage -> deliveries neither settled nor given back (non-zero)."""
        return {s.labels.get('stage', '?'): s.value for s in self.samples
                if s.name == 'telemeter_unsettled' and s.value}


def problems(collector: Ledger | None, agent: Ledger | None,
             stored_rows: int) -> list[str]:
    """What breaks the rules above; ``None`` for a daemon whose counters
    do not cover the whole scenario (checked for settling elsewhere)."""
    found = []
    for name, ledger in (('collector', collector), ('agent', agent)):
        if ledger is not None and ledger.unsettled():
            found.append(f'{name} unsettled after the drain: '
                         f'{ledger.unsettled()}')
    if collector is not None:
        received = collector.value('received_total', stage='bus')
        accounted = sum(collector.value(f'{metric}_total', stage='bus')
                        for metric in ('dropped', 'dispatched',
                                       'quarantined'))
        accounted += sum(collector.value('requeued_total', stage='bus',
                                         kind=kind)
                         for kind in ('sample', 'event'))
        if received != accounted:
            found.append(f'collector bus: received {received:.0f} != '
                         f'dropped + dispatched + quarantined + requeued '
                         f'{accounted:.0f}')
        stored = collector.value('stored_total', stage='dispatcher:database')
        if stored < stored_rows:
            found.append(f'collector counted {stored:.0f} stored, the '
                         f'database holds {stored_rows} rows of the stream')
    return found


def received_notifications(agent: Ledger) -> int:
    return int(agent.value('received_total', kind='notification'))
