"""GnocchiStore against a fake gnocchiclient: batching, resource creation,
attribute updates, filtering, retries, the backlog and redelivery, and the
isolation of measures Gnocchi refuses."""

from __future__ import annotations

import datetime
import uuid

import pytest
from gnocchiclient import exceptions as gexc

from telemeter import sample as sample_mod
from telemeter.dispatcher import errors
from telemeter.gnocchi import store
from telemeter.publisher import gnocchi as gnocchi_publisher
from telemeter.publisher import split_url
from telemeter.storage import models

T0 = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


class FakeGnocchi:
    """Just enough of gnocchiclient.v1.client.Client, in memory."""

    def __init__(self) -> None:
        self.resources: dict[str, dict] = {}
        self.measures: dict[tuple[str, str], dict[str, float]] = {}
        self.down = False
        self.fail_5xx = 0
        self.refuse_values: set[float] = set()
        self.posts = 0
        self.updates: list[tuple[str, dict]] = []
        self.metric = self
        self.resource = _Resources(self)
        self.archive_policy = _Policies()

    def batch_resources_metrics_measures(self, measures, create_metrics):
        assert create_metrics is True
        self.posts += 1
        if self.down:
            raise gexc.ConnectionFailure(message='connection refused')
        if self.fail_5xx:
            self.fail_5xx -= 1
            raise gexc.ClientException(code=503, message='unavailable')
        for metrics in measures.values():
            for metric in metrics.values():
                assert metric['measures'], 'empty measures crash metricd'
                if any(m['value'] in self.refuse_values
                       for m in metric['measures']):
                    raise gexc.BadRequest(code=400, message={
                        'cause': 'Invalid input', 'reason': 'bad value'})
        unknown = [rid for rid in measures if rid not in self.resources]
        if unknown:
            raise gexc.BadRequest(code=400, message={
                'cause': 'Unknown resources', 'detail': [
                    {'resource_id': rid, 'original_resource_id': rid}
                    for rid in unknown]})
        for rid, metrics in measures.items():
            for name, metric in metrics.items():
                stored = self.measures.setdefault((rid, name), {})
                for m in metric['measures']:
                    stored[m['timestamp']] = m['value']


class _Resources:
    def __init__(self, fake: FakeGnocchi) -> None:
        self.fake = fake

    def create(self, resource_type, body):
        if self.fake.down:
            raise gexc.ConnectionFailure(message='down')
        if body['id'] in self.fake.resources:
            raise gexc.ResourceAlreadyExists(code=409, message='exists')
        self.fake.resources[body['id']] = {'type': resource_type,
                                           'ended_at': None, **body}

    def update(self, resource_type, resource_id, attributes):
        if self.fake.down:
            raise gexc.ConnectionFailure(message='down')
        if resource_id not in self.fake.resources:
            raise gexc.ResourceNotFound(code=404, message='not found')
        self.fake.updates.append((resource_id, dict(attributes)))
        self.fake.resources[resource_id].update(attributes)

    def get(self, resource_type, resource_id):
        if self.fake.down:
            raise gexc.ConnectionFailure(message='down')
        if resource_id not in self.fake.resources:
            raise gexc.ResourceNotFound(code=404, message='not found')
        return dict(self.fake.resources[resource_id])

    def search(self, resource_type, query):
        (attribute, value), = query['='].items()
        return [r for r in self.fake.resources.values()
                if r['type'] == resource_type and r.get(attribute) == value]


class _Policies:
    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self, policy):
        if policy['name'] in self.created:
            raise gexc.ArchivePolicyAlreadyExists(code=409, message='x')
        self.created.append(policy['name'])


@pytest.fixture
def fake():
    return FakeGnocchi()


def make_store(conf, fake, backlog=5, retries=2, **settings):
    conf.set_override('backlog_size', backlog, 'gnocchi')
    conf.set_override('retries', retries, 'gnocchi')
    conf.set_override('auth_mode', 'basic', 'gnocchi')
    conf.set_override('url', 'http://127.0.0.1:9', 'gnocchi')
    sleeps: list[float] = []
    result = store.GnocchiStore(conf, store.Settings(**settings),
                                client_factory=lambda c: fake,
                                sleep=sleeps.append)
    result.sleeps = sleeps
    return result


