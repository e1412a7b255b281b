"""1,000 fuzzed query strings and bodies to telemeter-api over
PostgreSQL: every answer is 2xx or 4xx (never 5xx) and the server stays
up.

The input is drawn from a seeded :class:`random.Random`
(``TELEMETER_API_FUZZ_SEED``), so a run is repeatable;
``TELEMETER_API_FUZZ_COUNT`` sets the number of requests (1,000).
"""

from __future__ import annotations

import json
import os
import random
import urllib.parse
from typing import Any

import pytest

from tests.functional import api_server
from tests.functional.test_api_cli import _store

COUNT = int(os.environ.get('TELEMETER_API_FUZZ_COUNT', '1000'))
SEED = int(os.environ.get('TELEMETER_API_FUZZ_SEED', '11'))

PATHS = ['/v2/meters', '/v2/meters/cpu_util', '/v2/samples',
         '/v2/meters/cpu_util/statistics', '/v2/resources', '/v2/events',
         '/v2/samples/sample-1', '/v2/resources/r-a', '/v2/events/ev-a',
         '/v2/event_types', '/v2/event_types/image.upload/traits',
         '/v2/event_types/image.upload/traits/vcpus', '/v2/capabilities',
         '/v2/meters/%ff', '/v2/resources/%00', '/v2/samples/%e9t%C3%A9',
         '/dashboard']
FIELDS = ['meter', 'resource_id', 'project_id', 'project', 'user',
          'user_id', 'timestamp', 'metadata.instance_type',
          'resource_metadata.flavor.name', 'search_offset', 'source',
          'message_id', 'event_type', 'vcpus', 'start_timestamp',
          'end_timestamp', 'counter_volume', '', 'unique']
OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', '', 'like', 'EQ', '=']
TYPES = ['string', 'integer', 'float', 'boolean', 'datetime', '', 'blob']
VALUES = ['1', '-1', '0', '1e309', 'nan', 'inf', '2024-03-01T00:00:00',
          '2024-13-45T99:00', '2024-03-01T00:00:00+25:00', 'true', 'maybe',
          '[1, 2]', "{'a': 1}", "'quoted'", '\x00', '9' * 400,
          '-' + '9' * 30, 'm1.small', 'pa', 'pb', 'r-a', '((((', '[' * 200,
          '1' * 300, '\ud800', 'é' * 10, '%', '0x10']
PARAMS = ['limit', 'period', 'groupby', 'aggregate.func',
          'aggregate.param', 'unique', 'meter_links', 'direct']
PARAM_VALUES = ['-1', '0', '1', '3', '10001', 'x', '99999999999999999999',
                'resource_id', 'project_id', 'source', 'colour', 'stddev',
                'cardinality', 'median', 'True', '', '3600', '1.5',
                'resource_metadata.instance_type']
TREE_OPS = ['and', 'or', 'not', 'in', '=', '!=', '<', '>', '<=', '=<',
            '>=', '=>', '=~', 'AND', 'like', '']
TREE_FIELDS = ['meter', 'counter_volume', 'volume', 'timestamp',
               'recorded_at', 'resource', 'project_id', 'project',
               'metadata.instance_type', 'metadata.', 'resource_metadata',
               'colour', 'message_signature', 'source_id']


def _value(rng: random.Random) -> Any:
    return rng.choice([
        rng.choice(VALUES), rng.randint(-2**70, 2**70), rng.random() * 1e6,
        True, None, [], {}, [rng.choice(VALUES)], 1e308 * 10, -0.0,
        ''.join(chr(rng.randint(0, 0x2FFF)) for _ in range(5))])


def _tree(rng: random.Random, depth: int = 0) -> Any:
    op = rng.choice(TREE_OPS)
    if depth > 3 or rng.random() < 0.4:
        return {op: {rng.choice(TREE_FIELDS): _value(rng)}}
    if op.lower() in ('and', 'or'):
        return {op: [_tree(rng, depth + 1)
                     for _ in range(rng.randint(0, 3))]}
    if op == 'not':
        return {op: _tree(rng, depth + 1)}
    return rng.choice([{op: [_value(rng)]}, [_tree(rng, depth + 1)],
                       _value(rng)])


