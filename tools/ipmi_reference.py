#!/usr/bin/env python3
"""Record what real Ceilometer makes of the IPMI notifications of a fixture.

    /tmp/ceilo-venv/bin/python tools/ipmi_reference.py \\
        tests/unit/notification/data/ipmi_ceilometer27.json [--check]

Run it with the Python of a venv holding ``ceilometer==27.0.0`` (for
example the one ``../shared/bench/notification-peer/setup-ceilometer.sh``
creates in ``/tmp/ceilo-venv``); it imports nothing of telemeter.

The fixture is a JSON object whose ``cases`` each have a ``name`` and a
``notification`` (``ctxt``, ``event_type``, ``payload``, ``publisher_id``,
``priority``, ``metadata``: ``message_id`` and ``timestamp``). For each
case this script hands the notification, as oslo.messaging's batch
dispatcher would, to every ``hardware.ipmi.*`` endpoint that Ceilometer
registers in ``ceilometer.sample.endpoint``: the endpoint's own
``filter_rule`` and priority method (``info``, ``sample``, ...) decide, and
the endpoints share one message dict as they do in the agent. It then
writes the case's ``ceilometer`` entry: ``samples`` (the fields in
``FIELDS`` of every sample published, sorted by name then resource id) or,
when an endpoint raised, ``error`` (``"<Exception>: <text>"``) with the
samples published before it. ``--check`` writes nothing and exits 1 if the
recorded entries differ from what Ceilometer makes now.
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import logging
import sys
from typing import Any

#: Sample fields compared with telemeter (not ``id``: each project makes
#: its own, nor ``monotonic_time``, ``user_name``, ``project_name``).
FIELDS = ('name', 'type', 'unit', 'volume', 'user_id', 'project_id',
          'resource_id', 'timestamp', 'resource_metadata', 'source')
NAMESPACE = 'ceilometer.sample.endpoint'


class _Publisher:
    """What a SampleEndpoint publishes through: collects the samples."""

    def __init__(self) -> None:
        self.samples: list[Any] = []

    def __enter__(self) -> Any:
        return self.samples.extend

    def __exit__(self, *exc_info: Any) -> None:
        """Nothing to flush."""


def _endpoints(publisher: _Publisher) -> list[Any]:
    """Ceilometer's ``hardware.ipmi.*`` sample endpoints, by entry point."""
    points = importlib.metadata.entry_points(group=NAMESPACE)
    return [point.load()(None, publisher)
            for point in sorted(points, key=lambda p: p.name)
            if point.name.startswith('hardware.ipmi.')]


def run_case(notification: dict) -> dict:
    """The ``ceilometer`` entry of one notification."""
    publisher = _Publisher()
    message = copy.deepcopy(notification)
    priority = message.pop('priority').lower()
    error = None
    for endpoint in _endpoints(publisher):
        rule = getattr(endpoint, 'filter_rule', None)
        if rule is not None and not rule.match(
                message['ctxt'], message['publisher_id'],
                message['event_type'], message['metadata'],
                message['payload']):
            continue
        try:
            getattr(endpoint, priority)([message])
        except Exception as err:  # recorded: it is the behaviour
            error = f'{type(err).__name__}: {err}'
            break
    samples = sorted(({f: s.as_dict()[f] for f in FIELDS}
                      for s in publisher.samples),
                     key=lambda s: (s['name'], s['resource_id']))
    entry: dict[str, Any] = {'samples': samples}
    if error is not None:
        entry['error'] = error
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('fixture')
    parser.add_argument('--check', action='store_true',
                        help='compare only; exit 1 on a difference')
    args = parser.parse_args(argv)
    # Ceilometer logs its skipped sensors; they are not the output.
    logging.basicConfig(level=logging.ERROR)
    with open(args.fixture, encoding='utf-8') as stream:
        fixture = json.load(stream)
    version = importlib.metadata.version('ceilometer')
    differ = []
    for case in fixture['cases']:
        entry = json.loads(json.dumps(run_case(case['notification'])))
        if case.get('ceilometer') != entry:
            differ.append(case['name'])
        case['ceilometer'] = entry
    if args.check:
        for name in differ:
            print(f'{args.fixture}: case {name!r} differs', file=sys.stderr)
        return 1 if differ else 0
    fixture['produced_by'] = (f'tools/ipmi_reference.py with ceilometer '
                              f'{version}')
    with open(args.fixture, 'w', encoding='utf-8') as stream:
        json.dump(fixture, stream, indent=1, sort_keys=True)
        stream.write('\n')
    print(f'{args.fixture}: {len(fixture["cases"])} cases, '
          f'{sum(len(c["ceilometer"]["samples"]) for c in fixture["cases"])}'
          f' samples from ceilometer {version}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
