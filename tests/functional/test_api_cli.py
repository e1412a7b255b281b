"""telemeter-api as a process over SQLite and PostgreSQL, read and
written with the real ``ceilometer`` CLI (python-ceilometerclient 2.9.0);
every value is compared with what tests.api_data stored."""

from __future__ import annotations

import json
import math

import pytest
from oslo_config import cfg

from telemeter import service, storage
from tests import api_data
from tests.functional import api_server


def _store(workdir, url: str, projects: dict | None = None) -> None:
    config = workdir / 'writer.conf'
    config.write_text(f'[database]\nconnection = {url}\n')
    conf = service.prepare_service(['writer'], config_files=[str(config)],
                                   conf=cfg.ConfigOpts())
    metering = storage.get_connection(conf, url)
    events = storage.get_connection(conf, url, storage.EVENT_NAMESPACE)
    try:
        api_data.write(metering, events, projects)
    finally:
        metering.dispose()
        events.dispose()


@pytest.fixture(scope='module', params=['sqlite', 'postgresql'])
def api(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f'api-{request.param}')
    if request.param == 'sqlite':
        url = f'sqlite:///{workdir / "telemeter.db"}'
    else:
        url = request.getfixturevalue('postgresql_url')
    _store(workdir, url)
    server = api_server.ApiServer(workdir, url)
    server.url_db = url
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_meter_list(api):
    rows = api_server.parse_table(api.cli('meter-list'))
    assert sorted((r['Name'], r['Type'], r['Unit'], r['Resource ID'],
                   r['User ID'], r['Project ID']) for r in rows) == [
        ('cpu_util', 'gauge', '%', 'r-a', 'ua', 'pa'),
        ('cpu_util', 'gauge', '%', 'r-b', 'ub', 'pb'),
        ('disk.usage', 'gauge', 'B', 'r-a', 'ua', 'pa')]
    rows = api_server.parse_table(api.cli('meter-list', '-q',
                                          'project_id=pb'))
    assert [(r['Name'], r['Resource ID']) for r in rows] == [
        ('cpu_util', 'r-b')]


def test_sample_list_of_a_meter_with_limit(api):
    rows = api_server.parse_table(api.cli('sample-list', '-m', 'cpu_util',
                                          '-l', '3'))
    # Newest first: 01:30 (40, r-a), 01:15 (15, r-b), 01:00 (30, r-a).
    assert [(r['Resource ID'], r['Name'], r['Type'], float(r['Volume']),
             r['Unit'], r['Timestamp']) for r in rows] == [
        ('r-a', 'cpu_util', 'gauge', 40.0, '%', '2024-03-01T01:30:00'),
        ('r-b', 'cpu_util', 'gauge', 15.0, '%', '2024-03-01T01:15:00'),
        ('r-a', 'cpu_util', 'gauge', 30.0, '%', '2024-03-01T01:00:00')]


def test_sample_list_without_meter(api):
    rows = api_server.parse_table(api.cli('sample-list', '-q',
                                          'resource_id=r-b'))
    assert [(r['ID'], r['Name'], float(r['Volume']), r['Timestamp'])
            for r in rows] == [
        ('sample-5', 'cpu_util', 15.0, '2024-03-01T01:15:00'),
        ('sample-4', 'cpu_util', 5.0, '2024-03-01T00:15:00')]
    rows = api_server.parse_table(api.cli('sample-list', '-l', '2'))
    assert len(rows) == 2


def test_statistics_per_period_within_timestamps(api):
    out = api.cli('statistics', '-m', 'cpu_util', '-p', '3600', '-q',
                  'timestamp>=2024-03-01T00:00:00;'
                  'timestamp<2024-03-01T02:00:00')
    rows = api_server.parse_table(out)
    # By hand: [00:00, 01:00) holds 10, 20 (r-a) and 5 (r-b);
    # [01:00, 02:00) holds 30, 40 (r-a) and 15 (r-b).
    got = [(r['Period'], r['Period Start'], r['Period End'], r['Count'],
            float(r['Min']), float(r['Max']), float(r['Sum']),
            float(r['Avg']), float(r['Duration']), r['Duration Start'],
            r['Duration End']) for r in rows]
    assert got[0][:8] == ('3600', '2024-03-01T00:00:00',
                          '2024-03-01T01:00:00', '3', 5.0, 20.0, 35.0,
                          pytest.approx(35 / 3, abs=1e-6))
    assert got[0][8:] == (1800.0, '2024-03-01T00:00:00',
                          '2024-03-01T00:30:00')
    assert got[1][:8] == ('3600', '2024-03-01T01:00:00',
                          '2024-03-01T02:00:00', '3', 15.0, 40.0, 85.0,
                          pytest.approx(85 / 3, abs=1e-6))
    assert len(got) == 2


