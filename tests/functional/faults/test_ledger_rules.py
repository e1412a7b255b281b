"""The ledger rules the fault scenarios apply after the drain, on given
``/metrics`` texts (no daemon)."""

from __future__ import annotations

from tests.functional.faults import ledger

COLLECTOR = '''\
telemeter_received_total{stage="bus",kind="sample"} 1042
telemeter_dropped_total{stage="bus",reason="signature"} 1
telemeter_dispatched_total{stage="bus",kind="sample"} 1001
telemeter_unsettled{stage="bus",kind="sample"} 0
telemeter_requeued_total{stage="bus",kind="batch"} 2
telemeter_requeued_total{stage="bus",kind="sample"} 40
telemeter_stored_total{stage="dispatcher:database"} 1001
telemeter_unsettled{stage="listener:sample",kind="message"} 0
'''
AGENT = '''\
telemeter_received_total{stage="listener:0",kind="notification"} 60
telemeter_unsettled{stage="listener:0",kind="notification"} 0
telemeter_dropped_total{stage="handler:X",kind="notification",\
reason="handler_error"} 2
'''


def test_a_settled_ledger_that_covers_the_database_passes():
    found = ledger.problems(ledger.Ledger(COLLECTOR), ledger.Ledger(AGENT),
                            stored_rows=1000)
    assert found == []
    assert ledger.received_notifications(ledger.Ledger(AGENT)) == 60


def test_unsettled_deliveries_are_named_by_daemon_and_stage():
    agent = AGENT.replace(
        'telemeter_unsettled{stage="listener:0",kind="notification"} 0',
        'telemeter_unsettled{stage="listener:0",kind="notification"} 3')
    found = ledger.problems(None, ledger.Ledger(agent), stored_rows=0)
    assert found == ["agent unsettled after the drain: {'listener:0': 3}"]


def test_rows_the_collector_did_not_count_as_stored():
    found = ledger.problems(ledger.Ledger(COLLECTOR), None, stored_rows=1002)
    assert found == ['collector counted 1001 stored, the database holds '
                     '1002 rows of the stream']


def test_a_bus_that_does_not_balance():
    collector = COLLECTOR.replace('} 1001\ntelemeter_unsettled{stage="bus"',
                                  '} 999\ntelemeter_unsettled{stage="bus"')
    found = ledger.problems(ledger.Ledger(collector), None, stored_rows=0)
    assert found == ['collector bus: received 1042 != dropped + dispatched '
                     '+ quarantined + requeued 1040']


def test_requeued_batches_are_not_counted_as_items():
    collector = COLLECTOR.replace('kind="batch"} 2', 'kind="batch"} 40')
    assert ledger.problems(ledger.Ledger(collector), None,
                           stored_rows=0) == []
