"""Bad input gives 400 naming the parameter, never 500; limits apply."""

from __future__ import annotations

import pytest

BAD_GETS = [
    ('/v2/meters?limit=-1', 'limit'),
    ('/v2/meters?limit=0', 'limit'),
    ('/v2/meters?limit=abc', 'limit'),
    ('/v2/samples?limit=51', 'limit'),
    ('/v2/samples?q.field=nope&q.value=1', 'q.field'),
    ('/v2/samples?q.field=meter&q.op=like&q.value=x', 'q.op'),
    ('/v2/samples?q.field=meter&q.op=ne&q.value=x', 'q.op'),
    ('/v2/samples?q.field=meter&q.value=x&q.type=blob', 'q.type'),
    ('/v2/samples?q.field=metadata.a&q.value=x&q.type=integer', 'q.value'),
    ('/v2/samples?q.field=timestamp&q.op=ge&q.value=yesterday', 'q.value'),
    ('/v2/samples?q.field=timestamp&q.op=eq&q.value=2024-01-01',
     'q.op'),
    ('/v2/samples?q.field=meter&q.field=source&q.value=x', 'q.value'),
    ('/v2/meters?q.field=timestamp&q.op=ge&q.value=2024-01-01',
     'q.field'),
    ('/v2/meters?unique=perhaps', 'unique'),
    ('/v2/meters/cpu_util/statistics?period=-5', 'period'),
    ('/v2/meters/cpu_util/statistics?period=x', 'period'),
    ('/v2/meters/cpu_util/statistics?period=999999999999999999',
     'period'),
    ('/v2/meters/cpu_util/statistics?groupby=colour', 'groupby'),
    ('/v2/meters/cpu_util/statistics?aggregate.func=median',
     'aggregate.func'),
    ('/v2/meters/cpu_util/statistics?aggregate.func=cardinality'
     '&aggregate.param=colour', 'aggregate'),
    ('/v2/meters/cpu_util/statistics?aggregate.param=x', 'aggregate.param'),
    ('/v2/events?q.field=vcpus&q.type=integer&q.value=two', 'q.value'),
    ('/v2/events?q.field=event_type&q.op=gt&q.value=a', 'q.op'),
    ('/v2/events?q.field=start_timestamp&q.value=never', 'q.value'),
    ('/v2/events?limit=0', 'limit'),
]


@pytest.mark.parametrize('path,parameter', BAD_GETS)
def test_bad_query_is_400_naming_the_parameter(client, path, parameter):
    response = client.request('GET', path)
    assert response.status_code == 400, response.text
    fault = response.json['error_message']['faultstring']
    assert fault.startswith(parameter), fault


BAD_QUERIES = [
    ({'filter': '{"=": '}, 'filter'),
    ({'filter': '{"like": {"meter": "x"}}'}, 'filter'),
    ({'filter': '{"=": {"colour": "x"}}'}, 'filter'),
    ({'filter': '{"and": [{"=": {"meter": "x"}}]}'}, 'filter'),
    ({'filter': '{"=": {"timestamp": "not a time"}}'}, 'filter'),
    ({'filter': '{"=~": {"meter": "("}}'}, 'filter'),
    ({'filter': '{"in": {"meter": []}}'}, 'filter'),
    ({'filter': 42}, 'filter'),
    ({'filter': '{"<": {"resource": 5}}'}, 'filter'),
    ({'filter': '{"=": {"volume": "high"}}'}, 'filter'),
    ({'filter': '{">=": {"metadata.instance_type": true}}'}, 'filter'),
    ({'filter': '{"in": {"project": ["pa", 3]}}'}, 'filter'),
    ({'orderby': '[{"volume": "up"}]'}, 'orderby'),
    ({'orderby': '[{"colour": "asc"}]'}, 'orderby'),
    ({'limit': -3}, 'limit'),
    ({'limit': 'ten'}, 'limit'),
    ({'colour': 'red'}, 'colour'),
    ([1, 2], 'body'),
]


@pytest.mark.parametrize('body,parameter', BAD_QUERIES)
def test_bad_complex_query_is_400(client, body, parameter):
    response = client.request('POST', '/v2/query/samples', body=body)
    assert response.status_code == 400, response.text
    assert response.json['error_message']['faultstring'].startswith(
        parameter)


def test_malformed_json_body_is_400(client):
    response = client.request('POST', '/v2/query/samples', body=b'{nope')
    assert response.status_code == 400
    assert 'body' in response.json['error_message']['faultstring']


@pytest.mark.parametrize('body,parameter', [
    ([{'counter_name': 'other', 'counter_type': 'gauge',
       'counter_unit': 'u', 'counter_volume': 1, 'resource_id': 'r'}],
     '[0].counter_name'),
    ([{'counter_name': 'm', 'counter_type': 'weird', 'counter_unit': 'u',
       'counter_volume': 1, 'resource_id': 'r'}], '[0].counter_type'),
    ([{'counter_name': 'm', 'counter_type': 'gauge', 'counter_unit': 'u',
       'counter_volume': 'lots', 'resource_id': 'r'}],
     '[0].counter_volume'),
    ([{'counter_name': 'm', 'counter_type': 'gauge', 'counter_unit': 'u',
       'counter_volume': 1}], '[0].resource_id'),
    ([{'counter_name': 'm', 'counter_type': 'gauge', 'counter_unit': 'u',
       'counter_volume': 1, 'resource_id': 'r', 'timestamp': 'soon'}],
     '[0].timestamp'),
    ([], 'body'),
])
def test_bad_posted_samples_are_400(client, body, parameter):
    response = client.request('POST', '/v2/meters/m?direct=True',
                              body=body)
    assert response.status_code == 400, response.text
    assert response.json['error_message']['faultstring'].startswith(
        parameter)


def test_unknown_path_and_method(client):
    assert client.request('GET', '/v3/nothing').status_code == 404
    assert client.request('DELETE', '/v2/meters').status_code == 405


def test_statistics_with_too_many_periods_is_400(client, api_conf):
    api_conf.set_override('max_api_return_limit', 2, 'api')
    try:
        response = client.request(
            'GET', '/v2/meters/cpu_util/statistics?period=60')
    finally:
        api_conf.clear_override('max_api_return_limit', 'api')
    assert response.status_code == 400
    assert response.json['error_message']['faultstring'].startswith(
        'period: more than 2 statistics')
