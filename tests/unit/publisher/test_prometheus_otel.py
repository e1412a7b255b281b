"""prometheus:// and opentelemetryhttp:// publishers (publishers.md §8, §9):
bodies and targets, with the session's post recorded. Real endpoints
parse them in tests/functional/test_publishers.py."""

import datetime
import json

from telemeter import sample
from telemeter.publisher import opentelemetry_http, prometheus
from tests.unit.publisher.test_http_publisher import _recording


def _s(name, type, volume, resource='r1', ts='2031-01-01T00:00:00',
       user='u', project='p', unit='B'):
    return sample.Sample(name, type, unit, volume, user, project, resource,
                         timestamp=ts)


def test_exposition_types_names_and_labels():
    body = prometheus.exposition([
        _s('disk.read-bytes', 'cumulative', 10),
        _s('disk.read-bytes', 'cumulative', 11, resource='r2'),
        _s('cpu_util', 'gauge', 0.5, user=None),
        _s('net.delta', 'delta', 3, resource='we"ird\\id\n'),
    ])
    assert body == (
        '# TYPE disk_read_bytes counter\n'
        'disk_read_bytes{resource_id="r1", user_id="u", project_id="p"} 10\n'
        'disk_read_bytes{resource_id="r2", user_id="u", project_id="p"} 11\n'
        '# TYPE cpu_util gauge\n'
        'cpu_util{resource_id="r1", user_id="None", project_id="p"} 0.5\n'
        'net_delta{resource_id="we\\"ird\\\\id\\n", user_id="u", '
        'project_id="p"} 3\n')


def test_one_push_per_resource(make):
    publisher = make('prometheus://gw:9091/metrics/job/telemeter')
    assert publisher.target == 'http://gw:9091/metrics/job/telemeter'
    recorder = _recording(publisher)
    publisher.publish_samples([_s('a', 'gauge', 1, resource='vm/1 x'),
                               _s('b', 'gauge', 2, resource='vm/1 x'),
                               _s('a', 'gauge', 3, resource='host-2')])
    publisher.publish_samples([])
    assert [url for url, _ in recorder.posts] == [
        'http://gw:9091/metrics/job/telemeter/resource_id/vm%2F1%20x',
        'http://gw:9091/metrics/job/telemeter/resource_id/host-2']
    first = recorder.posts[0][1]
    assert first['headers'] == {'Content-type': 'plain/text'}
    # The TYPE line is repeated in each body: each is a push of its own.
    assert first['data'].count('# TYPE a gauge') == 1
    assert recorder.posts[1][1]['data'].startswith('# TYPE a gauge\n')


def test_grouping_labels_in_path_push_once_over_https(make):
    publisher = make('prometheus://gw:9091/metrics/job/tm/instance/i1'
                     '?ssl=1&timeout=2')
    assert publisher.target == 'https://gw:9091/metrics/job/tm/instance/i1'
    recorder = _recording(publisher)
    publisher.publish_samples([_s('a', 'gauge', 1, resource='r1'),
                               _s('a', 'gauge', 2, resource='r2')])
    [(url, kwargs)] = recorder.posts
    assert url == 'https://gw:9091/metrics/job/tm/instance/i1'
    assert kwargs['timeout'] == 2


def test_unix_nano_arithmetic():
    # 2031-01-01T00:00:00Z is 61 years of 365 days plus 15 leap days
    # (1972, 1976, ..., 2028) = 22280 days after the epoch, and
    # 22280 * 86400 = 1924992000 s; the .000123 s add 123000 ns.
    assert opentelemetry_http.unix_nano('2031-01-01T00:00:00.000123') == (
        1924992000 * 10**9 + 123000)
    # An offset is honoured: 02:00+02:00 is midnight UTC.
    assert opentelemetry_http.unix_nano('2031-01-01T02:00:00+02:00') == (
        1924992000 * 10**9)
    assert opentelemetry_http.unix_nano(
        datetime.datetime(2031, 1, 1)) == 1924992000 * 10**9
    assert (datetime.date(2031, 1, 1) - datetime.date(1970, 1, 1)).days == (
        22280)


def test_otlp_document_per_sample(make, caplog):
    publisher = make('opentelemetryhttp://otel:4318/v1/metrics?x=1')
    assert publisher.target == 'http://otel:4318/v1/metrics?x=1'
    recorder = _recording(publisher)
    publisher.publish_samples([
        _s('disk.read.bytes', 'cumulative', 10, unit='B'),
        _s('cpu.util', 'gauge', 1, ts='not a time'),
        _s('mem', 'delta', 2, unit='MB', ts='2031-01-01T00:00:01')])
    assert 'Get data point error' in caplog.text
    bodies = [json.loads(kw['data']) for _, kw in recorder.posts]
    assert len(bodies) == 2
    [[scope]] = [b['resource_metrics'][0]['scope_metrics'] for b in
                 bodies[:1]]
    assert scope['scope'] == {'name': 'telemeter', 'version': 'v1'}
    [metric] = scope['metrics']
    assert metric == {
        'name': 'disk_read_bytes', 'description': 'disk.read.bytes unit:B',
        'unit': 'B',
        'counter': {'data_points': [{
            'attributes': [
                {'key': 'resource_id', 'value': {'string_value': 'r1'}},
                {'key': 'user_id', 'value': {'string_value': 'u'}},
                {'key': 'project_id', 'value': {'string_value': 'p'}}],
            'start_time_unix_nano': 1924992000 * 10**9,
            'time_unix_nano': 1924992000 * 10**9,
            'as_double': 10.0, 'flags': 0}]}}
    delta = bodies[1]['resource_metrics'][0]['scope_metrics'][0][
        'metrics'][0]
    assert 'gauge' in delta and 'counter' not in delta
    assert delta['gauge']['data_points'][0]['time_unix_nano'] == (
        1924992001 * 10**9)


def test_otlp_empty_list_warns(make, caplog):
    publisher = make('opentelemetryhttp://otel:4318/v1/metrics')
    recorder = _recording(publisher)
    publisher.publish_samples([])
    assert recorder.posts == []
    assert 'Data samples is empty!' in caplog.text