def sample(name='memory', volume=512, resource_id='vm-1', seconds=0,
           project='p1', **metadata):
    return sample_mod.Sample(
        name, 'gauge', 'MB', volume, 'u1', project, resource_id,
        (T0 + datetime.timedelta(seconds=seconds)).isoformat(),
        metadata or {'display_name': 'web-1', 'instance_type': 'm1.small'})


def test_first_write_creates_resources_with_attributes(conf, fake):
    gs = make_store(conf, fake)
    gs.write([sample(), sample('vcpus', 2), sample(seconds=1, volume=640),
              sample('volume.size', 10, 'vol/1', display_name='data')])
    assert fake.resources['vm-1'] == {
        'type': 'instance', 'ended_at': None, 'id': 'vm-1', 'user_id': 'u1',
        'project_id': 'p1', 'display_name': 'web-1',
        'flavor_name': 'm1.small'}
    # '/' is not allowed in Gnocchi ids
    assert fake.resources['vol_1']['display_name'] == 'data'
    assert fake.measures[('vm-1', 'memory')] == {
        T0.isoformat(): 512.0,
        (T0 + datetime.timedelta(seconds=1)).isoformat(): 640.0}
    assert gs.stats()['posted'] == 4
    assert gs.stats()['resources_created'] == 2
    assert fake.updates == []  # just created: nothing to update
    assert fake.archive_policy.created == [
        'telemeter-low', 'telemeter-low-rate', 'telemeter-high']


def test_attributes_updated_only_when_they_change(conf, fake):
    gs = make_store(conf, fake)
    gs.write([sample()])
    gs.write([sample(seconds=1)])
    assert fake.updates == []
    gs.write([sample(seconds=2, display_name='web-2')])
    assert fake.updates == [('vm-1', {'project_id': 'p1',
                                      'display_name': 'web-2'})]
    assert fake.resources['vm-1']['display_name'] == 'web-2'


def test_unmapped_meter_and_bad_volume_are_counted_not_sent(conf, fake):
    gs = make_store(conf, fake)
    gs.write([sample('no.such.meter'), sample(volume=None),
              sample(volume='n/a'), sample(seconds=3)])
    assert fake.measures == {('vm-1', 'memory'): {
        (T0 + datetime.timedelta(seconds=3)).isoformat(): 512.0}}
    assert gs.stats()['unmapped'] == 1
    assert gs.stats()['dropped'] == 2


def test_gnocchi_own_project_is_filtered(conf, fake):
    gs = make_store(conf, fake, filter_project='gnocchi-project')
    gs.write([sample(project='gnocchi-project'), sample(resource_id='vm-2')])
    assert list(fake.resources) == ['vm-2']
    assert gs.stats()['filtered'] == 1


def test_refused_measure_alone_is_dropped(conf, fake):
    gs = make_store(conf, fake)
    fake.refuse_values = {666.0}
    gs.write([sample(volume=v, seconds=i)
              for i, v in enumerate([1, 2, 666, 4, 5])]
             + [sample('vcpus', 2)])
    assert sorted(fake.measures[('vm-1', 'memory')].values()) == [
        1.0, 2.0, 4.0, 5.0]
    assert fake.measures[('vm-1', 'vcpus')] == {T0.isoformat(): 2.0}
    assert gs.stats()['dropped'] == 1
    assert gs.stats()['posted'] == 5


def test_5xx_is_retried_with_backoff(conf, fake):
    gs = make_store(conf, fake, retries=3)
    fake.resources['vm-1'] = {'type': 'instance', 'id': 'vm-1'}
    fake.fail_5xx = 2
    gs.write([sample()])
    assert fake.measures[('vm-1', 'memory')] == {T0.isoformat(): 512.0}
    assert gs.sleeps == [0.5, 1.0]
    assert gs.stats()['retries'] == 2


def test_backlog_then_refusal_then_recovery(conf, fake):
    gs = make_store(conf, fake, backlog=3, retries=1)
    fake.down = True
    gs.write([sample(seconds=0), sample(seconds=1)])  # kept: 2 of 3
    assert gs.stats()['backlog'] == 2
    with pytest.raises(store.GnocchiUnavailable) as raised:
        gs.write([sample(seconds=2), sample(seconds=3)])  # 4 > 3: refused
    # The collector requeues it; the pipeline hands it back to the broker.
    assert errors.unreachable(raised.value)
    gs.write([sample(seconds=4)])  # kept: 3 of 3
    assert fake.measures == {}
    fake.down = False
    gs.write([sample(seconds=2), sample(seconds=3)])  # the redelivery
    assert gs.stats()['backlog'] == 0
    assert sorted(fake.measures[('vm-1', 'memory')]) == [
        (T0 + datetime.timedelta(seconds=s)).isoformat() for s in range(5)]


