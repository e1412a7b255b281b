"""Every endpoint answers with Ceilometer's v2 JSON shapes and the
stored values."""

from __future__ import annotations

import base64

import pytest

from tests import api_data


def test_versions(client):
    body = client.get('/')
    (version,) = body['versions']['values']
    assert version['id'] == 'v2' and version['status'] == 'stable'
    assert version['links'][0] == {'href': 'http://localhost/v2',
                                   'rel': 'self'}


def test_browser_is_sent_to_the_dashboard(client):
    response = client.request('GET', '/', headers={'Accept': 'text/html'})
    assert response.status_code == 302
    assert response.location.endswith('/dashboard')


def test_meters_per_resource(client):
    meters = client.get('/v2/meters')
    pairs = sorted((m['name'], m['resource_id'], m['project_id'],
                    m['user_id'], m['unit'], m['type']) for m in meters)
    assert pairs == [('cpu_util', 'r-a', 'pa', 'ua', '%', 'gauge'),
                     ('cpu_util', 'r-b', 'pb', 'ub', '%', 'gauge'),
                     ('disk.usage', 'r-a', 'pa', 'ua', 'B', 'gauge')]
    one = next(m for m in meters if m['resource_id'] == 'r-b')
    assert base64.b64decode(one['meter_id']) == b'r-b+cpu_util'


def test_meters_unique_and_query(client):
    unique = client.get('/v2/meters?unique=True')
    assert sorted(m['name'] for m in unique) == ['cpu_util', 'disk.usage']
    assert {m['resource_id'] for m in unique} == {None}
    only_b = client.get('/v2/meters?q.field=project_id&q.op=eq'
                        '&q.value=pb&q.type=')
    assert [(m['name'], m['resource_id']) for m in only_b] == [
        ('cpu_util', 'r-b')]


def test_meter_samples_newest_first_and_limit(client):
    samples = client.get('/v2/meters/cpu_util?limit=2')
    assert [s['counter_volume'] for s in samples] == [40.0, 15.0]
    first = samples[0]
    assert first['timestamp'] == '2024-03-01T01:30:00'
    assert first['resource_metadata'] == {'flavor.name': 'm1.small',
                                          'instance_type': 'm1.small'}
    assert first['message_id'] == 'sample-3'
    assert first['source'] == 'openstack'
    # Without a limit, [api] default_api_return_limit (5) applies.
    assert len(client.get('/v2/meters/cpu_util')) == 5


def test_samples_list_and_show(client):
    samples = client.get('/v2/samples?q.field=resource_id&q.value=r-b')
    assert [(s['id'], s['meter'], s['volume'], s['timestamp'])
            for s in samples] == [
        ('sample-5', 'cpu_util', 15.0, '2024-03-01T01:15:00'),
        ('sample-4', 'cpu_util', 5.0, '2024-03-01T00:15:00')]
    shown = client.get('/v2/samples/sample-6')
    assert shown['meter'] == 'disk.usage' and shown['volume'] == 100.0
    assert shown['metadata']['flavor.name'] == 'm1.small'
    client.get('/v2/samples/nope', status=404)


def test_samples_by_metadata_and_time(client):
    samples = client.get(
        '/v2/samples?q.field=metadata.instance_type&q.value=m1.large')
    assert {s['resource_id'] for s in samples} == {'r-b'}
    samples = client.get(
        '/v2/samples?q.field=timestamp&q.op=ge&q.value=2024-03-01T01:00:00'
        '&q.field=meter&q.op=eq&q.value=cpu_util')
    assert sorted(s['volume'] for s in samples) == [15.0, 30.0, 40.0]


def test_statistics_period(client):
    stats = client.get(
        '/v2/meters/cpu_util/statistics?period=3600'
        '&q.field=timestamp&q.op=ge&q.value=2024-03-01T00:00:00'
        '&q.field=timestamp&q.op=lt&q.value=2024-03-01T02:00:00')
    # [00:00, 01:00): 10, 20 (r-a) and 5 (r-b); [01:00, 02:00): 30, 40, 15.
    assert [(s['count'], s['min'], s['max'], s['sum']) for s in stats] == [
        (3, 5.0, 20.0, 35.0), (3, 15.0, 40.0, 85.0)]
    assert stats[0]['avg'] == pytest.approx(35 / 3)
    assert stats[0]['period'] == 3600
    assert stats[0]['period_start'] == '2024-03-01T00:00:00'
    assert stats[1]['period_end'] == '2024-03-01T02:00:00'
    assert stats[0]['duration_start'] == '2024-03-01T00:00:00'
    assert stats[0]['duration_end'] == '2024-03-01T00:30:00'
    assert stats[0]['duration'] == 1800.0
    assert stats[0]['unit'] == '%'


def test_statistics_groupby_and_aggregates(client):
    stats = client.get(
        '/v2/meters/cpu_util/statistics?groupby=resource_id'
        '&aggregate.func=stddev&aggregate.func=cardinality'
        '&aggregate.param=project_id&aggregate.func=count')
    by_resource = {s['groupby']['resource_id']: s for s in stats}
    a = by_resource['r-a']
    # r-a: 10, 20, 30, 40 → mean 25, population variance 125.
    assert a['aggregate']['stddev'] == pytest.approx(125 ** 0.5)
    assert a['aggregate']['cardinality/project_id'] == 1
    assert a['count'] == 4 and 'min' not in a
    assert by_resource['r-b']['count'] == 2
    assert by_resource['r-b']['duration'] == 3600.0


