"""Gnocchi as a storage target, against a real Gnocchi 4.7 (API + metricd).

- agent-notification -> ``gnocchi://`` (sample and event pipelines): nova,
  glance, cinder notifications become measures of instance, image, volume
  and nova_compute resources with their mapped attributes; a
  ``compute.instance.delete.start`` event ends the instance;
- agent-notification -> ``notifier://`` -> collector -> ``gnocchi``
  dispatcher: the same measures;
- ``telemeter-upgrade`` creates the resource types, idempotently, and
  ``--skip-gnocchi-resource-types`` does not touch Gnocchi.

Measures are read back with gnocchiclient once metricd has processed them
(no ``refresh``), at the 1 s granularity of ``telemeter-high``.
"""

from __future__ import annotations

import datetime
import socket
import textwrap
import time
import uuid

import pytest

from telemeter import messaging
from telemeter.notification import event_converter, meters
from tests.functional import daemons
from tests.functional.fixtures import gnocchi as gnocchi_fx
from tests.functional.test_notification_agent import _send, senders  # noqa: F401
from tests.unit.notification import payloads

pytestmark = pytest.mark.timeout(400)

HIGH = 'telemeter-high'


def _conf(gnocchi_url: str, extra: str = '') -> str:
    return textwrap.dedent(f"""
        [meter]
        meter_definitions_dirs = {meters.PACKAGED_METERS_DIR}
        [event]
        definitions_cfg_file = {event_converter.PACKAGED_DEFINITIONS}
        [gnocchi]
        auth_mode = basic
        url = {gnocchi_url}
        retry_backoff = 0.2
        """) + textwrap.dedent(extra)


@pytest.fixture(scope='module')
def gnocchi(gnocchi_service):
    return gnocchi_fx.client(gnocchi_service.url)


@pytest.fixture(scope='module')
def upgraded(tmp_path_factory, rabbit_url, gnocchi_service, gnocchi):
    """telemeter-upgrade run once (twice: it must be idempotent)."""
    dep = daemons.Deployment(tmp_path_factory.mktemp('upgrade'), rabbit_url,
                             extra_conf=_conf(gnocchi_service.url))
    first = dep.run('telemeter-upgrade')
    second = dep.run('telemeter-upgrade')
    dep.cleanup()
    return first, second


def _notifications(ids: dict[str, str], now: datetime.datetime
                   ) -> list[tuple[str, dict]]:
    """(exchange, notification) of one instance, image, volume and compute
    node, with ids of this test."""
    image_send = payloads.image_send()
    image_send['payload']['image_id'] = ids['image']
    metrics = payloads.compute_metrics()
    metrics['payload']['nodename'] = ids['node']
    for metric in metrics['payload']['metrics']:
        metric['timestamp'] = now.strftime('%Y-%m-%dT%H:%M:%S.%f')
    return [('nova', payloads.instance(instance_id=ids['instance'])),
            ('glance', payloads.image(id=ids['image'])),
            ('glance', image_send),
            ('cinder', payloads.volume(volume_id=ids['volume'])),
            ('nova', metrics)]


def _ids() -> dict[str, str]:
    return {'instance': str(uuid.uuid4()), 'image': str(uuid.uuid4()),
            'volume': str(uuid.uuid4()),
            'node': f'node-{uuid.uuid4().hex[:8]}.example.org'}


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _send_all(senders, dep, ids):  # noqa: F811
    # The senders declare the exchanges as the daemons do (durable).
    messaging.setup()
    now = _utcnow()
    notifiers = {}
    for exchange, notification in _notifications(ids, now):
        if exchange not in notifiers:
            notifiers[exchange] = senders(exchange, dep.notification_topic)
        _send(notifiers[exchange], notification)
    return now, notifiers


