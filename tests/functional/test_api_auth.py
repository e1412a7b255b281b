"""telemeter-api behind keystonemiddleware ``auth_token``: 401 without a
valid token; a project member sees only its project through every
endpoint, whatever it asks; an admin sees everything.

Run twice: against a real Keystone (PyPI's ``keystone`` in
``.venv-keystone``, SQLite, ``keystone-manage bootstrap``, gunicorn;
projects and members made through its API) and against the local
Keystone v3 stand-in of tests.functional.fixtures.keystone.
"""

from __future__ import annotations

import json

import pytest

from tests.functional import api_server
from tests.functional.fixtures import keystone, real_keystone
from tests.functional.test_api_cli import _store

STAND_IN_TOKENS = {'token-a': ('pa', 'member'), 'token-b': ('pb', 'member'),
                   'token-admin': ('admin-project', 'admin')}


def _validate(fake: keystone.FakeKeystone):
    def answer(request: dict) -> tuple[int, str, str]:
        subject = request['headers'].get('x-subject-token')
        if subject not in STAND_IN_TOKENS:
            return 404, 'application/json', json.dumps(
                {'error': {'code': 404, 'message': 'token not found'}})
        project, role = STAND_IN_TOKENS[subject]
        body = fake._token_body()
        body['token'].update(
            user={'id': f'user-{project}', 'name': f'user-{project}',
                  'domain': {'id': 'default', 'name': 'Default'}},
            project={'id': project, 'name': project,
                     'domain': {'id': 'default', 'name': 'Default'}},
            roles=[{'id': role, 'name': role}], catalog=[])
        return 200, 'application/json', json.dumps(body)
    return answer


def _stand_in(request, workdir):
    fake = keystone.FakeKeystone()
    fake.routes['/v3/auth/tokens'] = _validate(fake)
    fake.start()
    request.addfinalizer(fake.stop)
    options = f"""
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
        """
    tokens = {'a': 'token-a', 'b': 'token-b', 'admin': 'token-admin'}
    return options, tokens, {'pa': 'pa', 'pb': 'pb'}


def _real(request, workdir):
    real_keystone.keystone_venv_or_fail()
    (workdir / 'keystone').mkdir()
    server = real_keystone.Keystone(workdir / 'keystone',
                                    api_server.free_port())
    request.addfinalizer(server.stop)
    server.start()
    admin = server.token('admin', real_keystone.ADMIN_PASSWORD, 'admin')
    projects = {name: server.member_of_new_project(
        admin, name, f'user-{name}', f'pw-{name}') for name in ('pa', 'pb')}
    tokens = {'a': server.token('user-pa', 'pw-pa', 'pa'),
              'b': server.token('user-pb', 'pw-pb', 'pb'), 'admin': admin}
    return server.authtoken_options(), tokens, projects


@pytest.fixture(scope='module', params=['keystone', 'stand-in'])
def api(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f'api-auth-{request.param}')
    make = _real if request.param == 'keystone' else _stand_in
    options, tokens, projects = make(request, workdir)
    url = f'sqlite:///{workdir / "telemeter.db"}'
    _store(workdir, url, projects)
    server = api_server.ApiServer(workdir, url, auth_mode='keystone',
                                  extra_conf=options)
    server.tokens = tokens
    server.projects = projects
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def _as(api, who: str) -> dict:
    return {'X-Auth-Token': api.tokens[who]}


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
    pa, pb = api.projects['pa'], api.projects['pb']
    assert _projects(api.get_json(path, headers=_as(api, 'a'))) == {pa}
    assert _projects(api.get_json(path, headers=_as(api, 'b'))) == {pb}
    assert _projects(api.get_json(path, headers=_as(api, 'admin'))) == {
        pa, pb}


@pytest.mark.parametrize('path', [
    '/v2/samples?q.field=project_id&q.value={pb}',
    '/v2/meters?q.field=project_id&q.value={pb}',
    '/v2/meters/cpu_util?q.field=project&q.value={pb}',
    '/v2/resources?q.field=project_id&q.value={pb}',
    '/v2/meters/cpu_util/statistics?q.field=project_id&q.value={pb}',
    '/v2/events?q.field=project_id&q.value={pb}'])
def test_member_asking_for_another_project_gets_nothing(api, path):
    path = path.format(pb=api.projects['pb'])
    status, body = api.request('GET', path, headers=_as(api, 'a'))
    assert status == 401, body
    status, body = api.request('GET', path, headers=_as(api, 'admin'))
    assert status == 200 and json.loads(body), body


def test_member_cannot_read_items_of_another_project(api):
    for path in ('/v2/samples/sample-4', '/v2/resources/r-b',
                 '/v2/events/ev-b'):
        assert api.request('GET', path, headers=_as(api, 'a'))[0] == 404
        assert api.request('GET', path, headers=_as(api, 'b'))[0] == 200
        assert api.request('GET', path,
                           headers=_as(api, 'admin'))[0] == 200


def test_member_statistics_query_and_traits_are_scoped(api):
    stats = api.get_json('/v2/meters/cpu_util/statistics',
                         headers=_as(api, 'b'))
    # Project pb holds r-b's two samples: 5 and 15.
    assert [(s['count'], s['sum']) for s in stats] == [(2, 20.0)]
    status, body = api.request(
        'POST', '/v2/query/samples',
        body=json.dumps({'filter': '{"=": {"meter": "cpu_util"}}'}).encode(),
        headers={**_as(api, 'b'), 'Content-Type': 'application/json'})
    assert status == 200
    assert _projects(json.loads(body)) == {api.projects['pb']}
    traits = api.get_json(
        '/v2/event_types/compute.instance.create.end/traits/vcpus',
        headers=_as(api, 'b'))
    assert [t['value'] for t in traits] == ['4']


def test_member_cannot_post_straight_to_storage(api):
    sample = [{'counter_name': 'm', 'counter_type': 'gauge',
               'counter_unit': 'u', 'counter_volume': 1,
               'resource_id': 'r'}]
    status, _ = api.request('POST', '/v2/meters/m?direct=True',
                            body=json.dumps(sample).encode(),
                            headers={**_as(api, 'a'),
                                     'Content-Type': 'application/json'})
    assert status == 403


def test_cli_with_tokens(api):
    rows = api_server.parse_table(api.cli('meter-list',
                                          token=api.tokens['a']))
    assert {r['Project ID'] for r in rows} == {api.projects['pa']}
    rows = api_server.parse_table(api.cli('meter-list',
                                          token=api.tokens['admin']))
    assert {r['Project ID'] for r in rows} == set(api.projects.values())
