#!/usr/bin/env python3
"""Drain benchmark: how a daemon scales from 1 to 2 workers.

What is measured
----------------
For ``--daemon agent`` (``telemeter-agent-notification``) or ``--daemon
collector`` (``telemeter-collector``), for each worker count of
``--workers`` (1,2) in turn, ``--rounds`` times (1, 2, 1, 2: drift on the
shared machine hits both alike, as the peer's ``compare.sh`` does), one
run is:

1. the daemon is stopped and its queues purged;
2. ``--n`` messages are **pre-loaded** on the broker (below);
3. the daemon starts with ``[notification] workers`` / ``[collector]
   workers`` = W (the console script of this virtualenv, a configuration
   written for the run);
4. the **drain** is timed from its first output to the last expected
   one: the agent's output is the lines its ``file://...?json``
   publishers write (samples and events, counted every 20 ms), the
   collector's the rows of the ``sample`` table (``SELECT count(*)``
   every 0.5 s: the one dependency on the storage schema; each end of
   the drain is known to 0.5 s, ~2 % of a 25 s drain);
5. after ``--settle`` (1 s) the output is counted again (anything beyond
   the expected is reported as ``extra``) and the queues must be empty;
   the daemon is stopped; the agent's lines must all be JSON objects (two
   workers append to the same files), the collector's samples are read
   back by message id through the storage API: 0 lost, 0 duplicated.

Reported per run: messages/s, samples/s and events/s over the drain
(what was made after the first look: the batch behind the first output
was handled before the window opened, and its CPU too; messages are
counted in proportion to the outputs);
start-up (start → first output); CPU seconds of the daemon's process tree
(cotyledon master and workers: utime + stime from /proc, read at the
first and at the last output) and what they make per message and in
cores; peak RSS (VmHWM) of each process and the peak sum over the tree;
CPU seconds of the broker (the pid ``tools/services.sh`` records, or the
process listening on the port of ``--transport-url``) and, for the
collector, of PostgreSQL during the drain; the bench's own CPU; the cores
the rest of the machine used; the load average before and after.  Then
the median of each figure per worker count, and the ratios of the
medians (2 workers / 1 worker).  The machine has 2 cores shared with
other engineers, and the broker (and PostgreSQL) run on the same two
cores: a second worker competes with them, which is what the broker and
"others" columns show.  Read "others" before the ratio: when other
processes keep a core busy, the kernel's fair scheduler gives two
runnable workers a larger share of the machine than one, so the ratio
then mixes the daemon's scaling with CPU taken from the others (the
"others" column falls as the daemon's "cores" rise); the figure that
means most on a quiet box is the ratio itself, on a busy one the CPU per
message.

Why pre-loaded drains
---------------------
A sender running during the measurement takes CPU from the daemon on a
2-core box and caps the rate at its own speed; a queue filled before the
daemon starts is drained as fast as the daemon (and the broker) can, and
the drain's length is all there is to time.  The cost: the drain starts
with a full prefetch window and no back-pressure, which is the daemon's
best case; it is the same for every worker count, so the ratio holds.

The pre-load
------------
The agent gets the weighted mix of the peer corpus
(``--peer-dir``, default ``../shared/bench/notification-peer`` from the
repository: ``corpus.json``, ``mix.json``; 69 real-shaped OpenStack
notifications), each copy's resource ids varied over ``--resources``
ids, the ``telemetry.polling`` entry moved to the ``telemeter`` exchange
(``tools/bench/e2e``'s notifications mode), as oslo.messaging's
``messagingv2`` Notifier sends them: ``notifications.<priority>`` of each
service's exchange.  It runs with file publishers for every sample and
event (no transformers), the packaged meter and event definitions (or
``--meters-dir`` / ``--events``) and ``[notification] ack_on_event_error
= true``.  The samples and events expected are those
``telemeter-notification-dryrun`` makes of one copy of each mix entry,
times the copies sent (what Ceilometer makes of the same is printed as a
note).

The collector gets ``--n`` ``metering.sample`` messages of
``--per-message`` (100) signed metering dicts each, as the
``notifier://`` publisher sends them (event type ``metering``, priority
``SAMPLE``, publisher ``telemetry.publisher.<host>``, exchange
``telemeter``), signed with the ``telemetry_secret`` the collector is
configured with: 1,000 resources, the 10 packaged compute meters, 10
metadata keys with one nested dict.  It writes through the ``database``
dispatcher into a scratch PostgreSQL database created and
``telemeter-dbsync``-ed for each run and dropped after it.

The first message of each exchange and routing key goes through
``telemeter.messaging.send_notification`` (the driver declares the
exchange and queue as it would for the daemon); the others are published
with kombu, same bodies, without a confirm each, and the broker's queue
depth is checked.  Bodies are built once and every run sends the same.

Profiling a worker
------------------
At the first output the bench prints the daemon's pids (the workers'
titles are ``telemeter-agent-notification worker(N)`` /
``telemeter-collector worker(N)``).  From another shell, during a drain
(use a larger ``--n`` for a longer one)::

    py-spy record --pid <worker pid> -r 500 -d 10 -o worker.svg
    py-spy record --pid <worker pid> -r 500 -d 10 -f raw -o worker.txt
    py-spy dump --pid <worker pid>

The raw stacks sum per function with a few lines of Python; the thread to
read is ``batch-listener`` (``_next_batch`` is the bus, ``_handle`` the
rest).

Run (from the repository root, after ``tools/install.sh``)::

    .venv/bin/python tools/bench/drain_bench.py --daemon agent
    .venv/bin/python tools/bench/drain_bench.py --daemon collector
    .venv/bin/python tools/bench/drain_bench.py --daemon collector \\
        --n 500 --rounds 1 --conf-extra collector.batch_size=100

Servers: ``tools/services.sh`` with ``--services-dir`` /
``--rabbit-port`` / ``--pg-port`` (defaults from
``TELEMETER_SERVICES_DIR``, ``TELEMETER_RABBIT_PORT``,
``TELEMETER_PG_PORT``), reused if they run, started (and stopped at the
end) otherwise; or ``--transport-url`` / ``--database-url``.  The broker
must be on loopback: the bench purges its queues.  Every process and
server the bench started is stopped on exit, Ctrl-C or error; the
scratch databases are dropped unless ``--keep-db``.

Results: printed, and written to ``<workdir>/result.json``
(``--workdir``, default ``/tmp/telemeter-drain/<tag>``) with the
configurations and the daemons' logs.  The package ``tools/bench/drain``
holds the parts: ``agent_load`` / ``collector_load`` (the messages),
``wire`` (purge, pre-load), ``subjects`` (each daemon's configuration,
output counting and checks), ``drain`` (one run), ``figures`` (rates,
medians, ratios), ``report`` and ``cli``; it reuses ``tools/bench/e2e``
for configurations, daemons, /proc sampling, servers and scratch
databases.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

# oslo.service's eventlet backend warns when oslo.messaging loads.
warnings.filterwarnings('ignore', message=r'(?s).*[Ee]ventlet is deprecated')
warnings.filterwarnings('ignore', category=DeprecationWarning)

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.bench.drain.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
