"""Project scoping: a non-admin sees only its project, whatever it asks.

In noauth mode the credentials come from the X-Roles / X-Project-Id
headers (keystonemiddleware sets the same headers from a token).
"""

from __future__ import annotations

import pytest

MEMBER_A = {'X-Roles': 'member', 'X-Project-Id': 'pa', 'X-User-Id': 'ua'}
ADMIN = {'X-Roles': 'admin', 'X-Project-Id': 'pa'}

LISTS = ['/v2/meters', '/v2/samples', '/v2/meters/cpu_util',
         '/v2/resources', '/v2/events']


@pytest.mark.parametrize('path', LISTS)
def test_member_sees_only_its_project(client, path):
    items = client.get(path + '?limit=50', headers=MEMBER_A)
    assert items
    projects = set()
    for item in items:
        if 'traits' in item:
            projects |= {t['value'] for t in item['traits']
                         if t['name'] == 'project_id'}
        else:
            projects.add(item['project_id'])
    assert projects == {'pa'}
    every = client.get(path + '?limit=50', headers=ADMIN)
    assert len(every) > len(items)


@pytest.mark.parametrize('path', [
    '/v2/samples?q.field=project_id&q.value=pb',
    '/v2/meters?q.field=project&q.value=pb',
    '/v2/resources?q.field=project_id&q.value=pb',
    '/v2/meters/cpu_util/statistics?q.field=project_id&q.value=pb',
    '/v2/events?q.field=project_id&q.value=pb',
])
def test_member_asking_for_another_project_is_refused(client, path):
    response = client.request('GET', path, headers=MEMBER_A)
    assert response.status_code == 401, response.text


def test_member_cannot_read_other_project_items(client):
    for path in ('/v2/samples/sample-4', '/v2/resources/r-b',
                 '/v2/events/ev-b'):
        assert client.request('GET', path,
                              headers=MEMBER_A).status_code == 404
        assert client.request('GET', path, headers=ADMIN).status_code == 200


def test_member_statistics_count_only_its_samples(client):
    stats = client.get('/v2/meters/cpu_util/statistics', headers=MEMBER_A)
    assert [s['count'] for s in stats] == [4]
    admin = client.get('/v2/meters/cpu_util/statistics', headers=ADMIN)
    assert [s['count'] for s in admin] == [6]


def test_member_complex_query_is_scoped(client):
    found = client.post('/v2/query/samples', {'filter': '{"=": {"meter": '
                                                        '"cpu_util"}}'},
                        headers=MEMBER_A)
    assert {s['project_id'] for s in found} == {'pa'}
    response = client.request(
        'POST', '/v2/query/samples',
        body={'filter': '{"=": {"project": "pb"}}'}, headers=MEMBER_A)
    assert response.status_code == 401


def test_member_event_types_and_traits(client):
    assert client.get('/v2/event_types', headers=MEMBER_A) == [
        'compute.instance.create.end', 'image.upload']
    values = client.get(
        '/v2/event_types/compute.instance.create.end/traits/vcpus',
        headers=MEMBER_A)
    assert [v['value'] for v in values] == ['2']


def test_member_cannot_post_direct_or_to_another_project(client):
    sample = {'counter_name': 'm', 'counter_type': 'gauge',
              'counter_unit': 'u', 'counter_volume': 1,
              'resource_id': 'r'}
    response = client.request('POST', '/v2/meters/m?direct=True',
                              body=[sample], headers=MEMBER_A)
    assert response.status_code == 403
    response = client.request('POST', '/v2/meters/m',
                              body=[dict(sample, project_id='pb')],
                              headers=MEMBER_A)
    assert response.status_code == 400
    assert 'project_id' in response.json['error_message']['faultstring']
