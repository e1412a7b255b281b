"""telemeter-api behind keystonemiddleware ``auth_token``: 401 without a
valid token; a project member sees only its project through every
endpoint, whatever it asks; an admin sees everything.

Token validation is answered by tests.functional.fixtures.keystone
(a local Keystone v3 stand-in: ``GET /v3/auth/tokens``); a real Keystone
was not run here (see the closing note of issue 11).
"""

from __future__ import annotations

import json

import pytest

from tests import api_data
from tests.functional import api_server
from tests.functional.fixtures import keystone
from tests.functional.test_api_cli import _store

TOKENS = {'token-a': ('pa', 'member'), 'token-b': ('pb', 'member'),
          'token-admin': ('admin-project', 'admin')}


def _validate(fake: keystone.FakeKeystone):
    def answer(request: dict) -> tuple[int, str, str]:
        subject = request['headers'].get('x-subject-token')
        if subject not in TOKENS:
            return 404, 'application/json', json.dumps(
                {'error': {'code': 404, 'message': 'token not found'}})
        project, role = TOKENS[subject]
        body = fake._token_body()
        body['token'].update(
            user={'id': f'user-{project}', 'name': f'user-{project}',
                  'domain': {'id': 'default', 'name': 'Default'}},
            project={'id': project, 'name': project,
                     'domain': {'id': 'default', 'name': 'Default'}},
            roles=[{'id': role, 'name': role}], catalog=[])
        return 200, 'application/json', json.dumps(body)
    return answer


@pytest.fixture(scope='module')
def api(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('api-auth')
    fake = keystone.FakeKeystone()
    fake.routes['/v3/auth/tokens'] = _validate(fake)
    fake.start()
    url = f'sqlite:///{workdir / "telemeter.db"}'
    _store(workdir, url)
    server = api_server.ApiServer(workdir, url, auth_mode='keystone',
                                  extra_conf=f"""
        [keystone_authtoken]
        www_authenticate_uri = {fake.url}/v3
        auth_url = {fake.url}/v3
        auth_type = password
        username = telemeter
        password = secret
        project_name = service
        user_domain_id = default
        project_domain_id = default
        interface = public
        """)
    try:
        yield server.wait_ready()
    finally:
        server.stop()
        fake.stop()


ENDPOINTS = ['/v2/meters', '/v2/meters/cpu_util', '/v2/samples',
             '/v2/samples/sample-0', '/v2/meters/cpu_util/statistics',
             '/v2/resources', '/v2/resources/r-a', '/v2/events',
             '/v2/events/ev-a', '/v2/event_types',
             '/v2/event_types/image.upload/traits',
             '/v2/event_types/image.upload/traits/vcpus',
             '/v2/capabilities', '/dashboard']


@pytest.mark.parametrize('headers', [{}, {'X-Auth-Token': 'forged'},
                                     {'X-Roles': 'admin'}])
def test_missing_or_invalid_token_is_401(api, headers):
    for path in ENDPOINTS:
        status, _ = api.request('GET', path, headers=headers)
        assert status == 401, path
    status, _ = api.request('POST', '/v2/query/samples', body=b'{}',
                            headers=headers)
    assert status == 401


def test_versions_need_no_token(api):
    assert api.get_json('/')['versions']['values'][0]['id'] == 'v2'


def _projects(items: list[dict]) -> set[str]:
    found = set()
    for item in items:
        if 'traits' in item:
            found |= {t['value'] for t in item['traits']
                      if t['name'] == 'project_id'}
        else:
            found.add(item['project_id'])
    return found


@pytest.mark.parametrize('path', ['/v2/meters', '/v2/meters/cpu_util',
                                  '/v2/samples', '/v2/resources',
                                  '/v2/events'])
def test_member_lists_only_its_project_admin_all(api, path):
    member = api.get_json(path, headers={'X-Auth-Token': 'token-a'})
    assert _projects(member) == {'pa'}
    admin = api.get_json(path, headers={'X-Auth-Token': 'token-admin'})
    assert _projects(admin) == {'pa', 'pb'}


@pytest.mark.parametrize('path', [
    '/v2/samples?q.field=project_id&q.value=pb',
    '/v2/meters?q.field=project_id&q.value=pb',
    '/v2/meters/cpu_util?q.field=project&q.value=pb',
    '/v2/resources?q.field=project_id&q.value=pb',
    '/v2/meters/cpu_util/statistics?q.field=project_id&q.value=pb',
    '/v2/events?q.field=project_id&q.value=pb'])
def test_member_asking_for_another_project_gets_nothing(api, path):
    status, body = api.request('GET', path,
                               headers={'X-Auth-Token': 'token-a'})
    assert status == 401, body
    assert api.request('GET', path, headers={
        'X-Auth-Token': 'token-admin'})[0] == 200


def test_member_cannot_read_items_of_another_project(api):
    for path in ('/v2/samples/sample-4', '/v2/resources/r-b',
                 '/v2/events/ev-b'):
        assert api.request('GET', path, headers={
            'X-Auth-Token': 'token-a'})[0] == 404
        assert api.request('GET', path, headers={
            'X-Auth-Token': 'token-admin'})[0] == 200


def test_member_statistics_and_query_are_scoped(api):
    stats = api.get_json('/v2/meters/cpu_util/statistics',
                         headers={'X-Auth-Token': 'token-b'})
    # Project pb holds r-b's two samples: 5 and 15.
    assert [(s['count'], s['sum']) for s in stats] == [(2, 20.0)]
    status, body = api.request(
        'POST', '/v2/query/samples',
        body=json.dumps({'filter': '{"=": {"meter": "cpu_util"}}'}).encode(),
        headers={'X-Auth-Token': 'token-b',
                 'Content-Type': 'application/json'})
    assert status == 200
    assert _projects(json.loads(body)) == {'pb'}
    traits = api.get_json(
        '/v2/event_types/compute.instance.create.end/traits/vcpus',
        headers={'X-Auth-Token': 'token-b'})
    assert [t['value'] for t in traits] == ['4']


def test_cli_with_tokens(api):
    rows = api_server.parse_table(api.cli('meter-list', token='token-a'))
    assert {r['Project ID'] for r in rows} == {'pa'}
    rows = api_server.parse_table(api.cli('meter-list',
                                          token='token-admin'))
    assert {r['Project ID'] for r in rows} == {'pa', 'pb'}
    assert len(api_data.SAMPLES) == 7