def test_resources(client):
    resources = client.get('/v2/resources')
    by_id = {r['resource_id']: r for r in resources}
    assert set(by_id) == {'r-a', 'r-b'}
    a = by_id['r-a']
    assert a['first_sample_timestamp'] == '2024-03-01T00:00:00'
    assert a['last_sample_timestamp'] == '2024-03-01T01:30:00'
    assert a['metadata'] == {'flavor.name': 'm1.small',
                             'instance_type': 'm1.small'}
    rels = sorted(link['rel'] for link in a['links'])
    assert rels == ['cpu_util', 'disk.usage', 'self']
    shown = client.get('/v2/resources/r-b')
    assert shown['project_id'] == 'pb' and shown['user_id'] == 'ub'
    client.get('/v2/resources/r-none', status=404)
    plain = client.get('/v2/resources?meter_links=0')
    assert all(len(r['links']) == 1 for r in plain)


def test_complex_query(client):
    body = {'filter': '{"and": [{"=": {"meter": "cpu_util"}}, '
                      '{">=": {"volume": 15}}]}',
            'orderby': '[{"volume": "ASC"}]', 'limit': 3}
    samples = client.post('/v2/query/samples', body)
    assert [s['volume'] for s in samples] == [15.0, 20.0, 30.0]
    body = {'filter': '{"IN": {"resource_id": ["r-b"]}}'}
    assert len(client.post('/v2/query/samples', body)) == 2


def test_events(client):
    events = client.get('/v2/events')
    assert [e['message_id'] for e in events] == ['ev-a', 'ev-b', 'ev-c']
    first = events[0]
    assert first['generated'] == '2024-03-01T00:00:00'
    assert {'name': 'vcpus', 'type': 'integer', 'value': '2'} in \
        first['traits']
    typed = client.get('/v2/events?q.field=vcpus&q.op=gt&q.type=integer'
                       '&q.value=2')
    assert [e['message_id'] for e in typed] == ['ev-b']
    shown = client.get('/v2/events/ev-c')
    assert shown['event_type'] == 'image.upload'
    assert shown['raw'] == {'event_type': 'image.upload'}
    client.get('/v2/events/nope', status=404)


def test_event_types_and_traits(client):
    assert client.get('/v2/event_types') == [
        'compute.instance.create.end', 'image.upload']
    descriptions = client.get(
        '/v2/event_types/compute.instance.create.end/traits')
    assert sorted((d['name'], d['type']) for d in descriptions) == [
        ('project_id', 'string'), ('vcpus', 'integer')]
    values = client.get(
        '/v2/event_types/compute.instance.create.end/traits/vcpus')
    assert sorted(v['value'] for v in values) == ['2', '4']


def test_capabilities(client):
    body = client.get('/v2/capabilities')
    assert body['api']['statistics:aggregation:selectable:stddev'] is True
    assert body['api']['events:query:simple'] is True
    assert body['storage'] == {'storage:production_ready': True}


def test_post_direct_is_stored(client):
    body = [{'counter_name': 'posted', 'counter_type': 'delta',
             'counter_unit': 'req', 'counter_volume': 3,
             'resource_id': 'r-post', 'project_id': 'pa',
             'resource_metadata': {'k': 'v'},
             'timestamp': '2024-03-02T00:00:00'}]
    created = client.post('/v2/meters/posted?direct=True', body,
                          status=201)
    assert created[0]['source'] == 'pa:openstack'
    assert created[0]['message_id']
    stored = client.get('/v2/meters/posted')
    assert [(s['counter_volume'], s['timestamp'], s['message_id'])
            for s in stored] == [(3.0, '2024-03-02T00:00:00',
                                  created[0]['message_id'])]
    assert stored[0]['resource_metadata'] == {'k': 'v'}
    assert len(api_data.SAMPLES) == 7


def test_dashboard_plots_the_statistics(client):
    response = client.request('GET', '/dashboard?meter=cpu_util')
    assert response.status_code == 200
    assert response.content_type == 'text/html'
    text = response.text
    # 90 minutes of samples: 5-minute periods (at most 60 points); each
    # sample alone in its period, in time order 10, 5, 20, 30, 15, 40.
    assert 'data-period="300"' in text
    assert 'data-points="6"' in text
    avgs = [float(part.split('"')[0])
            for part in text.split('data-avg="')[1:]]
    assert avgs == [10.0, 5.0, 20.0, 30.0, 15.0, 40.0]
    assert text.count('<tr><td>') == 6


def test_dashboard_of_one_resource_and_scoped(client):
    text = client.request(
        'GET', '/dashboard?meter=cpu_util&resource_id=r-b').text
    avgs = [float(part.split('"')[0])
            for part in text.split('data-avg="')[1:]]
    assert avgs == [5.0, 15.0]
    member = client.request('GET', '/dashboard?meter=cpu_util', headers={
        'X-Roles': 'member', 'X-Project-Id': 'pb'}).text
    assert '<td>r-a</td>' not in member and '<td>r-b</td>' in member
