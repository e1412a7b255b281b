"""Options and main: one run, or the sender process (``_sender``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from .console import say
from .daemon_conf import parse_conf_extra
from .errors import BenchError
from .machine import loadavg
from .notification_plan import DEFAULT_PEER_DIR
from .packaged import POLLING_BATCH
from .run import Run
from .sender import sender_main
from .summary import print_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='End-to-end benchmark of telemeter: sender → '
                    'notification agent → collector → PostgreSQL. See the '
                    'module docstring for the method.')
    add = parser.add_argument
    add('--mode', choices=('polling', 'notifications'), default='polling')
    add('--rate', type=float, default=None,
        help='offered load: samples/s (polling) or notifications/s '
             '(notifications); default as fast as the sender can')
    add('--duration', type=float, default=60.0,
        help='steady window, seconds (default 60)')
    add('--warmup', type=float, default=10.0,
        help='load offered before the window, seconds (default 10)')
    add('--drain-timeout', type=float, default=180.0,
        help='longest wait for the queues to empty after the load')
    add('--settle', type=float, default=10.0,
        help='drained = queues empty and counts unchanged this long')
    add('--agent-workers', type=int, default=1,
        help='[notification] workers')
    add('--collector-workers', type=int, default=1,
        help='[collector] workers')
    add('--conf-extra', action='append', default=[],
        metavar='SECTION.OPTION=VALUE',
        help='extra daemon option (repeatable), e.g. '
             'collector.batch_size=500')
    add('--instances', type=int, default=1000,
        help='instances (polling) / resource ids (notifications)')
    add('--senders', type=int, default=1,
        help='sender processes (polling: each one a compute node with '
             'its share of the instances); --rate is split between them')
    add('--batch', type=int, default=POLLING_BATCH,
        help='samples per telemetry.polling notification')
    add('--peer-dir', default=str(DEFAULT_PEER_DIR),
        help='notification peer bench directory (corpus, mix, send.py)')
    add('--transport-url', help='use this broker instead of starting one')
    add('--database-url',
        help='server URL whose account may CREATE DATABASE (a scratch '
             'database is made there) instead of starting PostgreSQL')
    add('--services-dir',
        default=os.environ.get('TELEMETER_SERVICES_DIR', os.path.join(
            tempfile.gettempdir(), 'svc-e2e')))
    add('--rabbit-port', type=int,
        default=int(os.environ.get('TELEMETER_RABBIT_PORT', '5720')))
    add('--pg-port', type=int,
        default=int(os.environ.get('TELEMETER_PG_PORT', '55470')))
    add('--queue-interval', type=float, default=2.0,
        help='seconds between queue depth samples')
    add('--progress', type=float, default=5.0,
        help='seconds between progress lines')
    add('--start-timeout', type=float, default=120.0)
    add('--stop-timeout', type=float, default=60.0)
    add('--workdir', help='configuration, logs and result (default '
                          '/tmp/telemeter-e2e/<run tag>)')
    add('--out', help='result JSON (default <workdir>/result.json)')
    add('--keep-db', action='store_true',
        help='keep the scratch database')
    args = parser.parse_args(argv)
    for item in args.conf_extra:
        parse_conf_extra(item)
    if min(args.agent_workers, args.collector_workers, args.senders) < 1:
        parser.error('worker and sender counts must be >= 1')
    if args.mode == 'notifications' and not Path(args.peer_dir,
                                                  'send.py').exists():
        parser.error(f'--peer-dir {args.peer_dir} has no send.py')
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f'signal {signum}')


def main(argv: list[str] | None = None) -> int:
    # oslo.service's eventlet backend warns when the storage API loads.
    warnings.filterwarnings('ignore', message=r'(?s).*[Ee]ventlet is '
                                              r'deprecated')
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['_sender']:
        return sender_main(argv[1:])
    args = parse_args(argv)
    run = Run(args)
    run.times.start = time.time()
    run.load['start'] = loadavg()
    # SIGINT too: a shell's background job starts with it ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    status = 0
    try:
        run.setup()
        run.start_daemons()
        run.offer_load()
        run.drain()
        run.load['end'] = loadavg()
        run.times.end = time.time()
        run.stop_daemons()
        report = run.analyse()
        out = Path(args.out or run.workdir / 'result.json')
        out.write_text(json.dumps(report, indent=1, default=str))
        print_report(report)
        print(f'\nresult: {out}\nlogs: {run.log_dir}')
    except BenchError as err:
        say(f'ERROR: {err}')
        status = 2
    except KeyboardInterrupt:
        say('interrupted: stopping everything this run started')
        status = 130
    finally:
        # A second Ctrl-C must not leave servers or daemons behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.cleanup()
    return status
