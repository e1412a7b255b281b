"""CollectorService.run()/terminate() (collector.md §1) over the fake bus."""

import logging
import socket

import msgpack

from telemeter import messaging
from telemeter.collector import service
from telemeter.publisher import utils
from tests.unit.collector.fakes import SECRET, signed
from tests.unit.collector.test_udp_receiver import _free_udp_port, _wait


def _service(conf):
    conf.set_override('telemetry_secret', SECRET, group='publisher')
    return service.CollectorService(0, conf)


def test_listens_on_metering_and_event_topics(conf, fake_transport_url,
                                              caplog, monkeypatch):
    conf.set_override('udp_address', '', group='collector')
    conf.set_override('meter_dispatchers', ['file'])
    conf.set_override('event_dispatchers', ['file'])
    svc = _service(conf)
    got = []
    for ext in list(svc.meter_manager) + list(svc.event_manager):
        monkeypatch.setattr(ext.obj, 'record_metering_data', got.append,
                            raising=False)
        monkeypatch.setattr(ext.obj, 'record_events', got.append,
                            raising=False)
    caplog.set_level(logging.INFO)
    svc.run()
    try:
        assert svc.udp_receiver is None
        assert [e.kind for e in svc.endpoints] == ['sample', 'event']
        notifier = messaging.get_notifier(
            messaging.get_transport(conf), 'test', driver='messagingv2',
            topics=['metering', 'event'])
        notifier.sample({}, 'metering', [signed('bus')])
        assert _wait(lambda: len(got) == 2)
    finally:
        svc.terminate()
    # The same payload reached the meter and the event endpoint (both
    # topics were published to), once each.
    assert [[d['counter_name'] for d in batch] for batch in got] == [
        ['bus'], ['bus']]
    assert ('Bus sample endpoint: 1 received, 0 rejected, 1 dispatched, '
            '0 batches requeued') in caplog.text
    assert 'Collector stopped' in caplog.text


def test_udp_only_without_a_loadable_transport(conf, caplog):
    port = _free_udp_port()
    conf.set_override('transport_url', 'nosuchdriver://')
    conf.set_override('udp_address', '127.0.0.1', group='collector')
    conf.set_override('udp_port', port, group='collector')
    conf.set_override('meter_dispatchers', ['file'])
    svc = _service(conf)
    stored = []
    ext = next(iter(svc.meter_manager))
    ext.obj.record_metering_data = stored.append
    svc.run()
    try:
        assert svc.listeners == []
        assert 'only UDP samples will be collected' in caplog.text
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(msgpack.packb(signed('udp')), ('127.0.0.1', port))
        assert _wait(lambda: len(stored) == 1)
    finally:
        svc.terminate()
    assert not svc.udp_thread.is_alive()
    assert utils.verify_signature(stored[0], SECRET)


def test_terminate_before_run_starts_nothing(conf, fake_transport_url):
    svc = _service(conf)
    svc.terminate()
    svc.run()
    assert svc.listeners == [] and svc.udp_receiver is None


def test_listeners_get_the_batch_options(conf, fake_transport_url,
                                         monkeypatch):
    conf.set_override('udp_address', '', group='collector')
    conf.set_override('meter_dispatchers', ['file'])
    conf.set_override('event_dispatchers', ['file'])
    conf.set_override('batch_size', 30, group='collector')
    conf.set_override('batch_timeout', 3, group='collector')
    conf.set_override('batch_max_bytes', 262144, group='collector')
    calls = []
    real = messaging.get_batch_notification_listener

    def recording(transport, targets, endpoints, **kwargs):
        calls.append(kwargs)
        return real(transport, targets, endpoints, **kwargs)
    monkeypatch.setattr(messaging, 'get_batch_notification_listener',
                        recording)
    svc = _service(conf)
    svc.run()
    svc.terminate()
    assert calls == [{'allow_requeue': True, 'batch_size': 30,
                      'batch_timeout': 3, 'batch_bytes': 262144}] * 2
