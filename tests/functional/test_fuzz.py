"""Fuzzed input to the real daemons: nothing valid lost, nothing invalid
stored, no daemon dies or restarts, every rejection counted by reason.

``telemeter-agent-notification`` and ``telemeter-collector`` run as
processes (the worktree's code: ``PYTHONPATH`` is set to this checkout
for them) over the session's RabbitMQ into a fresh PostgreSQL database,
with ``[health] enabled`` so that their ledgers are read from
``/metrics``.

* Notifications: fuzzed bodies published raw with kombu on the agent's
  notification queues, interleaved with valid ``telemetry.polling``
  notifications carrying signed samples (agent -> ``notifier://`` ->
  collector -> PostgreSQL).
* UDP: fuzzed datagrams to the collector's UDP port, mixed with valid
  signed ones and replays of them.

The input is drawn from a seeded :class:`random.Random`, so a run is
repeatable. ``TELEMETER_FUZZ_COUNT`` sets the number of fuzzed messages
and datagrams (default :data:`DEFAULT_COUNT`; the issue's figure is
10,000), ``TELEMETER_FUZZ_VALID`` the valid ones (1,000) and
``TELEMETER_FUZZ_SEED`` the seed.
"""

from __future__ import annotations

import collections
import json
import os
import random
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kombu
import msgpack
import pytest
import sqlalchemy
from prometheus_client import parser

from telemeter import messaging, sample
from telemeter.publisher import udp as udp_publisher
from telemeter.publisher import utils
from tests.functional import daemons

REPO = Path(__file__).resolve().parents[2]

DEFAULT_COUNT = 10000
COUNT = int(os.environ.get('TELEMETER_FUZZ_COUNT', DEFAULT_COUNT))
VALID = int(os.environ.get('TELEMETER_FUZZ_VALID', 1000))
SEED = int(os.environ.get('TELEMETER_FUZZ_SEED', 20260512))

#: Meter names: the valid samples, and every sample a fuzzed message
#: carries (none of which may be stored).
VALID_METER = 'fuzz.valid'
BAD_METER = 'fuzz.bad'
TIMESTAMP = '2026-05-12T10:00:00.000000'
FIVE_MB = 5 * 1024 * 1024


# -- deployment ----------------------------------------------------------

def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def deployment(tmp_path, rabbit_url, postgresql_function_url, monkeypatch):
    # The daemons are the virtualenv's console scripts; make them import
    # this checkout's telemeter, whatever the editable install points at.
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get('PYTHONPATH', '').split(
            os.pathsep) if p]))
    ports = {'collector': _free_port(), 'notification': _free_port(),
             'udp': _free_port(socket.SOCK_DGRAM)}
    dep = daemons.Deployment(
        tmp_path / 'deployment', rabbit_url,
        database_url=postgresql_function_url,
        extra_conf=f"""\
            [DEFAULT]
            debug = false
            [collector]
            udp_address = 127.0.0.1
            udp_port = {ports['udp']}
            [health]
            enabled = true
            collector_port = {ports['collector']}
            notification_port = {ports['notification']}
            """)
    dep.ports = ports
    dep.run('telemeter-dbsync')
    yield dep
    dep.cleanup()
    messaging.cleanup()


def _start(dep, name: str, ready: str, port: int) -> daemons.Daemon:
    daemon = dep.start(name)
    daemon.wait_for_log(ready)
    daemon.wait_for_log(f'Health endpoints on http://127.0.0.1:{port}')
    return daemon


def _metrics(port: int) -> list:
    url = f'http://127.0.0.1:{port}/metrics'
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return [s for family in parser.text_string_to_metric_families(text)
            for s in family.samples]


