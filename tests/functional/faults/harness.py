"""Drive one fault scenario: a paced stream of N uniquely numbered samples
through the real daemons, faults injected while it flows, and an exact
count of what PostgreSQL ended up holding.

Two paths carry the stream, half of the samples each:

* **meters** - even sequence numbers: one OpenStack-style notification
  (``faults.tick``, priority ``info``) per sample, turned into the meter
  ``faults.notif`` by a meter definition of the deployment's ``meters.d``;
* **polled** - odd sequence numbers: ``telemetry.polling`` notifications
  (priority ``sample``) carrying :data:`POLL_BATCH` signed metering dicts
  of the meter ``faults.polled``, as the polling agent sends them (the
  ``_sample`` path).

Both go agent -> ``notifier://`` -> collector -> database dispatcher ->
PostgreSQL. The sample's volume is its sequence number, so the database is
counted by unique payload: a number missing is a lost sample, a number
stored twice a duplicate.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import gc
import json
import logging
import os
import re
import signal
import textwrap
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kombu
import sqlalchemy

from telemeter import messaging, sample
from telemeter.publisher import utils
from tests.functional import daemons
from tests.functional.faults import ledger

#: Samples per scenario; ``TELEMETER_FAULTS_N`` changes it.
N = int(os.environ.get('TELEMETER_FAULTS_N', '20000'))
#: Samples per ``telemetry.polling`` notification.
POLL_BATCH = 10
NOTIF_METER = 'faults.notif'
POLLED_METER = 'faults.polled'
#: A daemon log larger than this means a hot loop (debug is off).
MAX_LOG_BYTES = 5 * 1024 * 1024

METER_DEFINITIONS = f"""\
---
metric:
  - name: {NOTIF_METER}
    event_type: faults.tick
    type: gauge
    unit: tick
    volume: $.payload.seq
    resource_id: $.payload.resource
    project_id: $.payload.project
    user_id: $.payload.user
    metadata:
      path: $.payload.path
"""

PIPELINE = """\
sources:
  - name: faults
    meters: ["*"]
    sinks: [faults]
sinks:
  - name: faults
    publishers: ["notifier://"]
"""

# Events are not under test: no event type matches, so none is published.
EVENT_PIPELINE = """\
sources:
  - name: none
    events: ["faults.no-such-event"]
    sinks: [none]
sinks:
  - name: none
    publishers: ["notifier://"]
"""

BROKER_OPTIONS = {
    # telemeter's defaults: durable queues (telemeter.messaging.setup).
    'defaults': '',
    # oslo.messaging's own default, which loses queues on a restart.
    'transient': '[oslo_messaging_rabbit]\namqp_durable_queues = false\n',
    'quorum': '[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n',
}


_THREAD = re.compile(r'^(?:Current thread|Thread) (0x[0-9a-f]+)')
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+) '
                    r'in (?P<func>\S+)')


def telemeter_stacks(daemon: daemons.Daemon, wait: float = 1.0) -> str:
    """The threads of ``daemon``'s processes that are inside telemeter's
    code, each as its innermost frames, from the stack dump SIGUSR2 writes
    to the daemon's log."""
    offset = daemon.log_path.stat().st_size
    try:
        os.killpg(daemon.pid, signal.SIGUSR2)
    except ProcessLookupError:
        return 'gone'
    time.sleep(wait)
    with open(daemon.log_path, 'rb') as f:
        f.seek(offset)
        text = f.read().decode(errors='replace')
    threads: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if _THREAD.match(line):
            threads.append([])
        elif threads and (m := _FRAME.match(line)):
            threads[-1].append(
                (m['file'], f'{m["func"]}@{Path(m["file"]).name}:{m["line"]}'))
    ours = [' < '.join(where for _, where in frames[:6])
            for frames in threads
            if any('/telemeter/' in path for path, _ in frames)]
    return ' | '.join(ours) or f'{len(threads)} thread(s), none in telemeter'


