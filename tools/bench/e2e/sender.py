"""The sender process (``e2e_bench.py _sender ...``): offers the load on
the bus and reports its counts as one JSON line a second on stdout."""

from __future__ import annotations

import argparse
import collections
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .accounting import first_seq, merge_ranges
from .notification_plan import (
    DEFAULT_PEER_DIR,
    load_peer_send,
    mix_entries,
    renumber_polled,
    routed_entry,
    vary_payload,
)
from .packaged import POLLING_BATCH, POLLING_EVENT_TYPE, POLLING_PUBLISHER_ID
from .polling_load import PollingLoad, make_instances, polling_payload


class SendErrors(logging.Handler):
    """Counts the errors oslo.messaging's Notifier logs (it never raises
    on a failed send)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    @classmethod
    def install(cls) -> SendErrors:
        """A counter of the errors oslo.messaging logs from now on."""
        handler = cls()
        logging.getLogger('oslo_messaging').addHandler(handler)
        return handler

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class Pacer:
    """Waits for the next slot of a steady rate (None: no waiting)."""

    def __init__(self, per_second: float | None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.clock = clock
        self.sleep = sleep
        self.next_at = clock()

    def wait(self) -> None:
        """Sleep until the next slot; a late sender does not catch up by
        bursting more than one slot."""
        if not self.interval:
            return
        now = self.clock()
        if self.next_at > now:
            self.sleep(self.next_at - now)
            self.next_at += self.interval
        else:
            self.next_at = now + self.interval


def sender_conf(config_file: str) -> Any:
    """The daemons' configuration, loaded as the polling agent loads it."""
    from oslo_config import cfg

    from telemeter import service
    return service.prepare_service(argv=['e2e-bench-sender'],
                                   config_files=[config_file],
                                   conf=cfg.ConfigOpts())


def polling_notifier(conf: Any) -> Any:
    """A Notifier set up as ``AgentManager`` sets up its own."""
    from telemeter import messaging
    transport = messaging.get_transport(conf)
    return messaging.get_notifier(
        transport, POLLING_PUBLISHER_ID,
        driver=conf.publisher_notifier.telemetry_driver)


def send_polling_batch(notifier: Any, batch: list[dict]) -> None:
    """One ``telemetry.polling`` notification, as ``AgentManager``
    sends it (sample priority, empty context)."""
    notifier.sample({}, POLLING_EVENT_TYPE, polling_payload(batch))


class StatusWriter:
    """One JSON line per second on stdout for the bench process."""

    def __init__(self) -> None:
        self.last = 0.0

    def maybe(self, **fields: Any) -> None:
        now = time.time()
        if now - self.last >= 1.0:
            self.emit(**fields)

    def emit(self, **fields: Any) -> None:
        self.last = time.time()
        print(json.dumps(dict(fields, t=self.last)), flush=True)


def run_polling_sender(args: argparse.Namespace) -> int:
    """The sender process of ``--mode polling``."""
    conf = sender_conf(args.config_file)
    errors = SendErrors.install()
    notifier = polling_notifier(conf)
    instances = make_instances(args.instances)[args.index::args.senders]
    load = PollingLoad(instances, conf.publisher.telemetry_secret,
                       args.id_prefix, batch=args.batch,
                       start_seq=first_seq(args.index))
    pacer = Pacer(args.rate / args.batch if args.rate else None)
    status = StatusWriter()
    sent_ranges: list[tuple[int, int]] = []
    notifications = samples = 0
    deadline = time.time() + args.seconds
    status.emit(notifications=0, samples=0, errors=0)
    while time.time() < deadline:
        pacer.wait()
        first = load.next_seq
        batch = load.next_batch()
        before = errors.count
        send_polling_batch(notifier, batch)
        if errors.count == before:
            sent_ranges.append((first, load.next_seq))
            notifications += 1
            samples += len(batch)
        status.maybe(notifications=notifications, samples=samples,
                     errors=errors.count)
    status.emit(notifications=notifications, samples=samples,
                errors=errors.count, done=True,
                sent_ranges=merge_ranges(sent_ranges),
                meter_counts=dict(load.meter_counts),
                meter_resources=load.meter_resources())
    notifier.transport.cleanup()
    return 0


def run_notification_sender(args: argparse.Namespace) -> int:
    """The sender process of ``--mode notifications``."""
    conf = sender_conf(args.config_file)
    secret = conf.publisher.telemetry_secret
    peer_dir = Path(args.peer_dir)
    send_mod = load_peer_send(peer_dir)
    sequence = mix_entries(peer_dir, send_mod)
    errors = SendErrors.install()
    url = conf.transport_url
    sender = send_mod.Sender(url)
    pacer = Pacer(args.rate)
    status = StatusWriter()
    by_key: collections.Counter[str] = collections.Counter()
    sent_ranges: list[tuple[int, int]] = []
    next_seq = first_seq(args.index)
    notifications = 0
    deadline = time.time() + args.seconds
    status.emit(notifications=0, samples=0, errors=0)
    try:
        while time.time() < deadline:
            pacer.wait()
            copy_index = notifications * args.senders + args.index
            entry = routed_entry(sequence[copy_index % len(sequence)])
            payload = vary_payload(send_mod, entry, copy_index,
                                   args.resources)
            first = next_seq
            if entry['event_type'] == POLLING_EVENT_TYPE:
                next_seq = renumber_polled(payload, args.id_prefix,
                                           next_seq, secret)
            before = errors.count
            sender.send(entry, payload)
            notifications += 1
            if errors.count == before:
                by_key[entry['key']] += 1
                sent_ranges.append((first, next_seq))
            status.maybe(notifications=notifications,
                         samples=sum(by_key.values()), errors=errors.count)
    finally:
        sender.close()
    status.emit(notifications=sum(by_key.values()),
                samples=sum(by_key.values()), errors=errors.count,
                done=True, sent_ranges=merge_ranges(sent_ranges),
                by_key=dict(by_key))
    return 0


def sender_main(argv: list[str]) -> int:
    """``e2e_bench.py _sender ...``: the load process (internal)."""
    parser = argparse.ArgumentParser(prog='e2e_bench.py _sender')
    parser.add_argument('--mode', choices=('polling', 'notifications'),
                        required=True)
    parser.add_argument('--config-file', required=True)
    parser.add_argument('--seconds', type=float, required=True)
    parser.add_argument('--rate', type=float, default=None)
    parser.add_argument('--id-prefix', required=True)
    parser.add_argument('--instances', type=int, default=1000)
    parser.add_argument('--batch', type=int, default=POLLING_BATCH)
    parser.add_argument('--peer-dir', default=str(DEFAULT_PEER_DIR))
    parser.add_argument('--resources', type=int, default=1000)
    parser.add_argument('--index', type=int, default=0)
    parser.add_argument('--senders', type=int, default=1)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.mode == 'polling':
        return run_polling_sender(args)
    return run_notification_sender(args)
