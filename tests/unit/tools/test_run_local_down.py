"""``tools/run-local.sh down`` stops the daemons in data-flow order.

Three stand-in processes take the daemons' pid files; each records when
it gets SIGTERM and when it exits (after a short drain). The notification
agent must be signalled only after the polling agent exited, and the
collector only after the notification agent exited.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ORDER = ['telemeter-polling', 'telemeter-agent-notification',
         'telemeter-collector']

_STUB = textwrap.dedent('''\
    import signal, sys, time
    name, journal = sys.argv[1], sys.argv[2]
    def note(what):
        with open(journal, 'a') as f:
            f.write(f'{time.monotonic():.3f} {name} {what}\\n')
    def on_term(signum, frame):
        note('term')
        time.sleep(0.4)  # draining
        note('exit')
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    note('up')
    while True:
        time.sleep(0.05)
    ''')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_down_stops_in_data_flow_order(tmp_path):
    state = tmp_path / 'state'
    state.mkdir()
    journal = tmp_path / 'journal'
    stub = tmp_path / 'stub.py'
    stub.write_text(_STUB)
    procs = []
    try:
        # Started in the reverse order, so the start order cannot decide.
        for name in reversed(ORDER):
            proc = subprocess.Popen([sys.executable, str(stub), name,
                                     str(journal)])
            procs.append(proc)
            # Reap at once: a zombie would still answer kill -0.
            threading.Thread(target=proc.wait, daemon=True).start()
            (state / f'{name}.pid').write_text(f'{proc.pid}\n')
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
                not journal.exists()
                or journal.read_text().count(' up') < len(ORDER)):
            time.sleep(0.05)
        env = dict(os.environ, TELEMETER_LOCAL_STATE=str(state),
                   TELEMETER_RABBIT_PORT=str(_free_port() % 30000 + 2000))
        result = subprocess.run(['bash', str(REPO / 'tools/run-local.sh'),
                                 'down'], capture_output=True, text=True,
                                env=env, timeout=120, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    events = [line.split()[1:] for line in journal.read_text().splitlines()
              if not line.endswith(' up')]
    assert events == [[name, what] for name in ORDER
                      for what in ('term', 'exit')]
    assert not list(state.glob('*.pid'))
