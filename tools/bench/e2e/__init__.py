"""End-to-end benchmark: bus → notification agent → collector → SQL.

What runs
---------
RabbitMQ and PostgreSQL from ``tools/services.sh`` on the bench's own
ports and state directory (or the servers of ``--transport-url`` /
``--database-url``), a scratch database made for the run and
``telemeter-dbsync``, then ``telemeter-collector`` and
``telemeter-agent-notification`` as processes with the **packaged
configuration**: the packaged ``pipeline.yaml`` / ``event_pipeline.yaml``
(every sample and event goes to ``notifier://``, cpu/disk/network samples
also through the packaged transformers), the collector's ``database``
dispatcher, default batch sizes.  The configuration file sets only
``transport_url``, ``[database] connection``, ``log_dir``, ``[collector]
udp_address =`` (the bench sends nothing over UDP, and must not bind
0.0.0.0:4952 on a shared box), a random ``[publisher] telemetry_secret``
and the worker counts (``--agent-workers`` / ``--collector-workers``);
``--conf-extra section.option=value`` adds options for experiments.  The
polling agent is not run: the bench plays its role.

Load (a sender process, so that it does not share the bench's interpreter)
--------------------------------------------------------------------------
``--mode polling``: ``telemetry.polling`` notifications exactly as the
polling agent sends them: ``sample`` priority, publisher
``telemeter.polling``, topic ``notifications`` on the ``telemeter``
exchange, payload ``{"samples": [...]}`` of ``--batch`` (50, the agent's
``[polling] batch_size``) metering dicts built by
``telemeter.publisher.utils.meter_message_from_counter`` and signed with
the configured secret.  Meters are the packaged compute ones (cpu,
memory.usage, disk.read/write.bytes/requests, network.incoming/outgoing.
bytes/packets) of ``--instances`` instances (1,000), with the resource ids
and metadata the libvirt pollsters produce; each pass goes meter by meter
over every instance, as a polling cycle does.  Message ids are UUIDs
whose last group is a sequence number, so the database tells which sent
sample is missing.

``--mode notifications``: the weighted mix of OpenStack notifications of
``--peer-dir`` (``/work/shared/bench/notification-peer``: ``corpus.json``,
``mix.json``), sent with that directory's ``send.py`` functions (its
``Sender``, ``mix_sequence`` and ``vary_id``).  Two changes, so that the
counts mean something against telemeter's packaged configuration: the
``telemetry.polling`` entry goes on the ``telemeter`` exchange (the one the
packaged agent listens to for polled samples; the corpus names
Ceilometer's), and its samples get fresh, bench-numbered message ids,
re-signed (the corpus repeats three fixed ids, which storage would
de-duplicate).  Expected samples and events: ``expected-counts.json``
(what Ceilometer makes of each entry) and ``telemeter-notification-dryrun``
run on one copy of each mix entry (what telemeter's packaged definitions
make of it); the stored counts are compared with the latter.

Either mode offers load for ``--warmup`` + ``--duration`` seconds, as fast
as the sender can, or paced with ``--rate`` (samples/s in polling mode,
notifications/s in notifications mode).  ``--senders N`` runs N sender
processes (in polling mode N compute nodes, each with its share of the
instances and its own range of id numbers) with the rate split between
them.  Then it waits for the queues to drain (``--drain-timeout``), stops
the daemons and reads the database.  On a busy 2-core box the sender is
CPU-starved like everything else: its CPU seconds are reported, and the
stored rate after the send (the drain of what queued up, with the sender
gone) is the better hint of what the daemons can do.

What is measured, and how
-------------------------
* offered rate: the sender's own per-second counters;
* stored rate: every second ``SELECT count(*)`` of the ``sample`` and
  ``event`` tables (progress, events/s, drain detection); at the end every
  stored sample through the public storage API (``get_meters`` /
  ``get_samples``) with its ``recorded_at``, binned per second;
* the **sustained stored samples/s** is the number of samples whose
  ``recorded_at`` falls in the steady window divided by its length.  The
  window is not detected: it is the ``--duration`` seconds that follow the
  ``--warmup`` seconds after the first notification was sent, i.e. the
  part of the run where the sender offers load and start-up transients
  (connections, first meters/resources created) are over.  Its coefficient
  of variation (5 s bins) is printed so that an unsteady window shows;
* queue depth of every queue of the packaged configuration
  (notifications.*, metering.sample, event.sample) every
  ``--queue-interval`` (2) seconds by AMQP passive declare: messages
  ready for delivery (the daemons hold at most their prefetch, 100 per
  consumer, unacknowledged on top).  On a broker the bench started,
  ``rabbitmqctl list_queues`` (ready and unacknowledged, every queue) at
  the start and after the drain; it is too slow (1-15 s an Erlang VM
  start, CPU taken from the daemons) to sample with.  "flat" means the
  least-squares slope over the window (at least 3 samples) is within
  ±(2 % of the notifications offered per second + 1) messages/s;
* sent / stored / lost / duplicated after the drain: in polling mode from
  the message ids (lost = sent ids not stored; duplicated = rows beyond
  one per id; samples the transformers derive have ids of their own and
  are counted apart, against the number the packaged pipeline should
  derive); in notifications mode from the expected counts;
* RSS (peak per process, its VmHWM, and the peak of the sum over all of
  a daemon's processes at one moment) and CPU seconds (utime + stime,
  whole run and window) of every process of each daemon (cotyledon master
  and workers), of the sender(s) and of the servers services.sh runs,
  from /proc every second (RSS counts shared memory in every process:
  PostgreSQL's shared buffers make its sum an overstatement);
* the load average (and CPU pressure, PSI avg10) on every progress line
  and with every figure, and the cores the whole machine, the bench's
  processes and everything else used in the window (from /proc/stat):
  the box is shared, so the "others" figure says how much the run was
  disturbed;
* the CPU microseconds each of those processes spent in the window per
  sample stored in it (polling mode) or per notification offered in it
  (notifications mode; meaningful when the queues stayed flat), and what
  the daemons and servers alone cost per item: the number of cores
  divided by that cost is the rate at which they would keep the whole
  machine busy, i.e. this machine's ceiling for the data path whatever
  the senders could offer.

Profiling a daemon during a run: the worker PIDs are printed once the
daemons are up; ``py-spy record --pid <worker pid> -d 30 -o worker.svg``
(or ``py-spy top --pid <worker pid>``) from another shell.

Run (from the repository root, after ``tools/install.sh``)::

    .venv/bin/python tools/bench/e2e_bench.py --mode polling
    .venv/bin/python tools/bench/e2e_bench.py --mode polling --rate 1000
    .venv/bin/python tools/bench/e2e_bench.py --mode notifications \\
        --agent-workers 2 --collector-workers 2
    .venv/bin/python tools/bench/e2e_bench.py --mode polling \\
        --conf-extra collector.batch_size=500

Results: printed, and written as JSON (``--out``, default
``<workdir>/result.json``); logs and configuration stay in ``--workdir``.
Every process and server the bench started is stopped on exit, Ctrl-C or
error; the scratch database is dropped unless ``--keep-db``.

The package, in the order the data flows
----------------------------------------
``cli`` parses the options and drives a ``run.Run``.  Set-up: ``servers``
(services.sh, the scratch database, the table counter) and
``daemon_conf`` (the daemons' telemeter.conf); ``daemons`` starts the
agent and the collector.  Load: ``sender_group`` starts the processes
that run ``sender``, which sends what ``polling_load`` or
``notification_plan`` makes, numbered by ``accounting``.  Watching:
``monitor`` samples ``procwatch``, ``queues``, ``machine`` and the table
counts every second until the queues drain.  Figures: ``storage_scan``
reads what was stored, ``report`` turns it into figures (``rates``,
``accounting``) and ``summary`` prints them.  ``packaged`` holds what
telemeter's packaged configuration does that the bench copies or counts
on; ``console`` and ``errors`` are what the bench prints and raises.
"""