class FaultDeployment(daemons.Deployment):
    """A :class:`~tests.functional.daemons.Deployment` set up for volume:
    debug off, only the database dispatcher (no per-batch file), the
    meter definition above and ``[collector] batch_size`` as given."""

    def __init__(self, workdir: Path, transport_url: str, database_url: str,
                 collector_batch: int = 1000, broker: str = 'defaults',
                 extra_conf: str = '', health: bool = True) -> None:
        self.collector_batch = collector_batch
        self.broker_conf = BROKER_OPTIONS[broker]
        #: Daemon name -> its /metrics and /healthz port; none with
        #: ``health=False`` (several daemons of a kind share the file).
        self.health_ports = {} if not health else {
            'telemeter-collector': ledger.free_port(),
            'telemeter-agent-notification': ledger.free_port()}
        super().__init__(workdir, transport_url, database_url=database_url,
                         pipeline=PIPELINE, extra_conf=extra_conf)
        self.event_pipeline_path.write_text(EVENT_PIPELINE)

    def write_config(self, extra_conf: str = '') -> None:
        meters_dir = self.workdir / 'meters.d'
        meters_dir.mkdir(exist_ok=True)
        (meters_dir / 'faults.yaml').write_text(METER_DEFINITIONS)
        self.config_path.write_text(textwrap.dedent(f"""\
            [DEFAULT]
            transport_url = {self.transport_url}
            host = {self.host}
            debug = false
            graceful_shutdown_timeout = 15
            pipeline_cfg_file = {self.pipeline_path}
            event_pipeline_cfg_file = {self.event_pipeline_path}
            meter_dispatchers = database
            event_dispatchers = database
            [oslo_messaging_notifications]
            topics = {self.notification_topic}
            [notification]
            notification_control_exchanges = telemeter
            [meter]
            meter_definitions_dirs = {meters_dir}
            [publisher_notifier]
            metering_topic = {self.metering_topic}
            event_topic = {self.event_topic}
            [publisher]
            telemetry_secret = {daemons.SECRET}
            [database]
            connection = {self.database_url}
            [polling]
            cfg_file = {self.polling_path}
            [collector]
            udp_address =
            batch_size = {self.collector_batch}
            """) + ledger.health_conf(self.health_ports)
            + self.broker_conf + textwrap.dedent(extra_conf))


def notif_payload(seq: int, **extra) -> dict:
    return {'seq': seq, 'resource': f'res-{seq % 50}', 'project': 'faults',
            'user': 'faults', 'path': 'meters', **extra}


def polled_sample(seq: int, resource: str | None = None,
                  metadata: dict | None = None) -> dict:
    """A signed metering dict as the polling agent sends it."""
    s = sample.Sample(
        POLLED_METER, 'gauge', 'tick', seq, 'faults', 'faults',
        resource if resource is not None else f'res-{seq % 50}',
        timestamp=datetime.datetime.utcnow().isoformat(),
        resource_metadata=metadata or {'path': 'polled'})
    return utils.meter_message_from_counter(s, daemons.SECRET)


def raw_notification(dep: FaultDeployment, priority, event_type: str,
                     payload: dict, message_id: str | None = None) -> None:
    """Publish a messagingv2 envelope with plain AMQP onto the agent's
    ``<topic>.info`` queue (its exchange and binding exist already), with
    ``priority`` as given - e.g. 3 or None, which no Notifier can send."""
    message = {'message_id': message_id or str(uuid.uuid4()),
               'publisher_id': 'faults',
               'event_type': event_type, 'priority': priority,
               'payload': payload, 'timestamp': str(
                   datetime.datetime.utcnow())}
    body = json.dumps({'oslo.version': '2.0',
                       'oslo.message': json.dumps(message)})
    url = dep.transport_url.replace('rabbit://', 'amqp://')
    with kombu.Connection(url) as conn:
        conn.Producer().publish(
            body, exchange='telemeter',
            routing_key=f'{dep.notification_topic}.info',
            content_type='application/json', delivery_mode=2,
            retry=True, retry_policy={'max_retries': 60,
                                      'interval_start': 1,
                                      'interval_step': 0,
                                      'interval_max': 1})


def sender_transport(dep: daemons.Deployment) -> Any:
    """A transport for a test's sender built from ``dep``'s configuration,
    reconnecting every second (oslo.messaging backs off up to 30 s): a
    stream resumes as soon as the broker is back, so recovery times
    measure telemeter, not the test's sender."""
    conf = dep.conf()
    transport = messaging.get_transport(conf, dep.transport_url, cache=False)
    for name, value in (('rabbit_retry_interval', 1),
                        ('rabbit_retry_backoff', 0),
                        ('rabbit_interval_max', 1)):
        conf.set_override(name, value, group='oslo_messaging_rabbit')
    return transport


#: oslo.messaging's Notifier logs what it gives up on here.
_NOTIFIER_LOG = 'oslo_messaging.notify.messaging'
RESEND_LIMIT = 30


