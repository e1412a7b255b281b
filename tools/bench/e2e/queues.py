"""Queue depths: probes (AMQP passive declare, rabbitmqctl), the
background sampler, and the per-queue report."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from .packaged import KNOWN_QUEUES
from .rates import is_flat, slope

if TYPE_CHECKING:
    from .servers import Services


@dataclasses.dataclass
class QueueDepth:
    """One queue at one moment."""

    ready: int
    unacked: int | None
    consumers: int

    @property
    def total(self) -> int:
        return self.ready + (self.unacked or 0)


class RabbitmqctlProbe:
    """``rabbitmqctl list_queues`` through tools/services.sh (every
    queue, ready and unacknowledged): ~0.6 CPU-seconds and 1-15 s a
    call, so only for the first and last look."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def snapshot(self) -> dict[str, QueueDepth]:
        out = self.services.rabbitmqctl(
            'list_queues', '-q', '--formatter', 'json', 'name',
            'messages_ready', 'messages_unacknowledged', 'consumers')
        rows = json.loads(out or '[]')
        return {row['name']: QueueDepth(int(row['messages_ready']),
                                        int(row['messages_unacknowledged']),
                                        int(row['consumers']))
                for row in rows}


class AmqpProbe:
    """AMQP passive declares of the packaged queues: ready messages and
    consumers (cheap enough to sample every second or two)."""

    def __init__(self, url: str) -> None:
        import kombu
        self.connection = kombu.Connection(url.replace('rabbit://',
                                                       'amqp://', 1))
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, QueueDepth]:
        with self._lock:
            return self._snapshot()

    def close(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self.connection.release()

    def _snapshot(self) -> dict[str, QueueDepth]:
        result = {}
        for name in KNOWN_QUEUES:
            try:
                channel = self.connection.channel()
                try:
                    _, ready, consumers = channel.queue_declare(
                        queue=name, passive=True)
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
            except Exception:  # noqa: S112 - an absent queue is no queue
                continue
            result[name] = QueueDepth(int(ready), None, int(consumers))
        return result


class QueueWatch(threading.Thread):
    """Samples queue depths every ``interval`` seconds in the background
    (a rabbitmqctl call takes most of a second)."""

    def __init__(self, probe: Any, interval: float) -> None:
        super().__init__(name='queue-watch', daemon=True)
        self.probe = probe
        self.interval = interval
        self.series: list[tuple[float, dict[str, QueueDepth]]] = []
        self.errors = 0
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            self.poll()
            self._halt.wait(self.interval)

    def poll(self) -> dict[str, QueueDepth] | None:
        """One snapshot now (also callable from the main thread)."""
        try:
            snap = self.probe.snapshot()
        except Exception:
            self.errors += 1
            return None
        with self._lock:
            self.series.append((time.time(), snap))
        return snap

    def latest(self) -> dict[str, QueueDepth]:
        with self._lock:
            return self.series[-1][1] if self.series else {}

    def latest_at(self) -> float:
        with self._lock:
            return self.series[-1][0] if self.series else 0.0

    def stop(self) -> None:
        self._halt.set()

    def copy(self) -> list[tuple[float, dict[str, QueueDepth]]]:
        with self._lock:
            return list(self.series)


def queued(snap: dict[str, QueueDepth]) -> dict[str, int]:
    """The queues of a snapshot that hold messages, and how many."""
    return {n: q.total for n, q in snap.items() if q.total}


def queue_report(series: list[tuple[float, dict[str, QueueDepth]]],
                 window: tuple[float, float], origin: float,
                 offered_msgs_per_s: float) -> dict[str, Any]:
    """Per queue: its depth over time, max, at window end, the growth
    over the window (messages/s) and whether it stayed flat."""
    names = sorted({name for _, snap in series for name in snap})
    report = {}
    for name in names:
        points = [(t, snap[name].total) for t, snap in series
                  if name in snap]
        in_window = [(t, d) for t, d in points
                     if window[0] <= t <= window[1]]
        growth = slope(in_window) if len(in_window) >= 3 else None
        report[name] = {
            'series': [[round(t - origin, 1), d] for t, d in points],
            'max': max((d for _, d in points), default=0),
            'at_window_start': in_window[0][1] if in_window else None,
            'at_window_end': in_window[-1][1] if in_window else None,
            'last': points[-1][1] if points else None,
            'samples_in_window': len(in_window),
            'growth_per_s_in_window': (None if growth is None
                                       else round(growth, 2)),
            'flat_in_window': is_flat(growth, offered_msgs_per_s),
        }
    return report
