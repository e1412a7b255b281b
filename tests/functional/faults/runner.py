"""The scenario runner of the fault suite and its table."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from tests.functional.faults import harness, ledger

#: Every scenario's outcome in this session, in run order.
OUTCOMES: list[harness.Outcome] = []


class Scenario:
    """One deployment, its collector and agent, a stream and a counter."""

    COLLECTOR = 'telemeter-collector'
    AGENT = 'telemeter-agent-notification'

    def __init__(self, name: str, dep: harness.FaultDeployment,
                 broker=None, vhost: str = '/'):
        self.name = name
        self.broker = broker
        self.vhost = vhost
        self.dep = dep
        self.n = harness.N
        self.counter = harness.Counter(dep.database_url)
        self.stream: harness.Stream | None = None
        self.marks: dict[str, float] = {}
        self.outcome = harness.Outcome(name, self.n)
        self.excluded: set[int] = set()
        self.queued: dict[str, int] = {}
        #: Messages in the quarantine queue at the end (not "left").
        self.quarantined = 0
        self.counter_rows_at_end: dict[int, int] = {}
        #: :meth:`diagnosis` taken before the daemons were stopped.
        self.running_diagnosis = ''
        #: Daemon name -> its ledger after the drain (running ones).
        self.ledgers: dict[str, ledger.Ledger] = {}

    # -- daemons
    def start_collector(self):
        daemon = self.dep.start(self.COLLECTOR)
        daemon.wait_for_log('Collector listening on topic', timeout=90)
        return daemon

    def start_agent(self):
        daemon = self.dep.start(self.AGENT)
        daemon.wait_for_log('Notification agent listening', timeout=90)
        return daemon

    def current(self, name: str):
        return [d for d in self.dep.daemons if d.name == name][-1]

    def kill_and_restart(self, name: str) -> None:
        """SIGKILL the daemon's process group, start a new one."""
        self.current(name).kill()
        self.mark(f'killed {name}')
        if name == self.COLLECTOR:
            self.start_collector()
        else:
            self.start_agent()

    # -- timing
    def mark(self, label: str) -> float:
        self.marks[label] = now = time.monotonic()
        return now

    def wait_sent(self, fraction: float, timeout: float = 600) -> None:
        """Until the stream has sent ``fraction`` of its samples."""
        deadline = time.monotonic() + timeout
        while self.stream.sent < fraction * self.n:
            if self.stream.error is not None:
                raise AssertionError(f'stream failed: {self.stream.error!r}')
            assert time.monotonic() < deadline, 'the stream stalled'
            time.sleep(0.1)

    def wait_stored(self, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while (self.counter.total() or 0) < count:
            assert time.monotonic() < deadline, (
                f'{count} rows not stored within {timeout}s')
            time.sleep(0.5)

    # -- the run
    def run(self, rate: float, faults: Callable[[Scenario], None]
            = lambda scn: None, injections=None, stall: float = 30,
            drain_timeout: float = 90) -> harness.Outcome:
        self.dep.run('telemeter-dbsync')
        self.start_collector()
        self.start_agent()
        self.stream = harness.Stream(self.dep, self.n, rate, injections)
        out = self.outcome
        started = self.mark('stream started')
        self.counter.start()
        self.stream.start()
        problem = None
        try:
            faults(self)
            try:
                self.stream.join(timeout=drain_timeout + self.n / rate)
            except AssertionError as err:
                problem = err  # counted and tabled first, raised below
            self.mark('stream sent')
            self.counter.wait_until(
                self.n - len(self.excluded), stall=stall,
                deadline=time.monotonic() + drain_timeout)
            time.sleep(3)  # a late redelivery would show up now
            self.mark('drained')
            rows = self.counter_rows_at_end = self.counter.rows()
            if self.broker is not None and self.broker.is_running():
                self.queued = self._left_in_queues()
                ready, _unacked = self.queued.pop(QUARANTINE, (0, 0))
                self.quarantined = ready
            self.ledgers = self._scrape_ledgers()
        finally:
            self.counter.stop()
        agent = self.ledgers.get(self.AGENT)
        if agent is not None and self._ran_whole(self.AGENT):
            out.notes += (f'agent received '
                          f'{ledger.received_notifications(agent)} '
                          f'notifications ')
        if self.stream.sent < self.n:
            out.notes += f'sender sent only {self.stream.sent} '
        if self.stream.resent:
            out.notes += (f"sender's Notifier dropped {self.stream.resent}, "
                          f'sent again ')
        out.count(rows, [s for s in range(self.n) if s not in self.excluded])
        out.seconds = round(time.monotonic() - started, 1)
        for name in (self.COLLECTOR, self.AGENT):
            daemon = self.current(name)
            if not daemon.alive():
                out.dead.append(name)
        for daemon in self.dep.daemons:
            size = daemon.log_path.stat().st_size
            out.log_bytes[daemon.log_path.name] = size
        OUTCOMES.append(out)
        if problem is not None:
            raise problem
        return out

    def normal_rate(self) -> float:
        """Rows/s stored between the stream's start (+3 s) and the first
        fault."""
        start = self.marks['stream started'] + 3
        return self.counter.rate(start, self.marks['first fault'])

    def assert_nothing_lost_or_doubled(self, quarantined: int = 0) -> None:
        """... and exactly ``quarantined`` messages in the quarantine
        queue (the poison ones)."""
        out = self.outcome
        if self.queued:
            self._left_after_stopping()
        problems = []
        if self.quarantined != quarantined:
            problems.append(f'{self.quarantined} message(s) in the '
                            f'quarantine queue, {quarantined} expected')
        if out.lost:
            problems.append(f'{out.lost} of {out.n} samples not stored '
                            f'(by path: {out.lost_by_path})')
        if out.duplicated:
            problems.append(f'{out.duplicated} duplicated rows')
        if self.queued:
            problems.append(f'messages left in the queues: {self.queued}')
        if out.dead:
            problems.append(f'dead at the end: {out.dead}')
        problems += self.ledger_problems()
        big = {k: v for k, v in out.log_bytes.items()
               if v > harness.MAX_LOG_BYTES}
        if big:
            problems.append(f'log volume above {harness.MAX_LOG_BYTES} B: '
                            f'{big}')
        assert not problems, (
            f'{self.name}: ' + '; '.join(problems)
            + f' (logs in {self.dep.workdir})'
            + (self.running_diagnosis or self.diagnosis()))

    def _ran_whole(self, name: str) -> bool:
        """``name`` ran the whole scenario in one process."""
        return sum(1 for d in self.dep.daemons if d.name == name) == 1

    def _scrape_ledgers(self) -> dict[str, ledger.Ledger]:
        found = {}
        for name, port in self.dep.health_ports.items():
            if self.current(name).alive():
                found[name] = ledger.Ledger.scrape(port)
        return found

    def ledger_problems(self) -> list[str]:
        """The ledger rules (:mod:`.ledger`) after the drain."""
        whole = {name: found for name, found in self.ledgers.items()
                 if self._ran_whole(name)}
        found = ledger.problems(whole.get(self.COLLECTOR),
                                whole.get(self.AGENT), self.outcome.stored)
        for name, part in self.ledgers.items():
            if name not in whole and part.unsettled():
                found.append(f'{name} (restarted) unsettled after the '
                             f'drain: {part.unsettled()}')
        return found

    def diagnosis(self) -> str:
        """What the daemons were doing at the end (for a failure's
        message: CI keeps nothing else): the consumers of the queues that
        still hold messages and, from a SIGUSR2 stack dump
        (``telemeter.service.enable_stack_dumps``), the threads of each
        daemon that were inside telemeter's code."""
        parts = []
        if self.queued and self.broker is not None \
                and self.broker.is_running():
            out = self.broker.rabbitmqctl(
                'list_queues', '-q', '-p', self.vhost, '--formatter', 'json',
                'name', 'consumers')
            consumers = {q['name']: q['consumers']
                         for q in json.loads(out or '[]')
                         if q['name'] in self.queued}
            parts.append(f'consumers of those queues: {consumers}')
            out = self.broker.rabbitmqctl(
                'list_channels', '-q', '--formatter', 'json', 'vhost',
                'name', 'consumer_count', 'messages_unacknowledged')
            holding = [(c['name'], c['consumer_count'],
                        c['messages_unacknowledged'])
                       for c in json.loads(out or '[]')
                       if c['vhost'] == self.vhost
                       and c['messages_unacknowledged']]
            # A holder with 0 consumers is a channel left open by a
            # listener that stopped; one with consumers is a live one.
            parts.append(f'channels holding unacknowledged messages '
                         f'(name, consumers, unacked): {holding}')
            out = self.broker.rabbitmqctl(
                'list_consumers', '-q', '-p', self.vhost, '--formatter',
                'json', 'queue_name', 'channel_pid', 'consumer_tag',
                'prefetch_count')
            parts.append('consumers (queue, channel, tag, prefetch): '
                         + str([(c['queue_name'], c['channel_pid'],
                                 c['consumer_tag'], c['prefetch_count'])
                                for c in json.loads(out or '[]')
                                if c['queue_name'] in self.queued]))
        for name in (self.AGENT, self.COLLECTOR):
            daemon = self.current(name)
            if daemon.alive():
                parts.append(f'{name} threads: '
                             + harness.telemeter_stacks(daemon))
        return ''.join(f'\n  {p}' for p in parts)

    def _left_after_stopping(self) -> None:
        """Messages the queues still count once every daemon stopped.

        While consumers run, the unacknowledged column of ``list_queues``
        can be wrong for good: on quorum queues it went on counting 1-2
        messages after a consumer was SIGKILLed that no channel held
        (``list_channels``: none) and that were not there once the
        consumers were gone. So what is left while the daemons run is
        noted (with the diagnosis, taken now) and the daemons are stopped
        (this is the last check of a scenario):
        a delivery a consumer really held goes back to the queue as ready
        and is counted then; a message never consumed is counted too.
        """
        self.outcome.notes += (f'left in queues while running (ready, '
                               f'unacked): {self.queued} ')
        self.running_diagnosis = self.diagnosis()
        # In the data's order, as tools/run-local.sh stops them: what a
        # polling agent sent last is consumed before its consumers stop.
        for name in STOP_ORDER:
            for daemon in self.dep.daemons:
                if daemon.name == name and daemon.alive():
                    daemon.stop()
            if name == 'telemeter-polling':
                time.sleep(STATISTICS_INTERVAL)
        for daemon in self.dep.daemons:
            if daemon.alive():
                daemon.stop()
        time.sleep(STATISTICS_INTERVAL * 2)
        self.queued = self._left_in_queues(tries=1)
        self.queued.pop(QUARANTINE, None)
        self.outcome.notes += (f'after the daemons stopped: '
                               f'{self.queued or "nothing"} ')

    def _left_in_queues(self, tries: int = 3) -> dict:
        """Queue -> (ready, unacknowledged) of the scenario's queues that
        still hold messages after everything was stored; asked ``tries``
        times 5 s apart, so that settling in progress is not counted."""
        left: dict = {}
        for attempt in range(tries):
            if attempt:
                time.sleep(5)
            out = self.broker.rabbitmqctl(
                'list_queues', '-q', '-p', self.vhost, '--formatter', 'json',
                'name', 'messages_ready', 'messages_unacknowledged')
            left = {q['name']: (int(q['messages_ready']),
                                int(q['messages_unacknowledged']))
                    for q in json.loads(out or '[]')
                    if q['messages_ready'] or q['messages_unacknowledged']}
            if not left:
                break
        return left

    def log_count(self, name: str, text: str) -> int:
        """Occurrences of ``text`` in every log of daemon ``name``."""
        return sum(d.log().count(text) for d in self.dep.daemons
                   if d.name == name)

    def cleanup(self) -> None:
        self.dep.cleanup()
        self.counter.engine.dispose()


#: The quarantine queue (``[delivery] quarantine_queue``'s default; each
#: scenario has its own vhost).
QUARANTINE = 'telemeter.quarantine'
#: Seconds between the queue statistics a RabbitMQ node emits
#: (``collect_statistics_interval``, 5,000 ms by default).
STATISTICS_INTERVAL = 5
#: Daemons stopped in this order when the queues are checked at the end.
STOP_ORDER = ('telemeter-polling', Scenario.AGENT, Scenario.COLLECTOR)


def stop_for(service, seconds: float, scn: Scenario, label: str) -> None:
    """Stop ``service`` (data kept), keep it down ``seconds``, start it."""
    scn.mark(f'{label} stop')
    service.stop()
    down_at = time.monotonic()
    time.sleep(max(0.0, seconds - (time.monotonic() - down_at)))
    scn.mark(f'{label} start')
    service.start()
    scn.mark(f'{label} up')
