"""The checks behind ``/healthz``.

A check is a function returning :class:`Check` results: whether a listener
thread is alive and connected, whether the collector's database answers,
whether the agent's last publish went through. ``/healthz`` is healthy
when every result passes.

Checks run in the HTTP server's threads, never in the data path. One that
talks to a server (:class:`TimedProbe`) runs in a thread of its own with a
time limit and its result is reused for :data:`PROBE_CACHE` seconds, so a
hung database makes ``/healthz`` say so within the limit instead of
hanging, and frequent scrapes cost one probe.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from oslo_log import log

LOG = log.getLogger(__name__)

#: Seconds a probe result is reused.
PROBE_CACHE = 1.0


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str = ''


CheckFn = Callable[[], Iterable[Check]]


class Checks:
    """The checks of one worker process."""

    def __init__(self) -> None:
        self._checks: list[CheckFn] = []

    def add(self, check: CheckFn) -> None:
        self._checks.append(check)

    def run(self) -> list[Check]:
        """Every check's results; a check that raises fails with its
        error."""
        results: list[Check] = []
        for check in self._checks:
            try:
                results.extend(check())
            except Exception as err:
                LOG.exception('Health check %s failed', check)
                results.append(Check(getattr(check, '__name__', 'check'),
                                     False, f'check raised: {err}'))
        return results


class TimedProbe:
    """Runs ``probe`` (which raises when the target is unreachable) with a
    time limit, at most one at a time, its result reused for
    :data:`PROBE_CACHE` seconds."""

    def __init__(self, name: str, probe: Callable[[], str],
                 timeout: float) -> None:
        self.name = name
        self.probe = probe
        self.timeout = timeout
        self._lock = threading.Lock()
        self._result: Check | None = None
        self._at = 0.0
        self._running: threading.Thread | None = None
        self._started = 0.0

    def __call__(self) -> list[Check]:
        with self._lock:
            now = time.monotonic()
            if self._result is not None and now - self._at < PROBE_CACHE:
                return [self._result]
            if self._running is not None and self._running.is_alive():
                waited = now - self._started
                if waited >= self.timeout:
                    return [Check(self.name, False,
                                  f'no answer for {waited:.1f}s')]
                thread = self._running
            else:
                thread = self._running = threading.Thread(
                    target=self._probe, name=f'probe-{self.name}',
                    daemon=True)
                self._started = now
                thread.start()
        thread.join(max(0.0, self._started + self.timeout
                        - time.monotonic()))
        with self._lock:
            if thread.is_alive():
                return [Check(self.name, False,
                              f'no answer within {self.timeout:g}s')]
            assert self._result is not None
            return [self._result]

    def _probe(self) -> None:
        try:
            result = Check(self.name, True, self.probe())
        except Exception as err:
            result = Check(self.name, False, f'{type(err).__name__}: '
                                             f'{_first_line(err)}')
        with self._lock:
            self._result = result
            self._at = time.monotonic()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ''


def last_call(name: str, outcome: Any, what: str) -> Check | None:
    """Fails while the last call ``outcome`` (a
    :class:`telemeter.pipeline.base.Outcome`) records raised; None when it
    went through or none was made."""
    if outcome.last_failed > outcome.last_ok:
        ago = time.monotonic() - outcome.last_failed
        return Check(name, False, f'the last {what} failed {ago:.1f}s ago '
                                  f'({outcome.last_error})')
    return None