EXPECTED = {
    # (resource key, meter): value
    ('instance', 'memory'): 2048.0,
    ('instance', 'vcpus'): 1.0,
    ('instance', 'disk.root.size'): 20.0,
    ('instance', 'disk.ephemeral.size'): 0.0,
    ('instance', 'compute.instance.booting.time'): 13.5,
    ('image', 'image.size'): 297795584.0,
    ('image', 'image.download'): 297795584.0,
    ('volume', 'volume.size'): 10.0,
    ('node', 'compute.node.cpu.frequency'): 2400.0,
    ('node', 'compute.node.cpu.percent'): 2.6584955048974804,  # x 100
}


def _resource_id(key: str, ids: dict[str, str]) -> str:
    if key == 'node':
        # meters.yaml: host + '_' + nodename; not a UUID, so Gnocchi
        # derives one and keeps this as original_resource_id.
        return f'compute-01_{ids["node"]}'
    return ids[key]


def _check_measures(gnocchi, ids, sent_from, sent_until):
    lower = sent_from.replace(microsecond=0)
    for (key, meter), value in EXPECTED.items():
        points = gnocchi_fx.wait_measures(gnocchi, _resource_id(key, ids),
                                          meter, 1)
        assert len(points) == 1, (meter, points)
        stamp, granularity, got = points[0]
        assert granularity == 1.0
        assert got == pytest.approx(value), meter
        when = (stamp if isinstance(stamp, datetime.datetime)
                else datetime.datetime.fromisoformat(stamp))
        assert lower <= when <= sent_until, (meter, stamp)


def _check_resources(gnocchi, ids):
    instance = gnocchi.resource.get('instance', ids['instance'])
    assert (instance['display_name'], instance['flavor_name'],
            instance['flavor_id'], instance['host']) == (
        'web-1', 'm1.small', '2', 'compute-01')
    assert (instance['project_id'], instance['user_id']) == (
        payloads.PROJECT, payloads.USER)
    assert instance['ended_at'] is None
    assert {'memory', 'vcpus', 'disk.root.size'} <= set(instance['metrics'])
    image = gnocchi.resource.get('image', ids['image'])
    assert (image['name'], image['container_format'],
            image['disk_format']) == ('ubuntu-16.04', 'bare', 'qcow2')
    volume = gnocchi.resource.get('volume', ids['volume'])
    assert volume['display_name'] == 'data-vol'
    assert volume['volume_type'] == 'b1a2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'
    nodes = gnocchi.resource.search(
        resource_type='nova_compute',
        query={'=': {'original_resource_id': _resource_id('node', ids)}})
    # meters.yaml: metadata host is the notification's publisher_id
    assert [n['host_name'] for n in nodes] == [
        'compute.compute-01.example.org']


def test_agent_gnocchi_publisher_samples_resources_and_delete_event(
        tmp_path, rabbit_url, gnocchi_service, gnocchi, upgraded,
        senders):  # noqa: F811
    pipeline = ('sources: [{name: s, meters: ["*"], sinks: [g]}]\n'
                'sinks: [{name: g, publishers: ["gnocchi://?archive_policy='
                f'{HIGH}&filter_project="]}}]\n')
    dep = daemons.Deployment(tmp_path / 'dep', rabbit_url, pipeline=pipeline,
                             extra_conf=_conf(gnocchi_service.url))
    dep.event_pipeline_path.write_text(
        'sources: [{name: s, events: ["*"], sinks: [g]}]\n'
        'sinks: [{name: g, publishers: ["gnocchi://"]}]\n')
    try:
        agent = dep.start('telemeter-agent-notification')
        agent.wait_for_log('Notification agent listening')
        ids = _ids()
        sent_from = _utcnow()
        _, notifiers = _send_all(senders, dep, ids)
        _check_measures(gnocchi, ids, sent_from, _utcnow())
        _check_resources(gnocchi, ids)

        deleted_at = _utcnow()
        _send(notifiers['nova'], payloads.instance(
            'compute.instance.delete.start', instance_id=ids['instance']))
        ended = gnocchi_fx.wait_resource(
            gnocchi, 'instance', ids['instance'],
            until=lambda r: r['ended_at'] is not None)
        ended_at = datetime.datetime.fromisoformat(ended['ended_at'])
        # The event's time (the notification's), not the processing time.
        assert deleted_at - datetime.timedelta(seconds=1) <= ended_at \
            <= _utcnow()
        # The samples of the deletion itself (memory, vcpus, ... of
        # delete.start and delete.end) do not revive it: Gnocchi (4.7)
        # restores an ended resource that gets a measure at or after
        # ended_at, so the end follows delete.end (1 ms after it). A later
        # volume measure, once processed, shows that metricd has seen
        # everything sent before it.
        _send(notifiers['nova'], payloads.instance(
            'compute.instance.delete.end', instance_id=ids['instance']))
        _send(notifiers['cinder'], payloads.volume(
            'volume.resize.end', volume_id=ids['volume']))
        gnocchi_fx.wait_measures(gnocchi, ids['volume'], 'volume.size', 2)
        still = gnocchi.resource.get('instance', ids['instance'])
        assert still['ended_at'] is not None, still
        assert datetime.datetime.fromisoformat(still['ended_at']) > ended_at
        # The other resources live on.
        assert gnocchi.resource.get('volume', ids['volume'])[
            'ended_at'] is None
        assert agent.alive()
        assert 'Traceback' not in agent.log()
    finally:
        dep.cleanup()
        messaging.cleanup()


