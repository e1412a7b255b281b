"""Options, the servers, the alternating runs and the tear-down."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import signal
import sys
import tempfile
import urllib.parse
import warnings
from pathlib import Path
from typing import Any

from tools.bench.e2e.accounting import make_id_prefix
from tools.bench.e2e.daemon_conf import overriding_files, parse_conf_extra
from tools.bench.e2e.errors import BenchError
from tools.bench.e2e.machine import loadavg
from tools.bench.e2e.servers import Services

from . import figures, report
from .console import say
from .drain import drain_run
from .outputs import listener_pid
from .subjects import AgentSubject, CollectorSubject, Subject
from .wire import Broker

REPO = Path(__file__).resolve().parents[3]
PEER_DIR = REPO.parent / 'shared' / 'bench' / 'notification-peer'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='How a daemon drains a pre-loaded queue with 1 and 2 '
                    'workers; the method is the docstring of '
                    'tools/bench/drain_bench.py.')
    add = parser.add_argument
    add('--daemon', choices=('agent', 'collector'), required=True)
    add('--n', type=int, default=None,
        help='messages pre-loaded per run (agent: notifications, default '
             '20000; collector: messages of --per-message samples, '
             'default 2000)')
    add('--per-message', type=int, default=100,
        help='collector: samples per metering.sample message')
    add('--rounds', type=int, default=2,
        help='runs of each worker count, alternating (default 2)')
    add('--workers', default='1,2',
        help='worker counts, in turn (default 1,2)')
    add('--resources', type=int, default=1000,
        help='resource ids the messages spread over')
    add('--peer-dir', default=str(PEER_DIR),
        help='agent: the notification peer directory (corpus.json, '
             'mix.json, send.py)')
    add('--meters-dir', help='agent: meter definitions directory '
                             '(default: the packaged ones)')
    add('--events', help='agent: event definitions file (default: the '
                         'packaged one)')
    add('--transport-url', help='use this (loopback) broker instead of '
                                'starting one')
    add('--database-url',
        help='collector: server URL whose account may CREATE DATABASE '
             'instead of starting PostgreSQL')
    add('--conf-extra', action='append', default=[],
        metavar='SECTION.OPTION=VALUE',
        help='extra daemon option (repeatable), e.g. '
             'collector.batch_size=500')
    add('--services-dir', default=os.environ.get(
        'TELEMETER_SERVICES_DIR',
        os.path.join(tempfile.gettempdir(), 'svc-drain')))
    add('--rabbit-port', type=int,
        default=int(os.environ.get('TELEMETER_RABBIT_PORT', '5760')))
    add('--pg-port', type=int,
        default=int(os.environ.get('TELEMETER_PG_PORT', '55495')))
    add('--workdir', help='configs, outputs, logs, result.json (default '
                          '/tmp/telemeter-drain/<run tag>)')
    add('--pause', type=float, default=2.0,
        help='seconds between the pre-load and the daemon start')
    add('--settle', type=float, default=1.0,
        help='seconds after the drain before counting extras')
    add('--progress', type=float, default=5.0,
        help='seconds between progress lines')
    add('--proc-interval', type=float, default=0.5,
        help='seconds between /proc samples')
    add('--start-timeout', type=float, default=120.0)
    add('--stall', type=float, default=60.0,
        help='seconds without new output that end a run as incomplete')
    add('--timeout', type=float, default=900.0)
    add('--stop-timeout', type=float, default=60.0)
    add('--keep-db', action='store_true')
    args = parser.parse_args(argv)
    return check_args(parser, args)


def check_args(parser: argparse.ArgumentParser,
               args: argparse.Namespace) -> argparse.Namespace:
    for item in args.conf_extra:
        parse_conf_extra(item)
    try:
        args.worker_counts = [int(w) for w in args.workers.split(',')]
    except ValueError:
        parser.error('--workers takes counts like 1,2')
    if min(args.worker_counts) < 1 or args.rounds < 1:
        parser.error('worker counts and --rounds must be >= 1')
    if args.n is None:
        args.n = 20000 if args.daemon == 'agent' else 2000
    if args.daemon == 'agent' and not Path(args.peer_dir,
                                           'send.py').exists():
        parser.error(f'--peer-dir {args.peer_dir} has no send.py')
    return args


class Bench:
    """The servers, the subject daemon and the runs."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tag = (datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
                    + '_' + secrets.token_hex(2))
        self.workdir = Path(args.workdir or Path(tempfile.gettempdir())
                            / 'telemeter-drain' / self.tag)
        self.services = Services(args.services_dir, args.rabbit_port,
                                 args.pg_port)
        self.servers: dict[str, int] = {}
        self.subject: Subject | None = None
        self.broker: Broker | None = None
        self.runs: list[dict[str, Any]] = []
        self.load: dict[str, str] = {'start': loadavg()}

    def server_url(self, service: str, given: str | None) -> str:
        """The URL of ``given`` or of the server services.sh runs (started
        if need be); its pid is tracked for CPU."""
        name = 'broker' if service == 'rabbitmq' else 'database'
        if given:
            port = urllib.parse.urlsplit(given).port
            pid = listener_pid(port) if port else None
            url = given
        else:
            self.services.ensure(service)
            pid = self.services.pid(service)
            url = self.services.url(service)
        if pid is None:
            say(f'WARNING: no pid found for the {service} server: its CPU '
                f'is not reported')
        else:
            self.servers[name] = pid
        return url

    def setup(self) -> None:
        (self.workdir / 'log').mkdir(parents=True, exist_ok=True)
        say(f'drain bench {self.tag}: {self.args.daemon}, workdir '
            f'{self.workdir}; ' + report.shared_with(
                {'cores': os.cpu_count(), 'daemon': self.args.daemon}))
        for path in overriding_files():
            say(f'WARNING: {path} replaces a packaged file for the daemon')
        transport_url = self.server_url('rabbitmq', self.args.transport_url)
        common = {'transport_url': transport_url,
                  'secret': secrets.token_hex(16),
                  'id_prefix': make_id_prefix(secrets.SystemRandom())}
        if self.args.daemon == 'agent':
            self.subject = AgentSubject(self.args, self.workdir, **common)
        else:
            admin_url = self.server_url('postgresql', self.args.database_url)
            self.subject = CollectorSubject(self.args, self.workdir,
                                            admin_url=admin_url,
                                            tag=self.tag, **common)
        base_config = self.workdir / 'telemeter.conf'
        self.subject.setup(base_config)
        self.broker = Broker(bus_conf(base_config))

    def run_all(self) -> None:
        assert self.subject is not None and self.broker is not None
        order = figures.run_order(self.args.worker_counts, self.args.rounds)
        for index, workers in enumerate(order):
            result = drain_run(self.args, self.subject, self.broker,
                               self.servers, index, workers)
            self.runs.append(result)
            say(report.run_line(result))

    def result(self) -> dict[str, Any]:
        self.load['end'] = loadavg()
        medians = figures.medians_by_workers(self.runs)
        assert self.subject is not None
        return {'tag': self.tag, 'daemon': self.args.daemon,
                'command': ' '.join(sys.argv), 'n': self.args.n,
                'per_message': (self.args.per_message
                                if self.args.daemon == 'collector' else None),
                'cores': os.cpu_count(), 'load_average': self.load,
                'expected': self.subject.expected,
                'notes': self.subject.notes, 'servers': self.servers,
                'runs': self.runs, 'medians': medians,
                'ratios': figures.scaling_ratios(medians)}

    def cleanup(self) -> None:
        """Stop whatever this bench started, in reverse."""
        steps = [self._stop_daemon, self._close_subject, self._close_broker,
                 self.services.stop_started]
        for step in steps:
            try:
                step()
            except Exception as err:
                say(f'WARNING: clean-up step {step.__name__} failed: {err}')

    def _stop_daemon(self) -> None:
        if self.subject is not None and self.subject.running is not None:
            code = self.subject.running.stop(self.args.stop_timeout)
            say(f'stopped {self.subject.daemon} (exit {code})')
            self.subject.running = None

    def _close_subject(self) -> None:
        if self.subject is not None:
            self.subject.cleanup()

    def _close_broker(self) -> None:
        if self.broker is not None:
            self.broker.close()


def bus_conf(config: Path) -> Any:
    """The daemons' configuration, loaded for the bench's own sends."""
    from oslo_config import cfg

    from telemeter import service
    return service.prepare_service(argv=['drain-bench'],
                                   config_files=[str(config)],
                                   conf=cfg.ConfigOpts())


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f'signal {signum}')


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings('ignore', message=r'(?s).*[Ee]ventlet is '
                                              r'deprecated')
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    args = parse_args(argv)
    bench = Bench(args)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    status = 0
    try:
        bench.setup()
        bench.run_all()
    except BenchError as err:
        say(f'ERROR: {err}')
        status = 2
    except KeyboardInterrupt:
        say('interrupted: stopping everything this bench started')
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.cleanup()
    if bench.runs:
        out = bench.workdir / 'result.json'
        result = bench.result()
        out.write_text(json.dumps(result, indent=1, default=str))
        report.print_result(result)
        print(f'\nresult: {out}\nlogs: {bench.workdir / "log"}')
        if any(not r.get('complete') for r in bench.runs):
            status = status or 1
    return status

