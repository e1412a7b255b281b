"""Health checks: results, failures, and probes with a time limit."""

import threading
import time

from telemeter.health import checks


def test_a_check_that_raises_fails_with_its_error(caplog):
    health = checks.Checks()

    def listener():
        raise RuntimeError('no attribute')
    health.add(listener)
    health.add(lambda: [checks.Check('ok', True)])
    results = health.run()
    assert results[0] == checks.Check('listener', False,
                                      'check raised: no attribute')
    assert results[1].ok


def test_probe_passes_fails_and_is_cached(monkeypatch):
    calls = []

    def ping():
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError('refused\nmore lines')
        return 'answers'
    probe = checks.TimedProbe('storage', ping, timeout=1.0)
    assert probe() == [checks.Check('storage', True, 'answers')]
    assert probe() == [checks.Check('storage', True, 'answers')]
    assert len(calls) == 1   # reused within PROBE_CACHE
    monkeypatch.setattr(checks, 'PROBE_CACHE', 0.0)
    assert probe() == [checks.Check('storage', False,
                                    'ConnectionError: refused')]
    assert probe()[0].ok


def test_a_hung_probe_fails_within_its_time_limit(monkeypatch):
    monkeypatch.setattr(checks, 'PROBE_CACHE', 0.0)
    release = threading.Event()
    started = []

    def hang():
        started.append(1)
        release.wait(10)
        return 'late'
    probe = checks.TimedProbe('storage', hang, timeout=0.2)
    begin = time.monotonic()
    [result] = probe()
    assert not result.ok and 'no answer within 0.2s' in result.detail
    assert time.monotonic() - begin < 2
    # A second call does not start a second probe while one hangs.
    [again] = probe()
    assert not again.ok and 'no answer for' in again.detail
    assert len(started) == 1
    release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not probe()[0].ok:
        time.sleep(0.05)
    assert probe()[0] == checks.Check('storage', True, 'late')