def _query_string(rng: random.Random) -> str:
    pairs: list[tuple[str, str]] = []
    for _ in range(rng.randint(0, 3)):
        if rng.random() < 0.9:
            pairs.append(('q.field', rng.choice(FIELDS)))
        if rng.random() < 0.8:
            pairs.append(('q.op', rng.choice(OPS)))
        if rng.random() < 0.9:
            pairs.append(('q.value', rng.choice(VALUES)))
        if rng.random() < 0.7:
            pairs.append(('q.type', rng.choice(TYPES)))
    for _ in range(rng.randint(0, 3)):
        pairs.append((rng.choice(PARAMS), rng.choice(PARAM_VALUES)))
    rng.shuffle(pairs) if rng.random() < 0.2 else None
    text = urllib.parse.urlencode(pairs, errors='surrogatepass')
    if rng.random() < 0.1:
        text += rng.choice(['&q.value=%ff%fe', '&limit=%00', '&&&=',
                            '&q.field', '&%zz=1'])
    return text


def _request(rng: random.Random) -> tuple[str, str, bytes | None]:
    kind = rng.random()
    if kind < 0.6:
        return 'GET', f'{rng.choice(PATHS)}?{_query_string(rng)}', None
    if kind < 0.85:
        body: Any = {'filter': json.dumps(_tree(rng)),
                     'orderby': json.dumps(rng.choice([
                         [{rng.choice(TREE_FIELDS): rng.choice(
                             ['asc', 'DESC', 'up', 1])}],
                         {'volume': 'asc'}, [], 'x'])),
                     'limit': rng.choice([None, -1, 0, 5, 'x', 10**20])}
        for key in list(body):
            if rng.random() < 0.25:
                del body[key]
        if rng.random() < 0.1:
            body['filter'] = _tree(rng)  # not JSON text
        data = json.dumps(body).encode()
        if rng.random() < 0.1:
            data = data[:rng.randint(0, len(data))] + b'\xff'
        return 'POST', '/v2/query/samples', data
    sample = {'counter_name': rng.choice(['fuzzed', 'other', None]),
              'counter_type': rng.choice(['gauge', 'delta', 'x', None]),
              'counter_unit': rng.choice(['u', '', 7, 'x' * 300]),
              'counter_volume': _value(rng),
              'resource_id': rng.choice(['r-f', '', None, 'r\x00', 5,
                                         'x' * 300]),
              'timestamp': rng.choice([None, '2024-03-01T00:00:00',
                                       'later', 5]),
              'resource_metadata': rng.choice([{}, {'a': {'b': [1]}},
                                               'x', None]),
              'project_id': rng.choice([None, 'pa', 'x' * 300])}
    body = rng.choice([[sample], sample, [], [sample, 5], None])
    direct = rng.choice(['?direct=True', '?direct=maybe', ''])
    return 'POST', f'/v2/meters/fuzzed{direct}', json.dumps(body).encode()


@pytest.fixture(scope='module')
def api(tmp_path_factory, postgresql_url):
    workdir = tmp_path_factory.mktemp('api-fuzz')
    _store(workdir, postgresql_url)
    # No message bus: a sample posted without direct=True has nowhere
    # to go, so the pipeline only logs it.
    pipeline = workdir / 'pipeline.yaml'
    pipeline.write_text('sources: [{name: s, meters: ["*"], '
                        'sinks: [k]}]\nsinks: [{name: k, publishers: '
                        '["test://"]}]\n')
    server = api_server.ApiServer(
        workdir, postgresql_url,
        extra_conf=f'[DEFAULT]\npipeline_cfg_file = {pipeline}\n')
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_fuzzed_requests_never_give_5xx(api):
    rng = random.Random(SEED)
    failures = []
    statuses: dict[int, int] = {}
    for _ in range(COUNT):
        method, path, body = _request(rng)
        headers = {'Content-Type': 'application/json'} if body else {}
        status, answer = api.request(method, path, body=body,
                                     headers=headers)
        statuses[status] = statuses.get(status, 0) + 1
        if not (200 <= status < 500):
            failures.append((method, path, body, status, answer[:300]))
    assert not failures, f'{len(failures)} 5xx of {COUNT}: {failures[:5]}'
    assert api.daemon.alive()
    assert api.get_json('/')['versions']['values'][0]['id'] == 'v2'
    # The fuzz reached both sides: answers and refusals.
    assert sum(n for s, n in statuses.items() if s < 300) > COUNT // 20
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) > \
        COUNT // 4
