#!/usr/bin/env python3
"""Polling benchmark: the cost of one polling cycle per pollster family.

Runs, in-process and without a broker, the pollsters of one agent over:

* SNMP: every meter of the packaged ``snmp.yaml`` against ``--hosts``
  resources that all point at one snmpd (``--snmp-url``, e.g. the URL
  ``tools/services.sh env snmpd`` prints), each resource a distinct
  ``{resource_id, resource_url}`` so nothing is shared between hosts but
  the SNMP engine;
* libvirt: every compute meter against the running instances of libvirt's
  test driver (``--libvirt-uri``, default the functional tests' node file);
* dynamic: one JSON pollster reading ``--entries`` entries through a local
  Keystone v3 + API server.

For each it prints the cycle time (median of ``--cycles``), the samples
produced and samples/s. No target is set by the issue; the figures say how
many hosts/instances one agent can poll per interval on this machine.

    .venv/bin/python tools/bench/polling_bench.py \\
        --snmp-url snmp://telemeter-ro@127.0.0.1:16161 --hosts 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

from oslo_config import cfg

from telemeter import keystone_client, service
from telemeter.polling.compute import devices, discovery
from telemeter.polling.compute import pollsters as compute
from telemeter.polling.dynamic import definitions, pollster
from telemeter.polling.hardware import pollsters as hardware

DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'tests',
                    'functional', 'data', 'libvirt-node.xml')


def _conf(extra: str = '') -> cfg.ConfigOpts:
    with tempfile.NamedTemporaryFile('w', suffix='.conf',
                                     delete=False) as f:
        f.write(extra)
    try:
        return service.prepare_service(['bench'], [f.name], cfg.ConfigOpts())
    finally:
        os.unlink(f.name)


def _cycles(label: str, cycles: int, run) -> None:
    times, count = [], 0
    for _ in range(cycles):
        started = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f'{label}: {count} samples per cycle, cycle median '
          f'{median * 1000:.1f} ms (min {min(times) * 1000:.1f}, max '
          f'{max(times) * 1000:.1f}), {count / median:.0f} samples/s')


def bench_snmp(args) -> None:
    conf = _conf()
    built = hardware.GenericHardwareDeclarativePollster.build_pollsters(conf)
    resources = [{'resource_id': f'host-{i}', 'resource_url': args.snmp_url}
                 for i in range(args.hosts)]

    def run() -> int:
        # The cycle cache is keyed by URL, and all hosts share one URL
        # here: a cache per host keeps them apart (as distinct hosts
        # would be), shared by the meters of that host.
        caches = [{} for _ in resources]
        total = 0
        for _, p in built:
            for resource, cache in zip(resources, caches, strict=True):
                total += len(list(p.get_samples(None, cache, [resource])))
        return total

    _cycles(f'snmp   ({len(built)} meters x {args.hosts} hosts)',
            args.cycles, run)


def bench_libvirt(args) -> None:
    conf = _conf(f'[DEFAULT]\nlibvirt_uri = {args.libvirt_uri}\n')
    instances = discovery.InstanceDiscovery(conf).discover(None)
    classes = list(compute.STATS_POLLSTERS.values()) + [
        cls for name, cls in {**devices.DISK_POLLSTERS,
                              **devices.NETWORK_POLLSTERS}.items()
        if not name.endswith(('.rate', 'latency', 'iops'))]
    built = [cls(conf) for cls in classes]

    def run() -> int:
        cache: dict = {}
        return sum(len(list(p.get_samples(None, cache, instances)))
                   for p in built)

    _cycles(f'libvirt ({len(built)} meters x {len(instances)} instances)',
            args.cycles, run)


def bench_dynamic(args) -> None:
    from tests.functional.fixtures import keystone

    server = keystone.FakeKeystone().start()
    try:
        server.add_service('bench', '/bench')
        server.add_json('/bench/items', {'items': [
            {'id': f'r{i}', 'size': i, 'user_id': 'u', 'project_id': 'p',
             'name': f'item-{i}'} for i in range(args.entries)]})
        conf = _conf('[service_credentials]\n' + server.auth_options())
        d = definitions.validate({
            'name': 'bench.size', 'sample_type': 'gauge', 'unit': 'B',
            'value_attribute': 'size | value * 1024',
            'endpoint_type': 'bench', 'url_path': 'items',
            'response_entries_key': 'items', 'metadata_fields': ['name']})
        p = pollster.DynamicPollster(conf, d)

        class Manager:
            keystone = keystone_client.get_client(conf)

        endpoint = Manager.keystone.get_endpoints('bench')[0]
        _cycles(f'dynamic (1 pollster x {args.entries} entries)',
                args.cycles,
                lambda: len(list(p.get_samples(Manager, {}, [endpoint]))))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--snmp-url', help='snmp:// URL of an snmpd; the '
                        'SNMP benchmark is skipped without it')
    parser.add_argument('--hosts', type=int, default=10)
    parser.add_argument('--libvirt-uri', default=f'test://{os.path.abspath(DATA)}')
    parser.add_argument('--entries', type=int, default=1000)
    parser.add_argument('--cycles', type=int, default=5)
    args = parser.parse_args()
    if args.snmp_url:
        bench_snmp(args)
    else:
        print('snmp: skipped (no --snmp-url)')
    bench_libvirt(args)
    bench_dynamic(args)


if __name__ == '__main__':
    main()
