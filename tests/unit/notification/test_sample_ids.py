"""Samples made from a notification get ids derived from its message id,
so a redelivered notification does not make new samples."""

import oslo_messaging

from telemeter import pipeline
from telemeter.messaging import dispatch
from telemeter.notification import ipc, meters
from tests.unit.notification import payloads
from tests.unit.notification.conftest import MEMORY_METER


class _Manager:
    def __init__(self, conf):
        self.conf = conf
        self.published = []

    def publisher(self):
        manager = self

        class _Context:
            def __enter__(self):
                return manager.published.extend

            def __exit__(self, *exc):
                return False
        return _Context()


def _handler(conf, meters_dir):
    meters_dir('m.yaml', MEMORY_METER + """
  - name: vcpus
    event_type: compute.instance.create.end
    type: gauge
    unit: vcpu
    volume: $.payload.vcpus
    resource_id: $.payload.instance_id
""")
    manager = _Manager(conf)
    return meters.ProcessMeterNotifications(manager), manager


def test_same_notification_same_sample_ids(conf, meters_dir):
    handler, manager = _handler(conf, meters_dir)
    notification = payloads.message(payloads.instance())
    handler.info([notification])
    handler.info([notification])
    first, second = manager.published[:2], manager.published[2:]
    assert [s.id for s in first] == [s.id for s in second]
    assert len({s.id for s in first}) == 2


def test_other_notifications_other_ids(conf, meters_dir):
    handler, manager = _handler(conf, meters_dir)
    one = payloads.message(payloads.instance())
    other = payloads.message(payloads.instance())
    other['metadata'] = dict(other['metadata'], message_id='another-id')
    handler.info([one, other])
    assert len({s.id for s in manager.published}) == 4


def test_polling_samples_keep_their_own_ids(conf):
    manager = _Manager(conf)
    handler = ipc.TelemetryIpc(manager)
    data = {'counter_name': 'cpu', 'counter_type': 'cumulative',
            'counter_unit': 'ns', 'counter_volume': 1, 'user_id': 'u',
            'project_id': 'p', 'resource_id': 'r',
            'timestamp': '2026-01-01T00:00:00+00:00',
            'resource_metadata': {}, 'source': 'openstack',
            'message_id': 'polled-sample-id'}
    handler.sample([{'ctxt': {}, 'publisher_id': 'telemeter.polling',
                     'event_type': 'telemetry.polling',
                     'payload': {'samples': [data]},
                     'metadata': {'message_id': 'n-1',
                                  'timestamp': '2026-01-01 00:00:00'}}])
    assert [s.id for s in manager.published] == ['polled-sample-id']


def test_a_publisher_failure_requeues_the_batch(conf, meters_dir):
    """Nothing is acknowledged that no publisher took; the redelivery
    makes the same samples."""
    handler, manager = _handler(conf, meters_dir)
    failing = [True]

    class _Failing:
        def __enter__(self):
            return manager.published.extend

        def __exit__(self, *exc):
            if failing[0]:
                raise pipeline.PublishError(['http://x: 503'])
    manager.publisher = _Failing
    notification = payloads.message(payloads.instance())
    assert handler.info([notification]) == (
        oslo_messaging.NotificationResult.REQUEUE)
    failing[0] = False
    assert handler.info([notification]) is None
    first, second = manager.published[:2], manager.published[2:]
    assert [s.id for s in first] == [s.id for s in second]


def test_a_notification_a_handler_fails_on_is_rejected_the_rest_published(
        conf, meters_dir):
    handler, manager = _handler(conf, meters_dir)
    good = payloads.message(payloads.instance())
    bad = payloads.message(payloads.instance())
    bad['metadata'] = dict(bad['metadata'], message_id='bad-one')
    real = handler.process_notification

    def process(notification):
        if notification is bad:
            raise KeyError('instance_id')
        return real(notification)
    handler.process_notification = process
    result = handler.info([bad, good])
    assert isinstance(result, dispatch.Rejected)
    assert [(n is bad, reason) for n, reason in result] == [
        (True, "ProcessMeterNotifications: KeyError: 'instance_id'")]
    assert len(manager.published) == 2     # memory and vcpus of the good one
    assert handler.failures == 1