def test_statistics_grouped_with_aggregates(api):
    out = api.cli('statistics', '-m', 'cpu_util', '-g', 'resource_id',
                  '-a', 'stddev', '-a', 'count', '-a', 'max',
                  '-a', 'cardinality<-user_id')
    rows = {json.loads(r['Group By'].replace("'", '"'))['resource_id']: r
            for r in api_server.parse_table(out)}
    # r-a: 10, 20, 30, 40 → population stddev sqrt(125); r-b: 5, 15 → 5.
    assert float(rows['r-a']['Standard deviation']) == pytest.approx(
        math.sqrt(125), abs=1e-6)
    assert float(rows['r-b']['Standard deviation']) == pytest.approx(5.0)
    assert (rows['r-a']['Count'], float(rows['r-a']['Max'])) == ('4', 40.0)
    assert (rows['r-b']['Count'], float(rows['r-b']['Max'])) == ('2', 15.0)
    assert rows['r-a']['cardinality/user_id'] == '1'


def test_resource_list_and_show(api):
    rows = api_server.parse_table(api.cli('resource-list'))
    assert sorted((r['Resource ID'], r['Source'], r['User ID'],
                   r['Project ID']) for r in rows) == [
        ('r-a', 'openstack', 'ua', 'pa'), ('r-b', 'openstack', 'ub', 'pb')]
    shown = api_server.parse_dict(api.cli('resource-show', 'r-a'))
    assert shown['resource_id'] == 'r-a'
    assert shown['project_id'] == 'pa' and shown['user_id'] == 'ua'
    assert json.loads(shown['metadata']) == {'flavor.name': 'm1.small',
                                             'instance_type': 'm1.small'}


def test_query_samples(api):
    out = api.cli('query-samples', '-f',
                  '{"and": [{"=": {"meter": "cpu_util"}}, '
                  '{"<": {"timestamp": "2024-03-01T01:00:00"}}]}',
                  '-o', '[{"volume": "desc"}]', '-l', '2')
    rows = api_server.parse_table(out)
    assert [(r['ID'], r['Resource ID'], r['Meter'], float(r['Volume']),
             r['Timestamp']) for r in rows] == [
        ('sample-1', 'r-a', 'cpu_util', 20.0, '2024-03-01T00:30:00'),
        ('sample-0', 'r-a', 'cpu_util', 10.0, '2024-03-01T00:00:00')]


def test_events(api):
    rows = api_server.parse_table(api.cli('event-list', '--no-traits'))
    assert [(r['Message ID'], r['Event Type'], r['Generated'])
            for r in rows] == [
        ('ev-a', 'compute.instance.create.end', '2024-03-01T00:00:00'),
        ('ev-b', 'compute.instance.create.end', '2024-03-01T00:10:00'),
        ('ev-c', 'image.upload', '2024-03-01T00:20:00')]
    rows = api_server.parse_table(api.cli(
        'event-list', '--no-traits', '-q', 'vcpus>integer::2'))
    assert [r['Message ID'] for r in rows] == ['ev-b']
    shown = api_server.parse_dict(api.cli('event-show', 'ev-c'))
    assert shown['event_type'] == 'image.upload'
    assert shown['generated'] == '2024-03-01T00:20:00'
    assert '"value": "pa"' in shown['traits']


def test_event_types_and_trait_descriptions(api):
    rows = api_server.parse_table(api.cli('event-type-list'))
    assert [r['Event Type'] for r in rows] == [
        'compute.instance.create.end', 'image.upload']
    rows = api_server.parse_table(api.cli(
        'trait-description-list', '-e', 'compute.instance.create.end'))
    assert sorted((r['Trait Name'], r['Data Type']) for r in rows) == [
        ('project_id', 'string'), ('vcpus', 'integer')]


def test_sample_create_direct(api):
    out = api.cli('sample-create', '-r', 'r-created', '-m', 'created.meter',
                  '--meter-type', 'delta', '--meter-unit', 'req',
                  '--sample-volume', '7.5', '--project-id', 'pc',
                  '--timestamp', '2024-03-05T10:00:00',
                  '--resource-metadata', '{"zone": "z1"}',
                  '--direct', 'True')
    shown = api_server.parse_dict(out)
    assert (shown['name'], shown['volume']) == ('created.meter', '7.5')
    conn = storage.get_connection(cfg.ConfigOpts(), api.url_db)
    try:
        stored = list(conn.get_samples(
            storage.SampleFilter(meter='created.meter')))
    finally:
        conn.dispose()
    assert [(s.resource_id, s.counter_type, s.counter_unit,
             s.counter_volume, s.project_id, s.source,
             s.timestamp.isoformat(), s.resource_metadata, s.message_id)
            for s in stored] == [
        ('r-created', 'delta', 'req', 7.5, 'pc', 'pc:openstack',
         '2024-03-05T10:00:00', {'zone': 'z1'}, shown['message_id'])]
    rows = api_server.parse_table(api.cli('sample-list', '-m',
                                          'created.meter'))
    assert [float(r['Volume']) for r in rows] == [7.5]
