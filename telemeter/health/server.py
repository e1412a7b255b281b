"""The HTTP server of ``/metrics`` and ``/healthz`` in a worker process.

A :class:`http.server.ThreadingHTTPServer` in a daemon thread: a scrape
reads integers the data path keeps anyway and never takes a lock of it.

Ports are bound by the daemon's master process (:func:`bind_ports`) before
cotyledon forks the workers, so a port already in use stops the daemon at
start with the option named, and a worker that cotyledon respawns finds its
port still bound. A worker started another way (tests, a worker id beyond
the configured count after a reload) binds its port itself.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from http import server as http_server
from typing import Any

import prometheus_client
from oslo_config import cfg
from oslo_log import log
from prometheus_client import core as prom_core
from prometheus_client import registry as prom_registry

from telemeter import health
from telemeter.health import checks as checks_mod
from telemeter.health import ledger as ledger_mod

LOG = log.getLogger(__name__)

#: (daemon, worker id) -> listening socket bound by the master process.
_BOUND: dict[tuple[str, int], socket.socket] = {}


class PortInUse(RuntimeError):
    """A health port cannot be bound."""


class LedgerCollector(prom_registry.Collector):
    """Turns a ledger's readings into Prometheus metric families at
    scrape time; adds ``telemeter_healthy`` and ``telemeter_check``."""

    def __init__(self, ledger: ledger_mod.Ledger,
                 checks: checks_mod.Checks) -> None:
        self.ledger = ledger
        self.checks = checks

    def collect(self) -> Any:
        readings = self.ledger.readings()
        results = self.checks.run()
        readings.append(ledger_mod.reading(
            'healthy', float(all(c.ok for c in results))))
        readings.extend(ledger_mod.reading('check', float(c.ok),
                                           check=c.name) for c in results)
        families: dict[str, Any] = {}
        for item in readings:
            family = ledger_mod.FAMILIES[item.metric]
            metric = families.get(item.metric)
            if metric is None:
                cls = (prom_core.CounterMetricFamily
                       if family.type == 'counter'
                       else prom_core.GaugeMetricFamily)
                metric = families[item.metric] = cls(
                    f'telemeter_{family.name}', family.help,
                    labels=list(family.labels))
            metric.add_metric([v for _, v in item.labels], item.value)
        yield prom_core.InfoMetricFamily(
            'telemeter_worker', 'The daemon and worker of this endpoint.',
            value={'daemon': self.ledger.daemon,
                   'worker': str(self.ledger.worker),
                   'pid': str(os.getpid())})
        yield from families.values()


def health_document(ledger: ledger_mod.Ledger,
                    checks: checks_mod.Checks) -> tuple[int, dict]:
    """The status code and JSON body of ``/healthz``."""
    results = checks.run()
    failing = [c for c in results if not c.ok]
    body = {
        'status': 'unavailable' if failing else 'ok',
        'daemon': ledger.daemon,
        'worker': ledger.worker,
        'pid': os.getpid(),
        'reasons': [f'{c.name}: {c.detail}' for c in failing],
        'checks': [{'name': c.name, 'ok': c.ok, 'detail': c.detail}
                   for c in results],
    }
    return (503 if failing else 200), body


class _Handler(http_server.BaseHTTPRequestHandler):
    server: _Server
    # A client that stalls cannot hold a thread for long.
    timeout = 10
    server_version = 'telemeter-health'

    def do_GET(self) -> None:
        path = self.path.split('?', 1)[0]
        if path == '/metrics':
            payload = prometheus_client.generate_latest(self.server.registry)
            self._send(200, prometheus_client.CONTENT_TYPE_LATEST, payload)
        elif path == '/healthz':
            status, body = health_document(self.server.ledger,
                                           self.server.checks)
            self._send(status, 'application/json',
                       json.dumps(body, indent=1).encode() + b'\n')
        else:
            self._send(404, 'text/plain; charset=utf-8',
                       b'Try /metrics or /healthz\n')

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(payload)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug('health %s - %s', self.address_string(), format % args)


class _Server(http_server.ThreadingHTTPServer):
    daemon_threads = True
    ledger: ledger_mod.Ledger
    checks: checks_mod.Checks
    registry: prometheus_client.CollectorRegistry


class HealthServer:
    """Serves one worker's ledger and checks on a bound socket."""

    def __init__(self, sock: socket.socket, ledger: ledger_mod.Ledger,
                 checks: checks_mod.Checks) -> None:
        self._server = _Server(sock.getsockname()[:2], _Handler,
                               bind_and_activate=False)
        self._server.socket.close()
        self._server.socket = sock
        self._server.ledger = ledger
        self._server.checks = checks
        registry = prometheus_client.CollectorRegistry(auto_describe=False)
        registry.register(LedgerCollector(ledger, checks))
        # Memory and CPU of this worker (cheap, read from /proc).
        prometheus_client.ProcessCollector(registry=registry)
        self._server.registry = registry
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.socket.getsockname()[:2]
        return host, port

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={'poll_interval': 0.5},
            name='health-http', daemon=True)
        self._thread.start()
        LOG.info('Health endpoints on http://%s:%d/metrics and /healthz',
                 *self.address)

    def stop(self) -> None:
        """Stop serving and close this process's copy of the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()


def port_of(conf: cfg.ConfigOpts, daemon: str, worker: int) -> int:
    """The port of ``worker`` of ``daemon``: its option + worker id
    (0 stays 0: any free port)."""
    first = getattr(conf.health, health.PORT_OPTIONS[daemon])
    return first + worker if first else 0


def listen(host: str, port: int, option: str) -> socket.socket:
    """A listening TCP socket on ``host:port``; :class:`PortInUse` names
    ``option`` if it cannot be bound."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
    except OSError as err:
        sock.close()
        raise PortInUse(
            f'Cannot serve the health endpoints on {host}:{port} ({err}): '
            f'another program may hold the port; change [health] {option} '
            f'(worker i uses port + i) or [health] host, or set [health] '
            f'enabled = false') from err
    return sock


def bind_ports(conf: cfg.ConfigOpts, daemon: str, workers: int) -> None:
    """In the master process: bind the port of every worker now, so a port
    in use stops the daemon at start. Raises :class:`PortInUse`."""
    if not conf.health.enabled:
        return
    option = health.PORT_OPTIONS[daemon]
    for worker in range(workers):
        key = (daemon, worker)
        if key not in _BOUND:
            _BOUND[key] = listen(conf.health.host,
                                 port_of(conf, daemon, worker), option)


def bind_or_exit(conf: cfg.ConfigOpts, daemon: str, workers: int) -> None:
    """:func:`bind_ports`, stopping the program with the reason if a port
    cannot be bound (for the daemons' ``main``)."""
    try:
        bind_ports(conf, daemon, workers)
    except PortInUse as err:
        LOG.critical('%s', err)
        raise SystemExit(str(err)) from None


def serve(conf: cfg.ConfigOpts, ledger: ledger_mod.Ledger,
          checks: checks_mod.Checks) -> HealthServer | None:
    """In a worker process: start serving (None when disabled)."""
    if not conf.health.enabled:
        return None
    key = (ledger.daemon, ledger.worker)
    sock = _BOUND.pop(key, None)
    if sock is None:
        sock = listen(conf.health.host,
                      port_of(conf, ledger.daemon, ledger.worker),
                      health.PORT_OPTIONS[ledger.daemon])
    server = HealthServer(sock, ledger, checks)
    server.start()
    return server