def _value(found: list, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(s.value for s in found
               if s.name == name and wanted <= set(s.labels.items()))


def _worker_pid(found: list) -> int:
    [info] = [s for s in found if s.name == 'telemeter_worker_info']
    return int(info.labels['pid'])


def _children(pid: int) -> set[int]:
    """Process ids whose parent is ``pid``."""
    found = set()
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
        except OSError:
            continue
        if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _wait_until(predicate: Callable[[], Any], timeout: float, what: str,
                interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f'{what} not reached within {timeout}s')


def _stored(dep) -> dict[str, collections.Counter]:
    """message_id -> how many rows, per meter, straight from the table."""
    engine = sqlalchemy.create_engine(dep.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                'SELECT m.name, s.message_id FROM sample s '
                'JOIN meter m ON m.id = s.meter_id').fetchall()
            events = conn.exec_driver_sql(
                'SELECT t."desc", e.message_id FROM event e '
                'JOIN event_type t ON t.id = e.event_type_id').fetchall()
    finally:
        engine.dispose()
    by_meter: dict[str, collections.Counter] = collections.defaultdict(
        collections.Counter)
    for name, message_id in rows:
        if isinstance(message_id, bytes | memoryview):
            message_id = bytes(message_id).decode()
        by_meter[name][message_id] += 1
    for event_type, message_id in events:
        by_meter[f'<event {event_type}>'][message_id] += 1
    return by_meter


class Bounds:
    """CPU time and log growth of a daemon and its workers."""

    def __init__(self, daemon: daemons.Daemon) -> None:
        self.daemon = daemon

    def cpu(self) -> float:
        """CPU seconds of the master and its workers so far."""
        tick = os.sysconf('SC_CLK_TCK')
        total = 0
        for pid in {self.daemon.pid} | _children(self.daemon.pid):
            try:
                fields = Path(f'/proc/{pid}/stat').read_text().rsplit(
                    ')', 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / tick

    def log_size(self) -> int:
        return self.daemon.log_path.stat().st_size


# -- samples ---------------------------------------------------------------

def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _signed(rng: random.Random, name: str, index: int,
            secret: str = daemons.SECRET, **fields: Any) -> dict:
    s = sample.Sample(name, 'gauge', 'thing', float(index), 'u', 'p',
                      f'r-{index % 97}', timestamp=TIMESTAMP,
                      resource_metadata={'index': index}, id=_uuid(rng))
    message = utils.meter_message_from_counter(s, secret)
    if fields:
        message.update(fields)
        message['message_signature'] = utils.compute_signature(
            message, secret)
    return message


# -- notifications -----------------------------------------------------------

def _inner(rng: random.Random, payload: Any, **fields: Any) -> dict:
    message = {'message_id': _uuid(rng), 'publisher_id': 'telemeter.polling',
               'event_type': 'telemetry.polling', 'priority': 'SAMPLE',
               'payload': payload, 'timestamp': TIMESTAMP,
               '_unique_id': uuid.UUID(int=rng.getrandbits(128)).hex,
               '_context_user': None, '_context_project': None}
    message.update(fields)
    return message


def _envelope(inner: Any) -> bytes:
    text = inner if isinstance(inner, str) else json.dumps(inner)
    return json.dumps({'oslo.version': '2.0', 'oslo.message': text}).encode()


def _polling(rng: random.Random, samples: Any, **fields: Any) -> bytes:
    return _envelope(_inner(rng, {'samples': samples}, **fields))


def _bad_sample(rng: random.Random, i: int, **fields: Any) -> dict:
    return _signed(rng, f'{BAD_METER}.{i}', i, **fields)


def _deep(depth: int) -> str:
    return '[' * depth + ']' * depth


#: What the agent does with a fuzzed message.
MALFORMED = 'malformed'          # quarantined undecoded
HANDLER_ERROR = 'handler_error'  # the _sample handler raised; dropped
IGNORED = 'ignored'              # acknowledged, no handler took it
INVALID_VOLUME = 'invalid_volume'  # dropped by the pipeline
UNSTORABLE = 'unstorable'        # dropped by the collector's storage
EVENT = 'event'                  # made into an event, stored
EVENT_BAD_ID = 'event_bad_message_id'
EVENT_BAD_TIMESTAMP = 'event_bad_timestamp'

Case = tuple[bytes, str, str]  # body, routing priority, expected outcome
Builder = Callable[[], Case]


def _malformed_cases(rng: random.Random, i: int) -> list[Builder]:
    def valid() -> bytes:
        return _polling(rng, [_bad_sample(rng, i)])

    def inner_text() -> str:
        return json.dumps(_inner(rng, {'samples': [_bad_sample(rng, i)]}))

    def cut(text):
        return text[:rng.randint(1, len(text) - 1)]

    def garbage() -> bytes:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
    cases: list[Callable[[], bytes]] = [
        # Not JSON at all, not UTF-8, cut short, empty.
        lambda: b'{not json ' + str(i).encode(),
        lambda: b'\xff\xfe\x00' + garbage() + b'\xc3\x28',
        lambda: cut(valid()),
        lambda: b'',
        # JSON, but not an object.
        lambda: rng.choice([b'[1, 2]', b'"text"', b'42', b'null', b'true']),
        # A broken oslo.message string, or one of the wrong type.
        lambda: json.dumps({'oslo.version': '2.0',
                            'oslo.message': cut(inner_text())}).encode(),
        lambda: json.dumps({'oslo.version': '2.0', 'oslo.message': rng.choice(
            [5, None, [1], {'priority': 'sample'}, True])}).encode(),
        lambda: json.dumps({'oslo.version': '2.0', 'oslo.message': rng.choice(
            ['[1]', '"x"', '3', 'null'])}).encode(),
        lambda: json.dumps({'oslo.version': rng.choice(['3.0', 1, '', None]),
                            'oslo.message': inner_text()}).encode(),
        # priority of the wrong type or value, or missing.
        lambda: _envelope(_inner(rng, {'samples': [_bad_sample(rng, i)]},
                                 priority=rng.choice([3, None, ['sample'], {},
                                                      True, 1.5, 'loud',
                                                      '']))),
        lambda: _envelope({k: v for k, v in _inner(
            rng, {'samples': [_bad_sample(rng, i)]}).items()
            if k != 'priority'}),
        # 10,000 levels of nesting: the body, oslo.message, the payload.
        lambda: _deep(10000).encode(),
        lambda: _envelope(_deep(10000)),
        lambda: _envelope(json.dumps(_inner(rng, None))[:-1] + ', "x": '
                          + _deep(10000) + '}'),
    ]
    return [lambda body=body: (body(), rng.choice(['sample', 'info']),
                               MALFORMED)
            for body in cases]


def _handler_error_cases(rng: random.Random, i: int) -> list[Builder]:
    def missing() -> dict:
        whole = _bad_sample(rng, i)
        for key in rng.sample(sorted(
                k for k in whole if k not in (
                    'source', 'message_signature', 'message_id',
                    'monotonic_time')), rng.randint(1, 3)):
            del whole[key]
        return whole
    cases: list[Callable[[], bytes]] = [
        # payload not a dict, or no samples in it.
        lambda: _envelope(_inner(rng, rng.choice(
            ['x', 3, None, [_bad_sample(rng, i)], True]))),
        lambda: _envelope(_inner(rng, {'no-samples': [_bad_sample(rng, i)]})),
        # samples not a list of complete metering dicts; a good-looking
        # sample before the bad one is not stored either (all or none).
        lambda: _polling(rng, rng.choice(['x', 5, None,
                                          {'a': _bad_sample(rng, i)}])),
        lambda: _polling(rng, [_bad_sample(rng, i),
                               rng.choice([3, 'x', None, []])]),
        lambda: _polling(rng, [_bad_sample(rng, i), missing()]),
    ]
    return [lambda body=body: (body(), 'sample', HANDLER_ERROR)
            for body in cases]


def _ignored_cases(rng: random.Random, i: int) -> list[Builder]:
    cases: list[Callable[[], bytes]] = [
        # event_type not a string, or not one the handler takes.
        lambda: _polling(rng, [_bad_sample(rng, i)], event_type=rng.choice(
            [3, None, ['telemetry.polling'], {'a': 1}, 1.5,
             'fuzz.unknown.event'])),
        # A priority no handler takes (events are made of info and
        # error notifications).
        lambda: _polling(rng, [_bad_sample(rng, i)], priority=rng.choice(
            ['audit', 'debug', 'WARN', 'critical'])),
        # Nothing in it.
        lambda: _polling(rng, []),
    ]
    return [lambda body=body: (body(), 'info', IGNORED) for body in cases]


def _event_cases(rng: random.Random, i: int) -> list[Builder]:
    def event(**fields: Any) -> bytes:
        return _polling(rng, [_bad_sample(rng, i)], priority=rng.choice(
            ['INFO', 'error']), event_type=f'fuzz.event.{i % 5}', **fields)
    return [
        # Well formed: the catch-all event definition makes an event of
        # it (its samples go nowhere: not telemetry.polling).
        lambda: (event(), 'info', EVENT),
        lambda: (lambda bad: (event(message_id=bad), 'info',
                              f'{EVENT_BAD_ID}:{type(bad).__name__}'))(
            rng.choice([3, None, ['x'], {'a': 1}])),
        lambda: (event(timestamp=rng.choice([5, 'garbage', None, []])),
                 'info', EVENT_BAD_TIMESTAMP),
    ]


def _dropped_sample_cases(rng: random.Random, i: int) -> list[Builder]:
    return [
        lambda: (_polling(rng, [_bad_sample(rng, i, counter_volume='abc')]),
                 'sample', INVALID_VOLUME),
        lambda: (_polling(rng, [_bad_sample(rng, i,
                                            resource_id='r\x00nul')]),
                 'sample', UNSTORABLE),
    ]


def _huge_cases(rng: random.Random) -> list[Case]:
    junk = 'x' * FIVE_MB
    return [
        (_envelope(_inner(rng, {'junk': junk})), 'sample', HANDLER_ERROR),
        (_polling(rng, [_bad_sample(rng, -1)], priority=7,
                  junk=junk), 'sample', MALFORMED),
        (b'{"oslo.version": "2.0", "oslo.message": "' + junk.encode(),
         'sample', MALFORMED),
    ]


def notification_fuzz(rng: random.Random, count: int) -> list[Case]:
    """``count`` fuzzed notifications (three of them 5 MB)."""
    families = [(_malformed_cases, 5), (_handler_error_cases, 3),
                (_ignored_cases, 1), (_dropped_sample_cases, 1),
                (_event_cases, 1)]
    cases = _huge_cases(rng)
    i = 0
    while len(cases) < count:
        family = rng.choices([f for f, _ in families],
                             [w for _, w in families])[0]
        cases.append(rng.choice(family(rng, i))())
        i += 1
    return cases[:count]


def test_fuzzed_notifications(deployment, rabbit_admin):
    dep = deployment
    rng = random.Random(SEED)
    ports = dep.ports
    collector = _start(dep, 'telemeter-collector',
                       'Collector listening on topic', ports['collector'])
    agent = _start(dep, 'telemeter-agent-notification',
                   'Notification agent listening', ports['notification'])
    pids = {name: _worker_pid(_metrics(ports[name]))
            for name in ('collector', 'notification')}
    bounds = {'collector': Bounds(collector), 'notification': Bounds(agent)}
    cpu_before = {k: b.cpu() for k, b in bounds.items()}
    log_before = {k: b.log_size() for k, b in bounds.items()}

    fuzz = notification_fuzz(rng, COUNT)
    valid: dict[str, dict] = {}
    stream: list[Case] = []
    for n in range(VALID):
        message = _signed(rng, VALID_METER, n)
        valid[message['message_id']] = message
        stream.append((_polling(rng, [message]), 'sample', 'valid'))
    stream += fuzz
    rng.shuffle(stream)
    expected = collections.Counter(outcome for _, _, outcome in stream)

    started = time.monotonic()
    with kombu.Connection(dep.transport_url.replace('rabbit://', 'amqp://')
                          ) as conn:
        producer = conn.Producer()
        for body, priority, _ in stream:
            producer.publish(body, exchange='telemeter',
                             routing_key=f'{dep.notification_topic}.'
                                         f'{priority}',
                             content_type='application/json',
                             content_encoding='utf-8', serializer=None)
    published = time.monotonic() - started

    def settled():
        ag = _metrics(ports['notification'])
        col = _metrics(ports['collector'])
        done = (_value(ag, 'telemeter_received_total',
                       stage='listener:0') >= len(stream)
                and _value(ag, 'telemeter_unsettled') == 0
                and _value(col, 'telemeter_unsettled') == 0
                and _value(col, 'telemeter_dispatcher_taken_total',
                           stage='dispatcher:database', kind='sample')
                >= VALID + expected[UNSTORABLE])
        return (ag, col) if done else None
    ag, col = _wait_until(settled, 600, 'every notification handled')
    handled = time.monotonic() - started
    cpu_done = {k: b.cpu() for k, b in bounds.items()}
    time.sleep(5)  # idle: anything looping would show now
    ag, col = _metrics(ports['notification']), _metrics(ports['collector'])
    cpu_idle = {k: b.cpu() - cpu_done[k] for k, b in bounds.items()}
    stored = _stored(dep)

    def a(name, **labels):
        return _value(ag, f'telemeter_{name}', **labels)

    def c(name, **labels):
        return _value(col, f'telemeter_{name}', **labels)
    quarantine = rabbit_admin.list_queues().get(dep.quarantine_queue)
    report = {
        'sent': dict(expected), 'publish_s': round(published, 1),
        'handled_s': round(handled, 1),
        'cpu_s': {k: round(cpu_done[k] - cpu_before[k], 1)
                  for k in bounds},
        'cpu_idle_5s': cpu_idle,
        'log_bytes': {k: b.log_size() - log_before[k]
                      for k, b in bounds.items()},
        'agent': {
            'received': a('received_total', stage='listener:0'),
            'acknowledged': a('acknowledged_total', stage='listener:0'),
            'malformed': a('malformed_total', stage='listener:0'),
            'quarantined': a('quarantined_total', stage='listener:0'),
            'requeued': a('requeued_total', stage='listener:0'),
            'unhandled': a('dropped_total', stage='listener:0',
                           reason='unhandled'),
            'handler_error': {s.labels['stage']: s.value for s in ag
                              if s.name == 'telemeter_dropped_total'
                              and s.labels.get('reason')
                              == 'handler_error'},
            'invalid_volume': a('dropped_total', reason='invalid_volume'),
            'produced': a('produced_total', kind='sample'),
        },
        'collector': {
            'unstorable': c('dropped_total', reason='unstorable'),
            'stored': c('stored_total', stage='dispatcher:database'),
            'signature': c('dropped_total', stage='bus',
                           reason='signature'),
            'quarantined': c('quarantined_total'),
        },
        'quarantine_queue': quarantine,
        'stored': {k: sum(v.values()) for k, v in stored.items()},
    }
    print('fuzz report:', json.dumps(report, indent=1))

    # All the valid samples stored exactly once, nothing else; the
    # well-formed info/error notifications became events (the catch-all
    # definition); one without a string message id is refused by the
    # agent (no event could be told apart from its redelivery).
    assert dict(stored[VALID_METER]) == dict.fromkeys(valid, 1)
    assert {k for k in stored if not k.startswith('<event')} == {
        VALID_METER}, report['stored']
    events = collections.Counter()
    for key, ids in stored.items():
        if key.startswith('<event'):
            events.update(ids)
    assert None not in events
    assert sum(events.values()) == len(events) == expected[EVENT]
    bad_ids = sum(expected[f'{EVENT_BAD_ID}:{t}']
                  for t in ('NoneType', 'int', 'list', 'dict'))
    # Handlers' failures are acknowledged and copied to the quarantine
    # (no message here fails in two handlers).
    rejected = expected[HANDLER_ERROR] + expected[EVENT_BAD_TIMESTAMP] + (
        bad_ids)

    # Every rejection counted by its reason.
    assert a('received_total', stage='listener:0') == len(stream)
    assert a('acknowledged_total', stage='listener:0') == len(stream)
    assert a('requeued_total', stage='listener:0') == 0
    assert a('malformed_total', stage='listener:0') == expected[MALFORMED]
    assert a('quarantined_total', stage='listener:0') == (
        expected[MALFORMED] + rejected)
    assert quarantine == expected[MALFORMED] + rejected
    assert a('dropped_total', stage='handler:TelemetryIpc',
             reason='handler_error') == expected[HANDLER_ERROR]
    assert a('dropped_total', stage='handler:EventsNotificationEndpoint',
             reason='handler_error') == (
        expected[EVENT_BAD_TIMESTAMP] + bad_ids)
    assert a('dropped_total', reason='handler_error') == rejected
    assert a('dropped_total', reason='invalid_volume') == (
        expected[INVALID_VOLUME])
    assert a('produced_total', stage='handler:TelemetryIpc') == (
        VALID + expected[INVALID_VOLUME] + expected[UNSTORABLE])
    assert c('dropped_total', stage='storage:database', kind='sample',
             reason='unstorable') == expected[UNSTORABLE]
    assert c('dropped_total', stage='storage:database', kind='event',
             reason='unstorable') == 0
    assert c('stored_total', stage='dispatcher:database',
             kind='sample') == VALID
    assert c('stored_total', stage='dispatcher:database',
             kind='event') == expected[EVENT]
    assert c('dropped_total', stage='bus', reason='signature') == 0
    assert c('quarantined_total') == 0

    # No daemon died, no worker was restarted.
    assert collector.alive() and agent.alive()
    assert {name: _worker_pid(found) for name, found in
            (('collector', col), ('notification', ag))} == pids
    assert pids['collector'] in _children(collector.pid)
    assert pids['notification'] in _children(agent.pid)
    # Bounded: no busy loop once idle, and the logs grow by at most a
    # few lines per fuzzed message (one ERROR line of at most ~200
    # characters of body for a malformed one, plus the quarantine line;
    # a handler error's traceback).
    assert all(v < 0.5 for v in cpu_idle.values()), cpu_idle
    assert report['log_bytes']['notification'] < 2048 * len(fuzz)
    assert report['log_bytes']['collector'] < 256 * len(fuzz)


# -- UDP -----------------------------------------------------------------


#: What the collector's UDP receiver does with a datagram.
UNDECODABLE = 'undecodable'
SIGNATURE = 'signature'
REPLAY = 'replay'
UDP_UNSTORABLE = 'unstorable'


def _deep_list(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _udp_fuzz_cases(rng: random.Random, i: int, replayable: list[bytes]
                    ) -> list[Callable[[], tuple[bytes, str]]]:
    def good() -> dict:
        return _bad_sample(rng, i)

    def garbage(size: int) -> bytes:
        return bytes(rng.getrandbits(8) for _ in range(size))

    def cut() -> bytes:
        packed = udp_publisher.pack(good())
        return packed[:rng.randint(1, len(packed) - 1)]

    def tampered() -> dict:
        message = good()
        return dict(message, counter_volume=message['counter_volume'] + 1)

    def unsigned() -> dict:
        return {k: v for k, v in good().items() if k != 'message_signature'}
    pack = udp_publisher.pack
    cases = [
        # Random bytes: undecodable unless they happen to be msgpack of
        # something, which is then not a signed dict (see _classify).
        lambda: (garbage(rng.randint(1, 2000)), UNDECODABLE),
        lambda: (b'\xc1' + garbage(rng.randint(1, 2000)), UNDECODABLE),
        lambda: (cut(), UNDECODABLE),
        lambda: (b'', UNDECODABLE),
        lambda: (garbage(60000), UNDECODABLE),
        # msgpack of the wrong shape.
        lambda: (msgpack.packb(rng.choice(
            [[good()], 3, 'text', None, 1.5, b'bin', [1, {'a': 2}],
             msgpack.ExtType(7, b'x')]), use_bin_type=True), SIGNATURE),
        lambda: (msgpack.packb({'counter_name': 'x'}), SIGNATURE),
        # What the signature rule raised on (fixed in collector/udp.py).
        lambda: (msgpack.packb({b'bytes-key': 1, **good()},
                               use_bin_type=True), SIGNATURE),
        lambda: (msgpack.packb(dict(good(), resource_metadata=_deep_list(
            600)), use_bin_type=True), SIGNATURE),
        # Forged, tampered, unsigned, signature of the wrong type.
        lambda: (pack(_bad_sample(rng, i, secret='not-the-secret')),
                 SIGNATURE),
        lambda: (pack(tampered()), SIGNATURE),
        lambda: (pack(unsigned()), SIGNATURE),
        lambda: (pack(dict(good(), message_signature=rng.choice(
            [5, None, ['x'], {'a': 'b'}, 'é', b'\xff']))), SIGNATURE),
        # Signed right, but a value the database refuses.
        lambda: (pack(_bad_sample(rng, i, resource_id='r\x00nul')),
                 UDP_UNSTORABLE),
        lambda: (pack(_bad_sample(rng, i, counter_volume='abc')),
                 UDP_UNSTORABLE),
    ]
    if replayable:
        cases.append(lambda: (rng.choice(replayable), REPLAY))
    return cases


#: Datagrams sent before waiting for the receiver to have them all.
CHUNK = 200


def _udp_drops(port: int) -> int:
    """Datagrams the kernel dropped on the UDP socket bound to ``port``
    (receive buffer full)."""
    for line in Path('/proc/net/udp').read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(':')[1], 16) == port:
            return int(fields[-1])
    return 0


def _classify(data: bytes, outcome: str) -> str:
    """Random bytes may be valid msgpack; then they are not a signed
    dict. Decide as msgpack does."""
    if outcome != UNDECODABLE:
        return outcome
    try:
        msgpack.unpackb(data, raw=False)
    except Exception:
        return UNDECODABLE
    return SIGNATURE


def test_fuzzed_datagrams(deployment):
    dep = deployment
    rng = random.Random(SEED + 1)
    port = dep.ports['collector']
    collector = _start(dep, 'telemeter-collector',
                       'Collector listening on topic', port)
    collector.wait_for_log('UDP receiver bound to 127.0.0.1')
    pid = _worker_pid(_metrics(port))
    bounds = Bounds(collector)
    cpu_before, log_before = bounds.cpu(), bounds.log_size()

    valid: dict[str, bytes] = {}
    stream: list[tuple[bytes, str]] = []
    for n in range(VALID):
        message = _signed(rng, VALID_METER, n)
        valid[message['message_id']] = udp_publisher.pack(message)
        stream.append((valid[message['message_id']], 'valid'))
    rng.shuffle(stream)
    # Replays are of valid datagrams sent earlier in the stream.
    fuzz_at = sorted(rng.randrange(len(stream) + 1) for _ in range(COUNT))
    mixed: list[tuple[bytes, str]] = []
    position = 0
    sent_valid: list[bytes] = []
    for i, at in enumerate(fuzz_at):
        mixed.extend(stream[position:at])
        sent_valid.extend(d for d, _ in stream[position:at])
        position = max(position, at)
        data, outcome = rng.choice(_udp_fuzz_cases(rng, i, sent_valid))()
        mixed.append((data, _classify(data, outcome)))
    mixed.extend(stream[position:])
    expected = collections.Counter(outcome for _, outcome in mixed)

    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for n in range(0, len(mixed), CHUNK):
            for data, _ in mixed[n:n + CHUNK]:
                sock.sendto(data, ('127.0.0.1', dep.ports['udp']))
            # Flow control: what the kernel drops when the socket buffer
            # is full is UDP's, not telemeter's, and would make the counts
            # vary from run to run.
            _wait_until(lambda n=n: _value(
                _metrics(port), 'telemeter_received_total', stage='udp')
                >= min(n + CHUNK, len(mixed)), 60,
                f'{n + CHUNK} datagrams received', interval=0.02)
    sent = time.monotonic() - started

    def settled():
        found = _metrics(port)
        done = (_value(found, 'telemeter_received_total', stage='udp')
                >= len(mixed)
                and _value(found, 'telemeter_unsettled', stage='udp') == 0)
        return found if done else None
    found = _wait_until(settled, 300, 'every datagram handled')
    handled = time.monotonic() - started
    cpu_done = bounds.cpu()
    time.sleep(3)
    cpu_idle = bounds.cpu() - cpu_done
    stored = _stored(dep)

    def c(name, **labels):
        return _value(found, f'telemeter_{name}', **labels)
    report = {
        'sent': dict(expected), 'send_s': round(sent, 1),
        'handled_s': round(handled, 1),
        'cpu_s': round(cpu_done - cpu_before, 1), 'cpu_idle_3s': cpu_idle,
        'log_bytes': bounds.log_size() - log_before,
        'kernel_drops': _udp_drops(dep.ports['udp']),
        'udp': {s.labels.get('reason') or s.name: s.value for s in found
                if s.labels.get('stage') == 'udp'},
        'storage': {f"{s.name} {s.labels.get('reason', '')}".strip():
                    s.value for s in found
                    if s.labels.get('stage') in ('storage:database',
                                                 'dispatcher:database')
                    and s.labels.get('kind') == 'sample'},
        'stored': {k: sum(v.values()) for k, v in stored.items()},
    }
    print('fuzz report:', json.dumps(report, indent=1))

    # Every valid sample stored once (replays included), nothing else.
    assert dict(stored[VALID_METER]) == dict.fromkeys(valid, 1)
    assert set(stored) == {VALID_METER}, report['stored']

    # Counted by reason.
    assert c('received_total', stage='udp') == len(mixed)
    assert c('dropped_total', stage='udp', reason='undecodable') == (
        expected[UNDECODABLE])
    assert c('dropped_total', stage='udp', reason='signature') == (
        expected[SIGNATURE])
    assert c('dropped_total', stage='udp', reason='overflow') == 0
    assert c('dropped_total', stage='udp', reason='dispatch_failed') == 0
    dispatched = VALID + expected[REPLAY] + expected[UDP_UNSTORABLE]
    assert c('dispatched_total', stage='udp') == dispatched
    assert c('dispatcher_taken_total', stage='dispatcher:database') == (
        dispatched)
    assert c('dropped_total', stage='storage:database',
             reason='unstorable') == expected[UDP_UNSTORABLE]
    # A replay counts as stored again; the table holds it once.
    assert c('stored_total', stage='dispatcher:database') == (
        VALID + expected[REPLAY])

    assert collector.alive()
    assert _worker_pid(found) == pid
    assert pid in _children(collector.pid)
    assert cpu_idle < 0.5
    # One WARNING line (at most ~200 characters of content) per rejected
    # datagram.
    assert report['log_bytes'] < 512 * COUNT