def _collect_abandoned_sockets() -> None:
    """oslo.messaging can leave a connection's socket unclosed when its
    heartbeat thread reconnects (seen after a broker stop); collect it now,
    without the ResourceWarning, rather than in whichever later test the
    garbage collector happens to run (pytest.ini turns that into an
    error there)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ResourceWarning)
        gc.collect()


class _Drops(logging.Handler):
    """Counts the Notifier's "Could not send notification" records."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith('Could not send notification'):
            self.count += 1


class Stream:
    """Send samples 0..n-1 at ``rate`` samples/s from a thread.

    Notifications go through an oslo.messaging Notifier built from the
    deployment's own configuration (so with the same durable/quorum queue
    options an OpenStack service would have to use); while the broker is
    away the Notifier retries and the stream pauses. ``injections`` maps a
    sequence number to a callable run just before it is sent (poison).

    The Notifier logs and swallows an error it does not retry ("Could not
    send notification"): a publish that meets the broker while it shuts
    down can end so. Such a notification never reached the broker, so it
    cannot be telemeter's to lose; the stream counts it in
    :attr:`resent` and sends it again, as a service that cares would.
    """

    def __init__(self, dep: FaultDeployment, n: int, rate: float,
                 injections: dict[int, Callable[[], None]] | None = None):
        self.dep = dep
        self.n = n
        self.rate = rate
        self.injections = dict(injections or {})
        self.sent = 0
        #: Notifications the Notifier dropped and the stream sent again.
        self.resent = 0
        self._drops = _Drops()
        self.error: BaseException | None = None
        self.started = self.finished = self.last_sent_at = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='faults-stream')

    def start(self) -> None:
        self._thread.start()

    #: Seconds without any progress after which a late stream is failed.
    STALL_S = 60.0

    def join(self, timeout: float) -> None:
        """Wait ``timeout`` s for the whole stream, and beyond as long as
        the sender still advances (on a loaded machine the sender, not
        telemeter, is what falls behind its rate)."""
        self._thread.join(timeout)
        while self._thread.is_alive():
            before = self.sent
            self._thread.join(self.STALL_S)
            if self.sent == before:
                break
        if self._thread.is_alive():
            raise AssertionError(
                f'the stream sent only {self.sent} of {self.n} samples '
                f'within {timeout}s and made no progress for '
                f'{self.STALL_S:g}s since')
        if self.error is not None:
            raise AssertionError(f'the stream failed: {self.error!r}')

    def _run(self) -> None:
        try:
            self._send_all()
        except BaseException as exc:  # reported by join()
            self.error = exc

    def _send_all(self) -> None:
        # The sender's own oslo.messaging log (reconnections, retries).
        handler = logging.FileHandler(self.dep.workdir / 'sender.log')
        handler.setFormatter(logging.Formatter(
            '%(asctime)s %(levelname)s %(name)s %(message)s'))
        loggers = [logging.getLogger('oslo.messaging'),
                   logging.getLogger(_NOTIFIER_LOG)]
        for logger in loggers:
            logger.addHandler(handler)
        loggers[1].addHandler(self._drops)
        try:
            self._send_with_notifiers()
        finally:
            loggers[1].removeHandler(self._drops)
            for logger in loggers:
                logger.removeHandler(handler)
            handler.close()

    def _send(self, send: Callable[[], None]) -> None:
        """``send`` once, and again while the Notifier drops it."""
        for _ in range(RESEND_LIMIT):
            before = self._drops.count
            send()
            if self._drops.count == before:
                return
            self.resent += 1
            time.sleep(1)
        raise AssertionError(f'the Notifier dropped a notification '
                             f'{RESEND_LIMIT} times in a row')

    def _send_with_notifiers(self) -> None:
        transport = sender_transport(self.dep)
        topics = [self.dep.notification_topic]
        service = messaging.get_notifier(transport, 'compute.faults-host',
                                         driver='messagingv2', topics=topics)
        poller = messaging.get_notifier(transport, 'telemeter.polling',
                                        driver='messagingv2', topics=topics)
        self.started = due = time.monotonic()
        chunk = 2 * POLL_BATCH
        try:
            for first in range(0, self.n, chunk):
                seqs = range(first, min(first + chunk, self.n))
                for seq in seqs:
                    if seq in self.injections:
                        self.injections.pop(seq)()
                polled = []
                for seq in seqs:
                    if seq % 2 == 0:
                        self._send(functools.partial(
                            service.info, {}, 'faults.tick',
                            notif_payload(seq)))
                    else:
                        polled.append(polled_sample(seq))
                if polled:
                    self._send(functools.partial(
                        poller.sample, {}, 'telemetry.polling',
                        {'samples': polled}))
                self.sent = seqs[-1] + 1
                self.last_sent_at = time.monotonic()
                # Paced; after a pause (the Notifier waiting for the
                # broker) the stream resumes at its rate, no burst.
                due += len(seqs) / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -1:
                    due = time.monotonic()
        finally:
            self.finished = time.monotonic()
            transport.cleanup()
            _collect_abandoned_sockets()