def test_collector_gnocchi_dispatcher(tmp_path, rabbit_url, gnocchi_service,
                                      gnocchi, upgraded,
                                      senders):  # noqa: F811
    dep = daemons.Deployment(
        tmp_path / 'dep', rabbit_url, extra_conf=_conf(
            gnocchi_service.url, f"""
            [DEFAULT]
            meter_dispatchers = gnocchi
            [dispatcher_gnocchi]
            archive_policy = {HIGH}
            filter_project =
            """))
    try:
        dep.run('telemeter-dbsync')
        collector = dep.start('telemeter-collector')
        agent = dep.start('telemeter-agent-notification')
        collector.wait_for_log('Collector listening on topic', count=2)
        agent.wait_for_log('Notification agent listening')
        ids = _ids()
        sent_from = _utcnow()
        _send_all(senders, dep, ids)
        _check_measures(gnocchi, ids, sent_from, _utcnow())
        _check_resources(gnocchi, ids)
        # The database dispatchers configured before still got them.
        assert len(dep.received()) >= len(EXPECTED)
        assert collector.alive()
        assert 'Traceback' not in collector.log()
    finally:
        dep.cleanup()
        messaging.cleanup()


def test_upgrade_creates_resource_types(upgraded, gnocchi):
    _first, second = upgraded
    for name, attributes in (
            ('instance', {'display_name', 'flavor_id', 'flavor_name',
                          'host', 'image_ref', 'server_group'}),
            ('instance_disk', {'name', 'instance_id'}),
            ('volume', {'display_name', 'volume_type', 'instance_id'}),
            ('image', {'name', 'container_format', 'disk_format'}),
            ('host', {'host_name'}),
            ('nova_compute', {'host_name'}),
            ('network', set())):
        assert set(gnocchi.resource_type.get(name)['attributes']) == \
            attributes, name
    assert gnocchi.resource_type.get('instance_disk')['attributes'][
        'instance_id']['type'] == 'uuid'
    policies = {p['name'] for p in gnocchi.archive_policy.list()}
    assert {'telemeter-low', 'telemeter-low-rate', HIGH} <= policies
    # The second run found everything in place.
    assert 'instance unchanged' in second.stderr + second.stdout


def test_upgrade_skip_gnocchi_resource_types_does_not_contact_gnocchi(
        tmp_path, rabbit_url):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        dead = f'http://127.0.0.1:{sock.getsockname()[1]}'
    dep = daemons.Deployment(tmp_path / 'dep', rabbit_url,
                             extra_conf=_conf(dead, 'retries = 0\n'))
    dep.run('telemeter-upgrade', '--skip-gnocchi-resource-types')
    assert dep.storage().get_samples is not None  # dbsync did run
    with pytest.raises(AssertionError, match='exited 1'):
        dep.run('telemeter-upgrade')
    dep.cleanup()