def test_no_backlog_refuses_at_once(conf, fake):
    gs = make_store(conf, fake, backlog=0, retries=0)
    fake.down = True
    with pytest.raises(store.GnocchiUnavailable):
        gs.write([sample()])
    assert fake.posts == 1


def test_delete_event_ends_resource_and_its_disks(conf, fake):
    gs = make_store(conf, fake)
    instance = str(uuid.uuid4())
    gs.write([sample(resource_id=instance),
              sample('disk.device.read.bytes', 1, f'{instance}-vda',
                     disk_name='vda', instance_id=instance)])
    generated = datetime.datetime(2026, 1, 2, 4, 0, 0)
    event = models.Event('m1', 'compute.instance.delete.start', generated,
                         [models.Trait('instance_id', 1, instance)], {})
    gs.end_resources([event, models.Event('m2', 'compute.instance.update',
                                          generated, [], {})])
    # Just after the event: its own samples (same time) come before.
    assert fake.resources[instance]['ended_at'] == \
        '2026-01-02T04:00:00.001000+00:00'
    assert fake.resources[f'{instance}-vda']['ended_at'] == \
        '2026-01-02T04:00:00.001000+00:00'
    assert gs.stats()['resources_ended'] == 2


def test_later_delete_event_moves_the_end_and_an_earlier_one_does_not(
        conf, fake):
    gs = make_store(conf, fake)
    gs.write([sample(resource_id='vm-9')])

    def delete(event_type, second):
        gs.end_resources([models.Event(
            f'm-{event_type}', event_type,
            datetime.datetime(2026, 1, 2, 4, 0, second),
            [models.Trait('instance_id', 1, 'vm-9')], {})])
        return fake.resources['vm-9']['ended_at']

    assert delete('compute.instance.delete.start', 1) == \
        '2026-01-02T04:00:01.001000+00:00'
    # delete.end's samples come later: the end follows them
    assert delete('compute.instance.delete.end', 3) == \
        '2026-01-02T04:00:03.001000+00:00'
    # a redelivered (or late) delete.start does not move it back
    assert delete('compute.instance.delete.start', 1) == \
        '2026-01-02T04:00:03.001000+00:00'
    assert gs.stats()['resources_ended'] == 2


def test_delete_event_requeued_when_gnocchi_is_down(conf, fake):
    gs = make_store(conf, fake, retries=1)
    fake.down = True
    event = models.Event('m1', 'volume.delete.end', T0,
                         [models.Trait('resource_id', 1, 'vol-1')], {})
    with pytest.raises(store.GnocchiUnavailable):
        gs.end_resources([event])


def test_publisher_url_options_and_no_network_at_construction(conf):
    conf.set_override('auth_mode', 'basic', 'gnocchi')
    conf.set_override('url', 'http://127.0.0.1:9', 'gnocchi')
    publisher = gnocchi_publisher.GnocchiPublisher(conf, split_url(
        'gnocchi://?archive_policy=telemeter-high&filter_project=svc'))
    settings = publisher.store.settings
    assert (settings.archive_policy, settings.filter_project) == (
        'telemeter-high', 'svc')
    assert publisher.store.definitions.lookup('cpu')[1] == 'telemeter-high'
    assert publisher.store.calls._client is None  # connects lazily
    off = gnocchi_publisher.settings_from_url(split_url(
        'gnocchi://?enable_filter_project=false'))
    assert off.filter_project is None
    assert gnocchi_publisher.settings_from_url(split_url(
        'gnocchi://')).filter_project == 'service'


def test_basic_auth_without_url_is_refused_at_construction(conf):
    conf.set_override('auth_mode', 'basic', 'gnocchi')
    with pytest.raises(ValueError, match='url is required'):
        gnocchi_publisher.GnocchiPublisher(conf, split_url('gnocchi://'))