class Counter:
    """Counts the stream's rows in PostgreSQL, and samples the total once a
    second from a thread (the time series behind 'seconds to recover')."""

    QUERY = sqlalchemy.text(
        'SELECT m.name, s.volume, count(*) FROM sample s '
        'JOIN meter m ON m.id = s.meter_id '
        'WHERE m.name IN (:a, :b) GROUP BY m.name, s.volume')
    TOTAL = sqlalchemy.text(
        'SELECT count(*) FROM sample s JOIN meter m ON m.id = s.meter_id '
        'WHERE m.name IN (:a, :b)')

    def __init__(self, database_url: str) -> None:
        self.engine = sqlalchemy.create_engine(
            database_url, poolclass=sqlalchemy.pool.NullPool)
        self.series: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='faults-counter')

    def total(self) -> int | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(self.TOTAL, {
                    'a': NOTIF_METER, 'b': POLLED_METER}).scalar_one()
        except sqlalchemy.exc.SQLAlchemyError:
            return None  # the database is down (a scenario stopped it)

    def rows(self) -> dict[int, int]:
        """Sequence number -> number of rows holding it."""
        with self.engine.connect() as conn:
            result = conn.execute(self.QUERY, {'a': NOTIF_METER,
                                               'b': POLLED_METER})
            return {int(volume): count for _, volume, count in result}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.engine.dispose()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = self.total()
            if total is not None:
                self.series.append((time.monotonic(), total))
            self._stop.wait(1.0)

    def last(self) -> int:
        return self.series[-1][1] if self.series else 0

    def wait_until(self, target: int, stall: float, deadline: float) -> None:
        """Until ``target`` rows, no progress for ``stall`` s, or the
        monotonic ``deadline``."""
        best, best_at = -1, time.monotonic()
        while time.monotonic() < deadline:
            total = self.total()
            if total is not None:
                if total >= target:
                    return
                if total > best:
                    best, best_at = total, time.monotonic()
            if time.monotonic() - best_at > stall:
                return
            time.sleep(1.0)

    def rate(self, start: float, end: float) -> float:
        """Rows stored per second between two monotonic times."""
        inside = [(t, c) for t, c in self.series if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] == inside[0][0]:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def recovery(self, since: float, normal: float, window: float = 5.0,
                 done: int | None = None) -> float | None:
        """Seconds after ``since`` until the storing rate over ``window``
        seconds reached 80 % of ``normal`` (or the total reached ``done``);
        None if it never did."""
        points = [(t, c) for t, c in self.series if t >= since]
        for i, (t0, c0) in enumerate(points):
            if done is not None and c0 >= done:
                return t0 - since
            for t1, c1 in points[i + 1:]:
                if t1 - t0 >= window:
                    if (c1 - c0) / (t1 - t0) >= 0.8 * normal:
                        return t1 - since
                    break
        return None


@dataclasses.dataclass
class Outcome:
    """What one scenario ended with (one row of the table)."""
    scenario: str
    n: int
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    recover_s: float | None = None
    lost_by_path: dict = dataclasses.field(default_factory=dict)
    dead: list = dataclasses.field(default_factory=list)
    log_bytes: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    notes: str = ''
    missing_sample: list = dataclasses.field(default_factory=list)

    def count(self, rows: dict[int, int], expected: range) -> None:
        wanted = set(expected)
        self.stored = sum(1 for seq in wanted if rows.get(seq, 0) > 0)
        self.lost = len(wanted) - self.stored
        self.duplicated = sum(c - 1 for seq, c in rows.items()
                              if c > 1 and seq in wanted)
        extra = sorted(seq for seq in rows if seq not in wanted)
        if extra:
            self.notes += f'rows outside the stream: {extra[:5]} '
        missing = sorted(seq for seq in wanted if rows.get(seq, 0) == 0)
        self.missing_sample = missing[:12]
        self.lost_by_path = {
            'meters': sum(1 for seq in missing if seq % 2 == 0),
            'polled': sum(1 for seq in missing if seq % 2 == 1)}

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