@pytest.fixture
def gnocchi_admin(gnocchi_service):
    """The test Gnocchi as a ``tools/services.sh`` instance (stop/start
    keep its data); running again after the test."""
    managed = gnocchi_service.managed
    if managed is None:
        port = int(gnocchi_service.url.rsplit(':', 1)[1].rstrip('/'))
        managed = gnocchi_service.service_for_port(port)
        if not managed.is_running():
            pytest.fail(f'{gnocchi_service.url} is not a Gnocchi run by '
                        f'tools/services.sh: cannot stop and start it',
                        pytrace=False)
    yield managed
    if not managed.is_running():
        managed.start()


def test_gnocchi_outage_of_30s_loses_and_duplicates_nothing(
        tmp_path, rabbit_url, gnocchi_service, gnocchi, gnocchi_admin,
        upgraded, senders):  # noqa: F811
    """A stream of compute.metrics.update notifications (10 meters each,
    one second apart) while Gnocchi is down for 30 s: the publisher retries,
    fills its small backlog, then refuses, so the agent requeues; once
    Gnocchi is back every measure is there exactly once."""
    count, before, outage = 70, 10, 30.0
    pipeline = ('sources: [{name: s, meters: ["compute.node.*"], '
                'sinks: [g]}]\n'
                'sinks: [{name: g, publishers: ["gnocchi://?archive_policy='
                f'{HIGH}&filter_project="]}}]\n')
    dep = daemons.Deployment(tmp_path / 'dep', rabbit_url, pipeline=pipeline,
                             extra_conf=_conf(gnocchi_service.url, """
                                 retries = 1
                                 timeout = 2
                                 backlog_size = 40
                                 """))
    node = f'node-{uuid.uuid4().hex[:8]}.example.org'
    base = _utcnow().replace(microsecond=0) - datetime.timedelta(
        seconds=count + 60)
    stamps = [base + datetime.timedelta(seconds=i) for i in range(count)]
    try:
        agent = dep.start('telemeter-agent-notification')
        agent.wait_for_log('Notification agent listening')
        messaging.setup()
        nova = senders('nova', dep.notification_topic)
        stopped_at = None
        for i, stamp in enumerate(stamps):
            if i == before:
                gnocchi_admin.stop()
                stopped_at = time.monotonic()
            if stopped_at is not None and \
                    time.monotonic() - stopped_at >= outage:
                gnocchi_admin.start()
                stopped_at = None
            notification = payloads.compute_metrics()
            notification['payload']['nodename'] = node
            for metric in notification['payload']['metrics']:
                metric['timestamp'] = stamp.strftime('%Y-%m-%dT%H:%M:%S.%f')
                if metric['name'] == 'cpu.frequency':
                    metric['value'] = 1000 + i
            _send(nova, notification)
            time.sleep(outage / (count - 2 * before))
        if stopped_at is not None:
            time.sleep(max(0.0, outage - (time.monotonic() - stopped_at)))
            gnocchi_admin.start()

        resource_id = f'compute-01_{node}'
        points = gnocchi_fx.wait_measures(
            gnocchi, resource_id, 'compute.node.cpu.frequency', count,
            timeout=240)
        assert [(p[0], p[2]) for p in points] == [
            (stamp, 1000.0 + i) for i, stamp in enumerate(stamps)]
        for meter in ('compute.node.cpu.percent', 'compute.node.cpu.'
                      'idle.time', 'compute.node.cpu.user.percent'):
            counted = gnocchi_fx.wait_measures(
                gnocchi, resource_id, meter, count, timeout=60,
                aggregation='count')
            assert [p[0] for p in counted] == stamps, meter
            assert {p[2] for p in counted} == {1.0}, meter  # none twice
        log = agent.log()
        # The outage went through every stage: retried, kept, refused.
        assert 'kept in the backlog' in log
        assert 'Requeuing' in log
        assert 'of the backlog to Gnocchi' in log
        assert agent.alive()
    finally:
        dep.cleanup()
        messaging.cleanup()
