"""Collector endpoints and UDP receiver (collector.md §2, §3)."""

import socket
import threading
import time

import msgpack
import oslo_messaging
import pytest

from telemeter import sample
from telemeter.collector import endpoints, udp
from telemeter.publisher import utils

SECRET = 'secret'


class RecordingManager:
    """Stands in for a stevedore manager of dispatchers."""

    def __init__(self, failures=0):
        self.calls = []
        self.failures = failures

    def map_method(self, method, data):
        if self.failures:
            self.failures -= 1
            raise RuntimeError('database down')
        self.calls.append((method, data))


def _signed(name, secret=SECRET):
    s = sample.Sample(name, 'gauge', 'u', 1, 'user', 'project', 'r',
                      timestamp='2031-01-01T00:00:00')
    return utils.meter_message_from_counter(s, secret)


def _notification(payload):
    return {'ctxt': {}, 'publisher_id': 'p', 'event_type': 'metering',
            'payload': payload, 'metadata': {}}


def test_batch_is_flattened_verified_and_dispatched_once():
    manager = RecordingManager()
    endpoint = endpoints.SampleEndpoint(SECRET, manager)
    forged = _signed('forged', secret='other')
    result = endpoint.sample([_notification([_signed('a'), forged]),
                              _notification([_signed('b')]),
                              _notification('not a list')])
    assert result is None
    assert len(manager.calls) == 1
    method, goods = manager.calls[0]
    assert method == 'record_metering_data'
    assert [g['counter_name'] for g in goods] == ['a', 'b']
    assert endpoint.rejected == 2


def test_dispatcher_failure_requeues_the_whole_batch(caplog):
    manager = RecordingManager(failures=1)
    endpoint = endpoints.EventEndpoint(SECRET, manager)
    result = endpoint.sample([_notification([_signed('a')])])
    assert result == oslo_messaging.NotificationResult.REQUEUE
    assert 'Dispatcher failed to handle the notification, re-queuing it.' \
        in caplog.text
    assert endpoint.sample([_notification([_signed('a')])]) is None
    assert manager.calls[0][0] == 'record_events'


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def receiver(conf):
    conf.set_override('udp_address', '127.0.0.1', group='collector')
    conf.set_override('udp_port', _free_udp_port(), group='collector')
    conf.set_override('telemetry_secret', SECRET, group='publisher')
    manager = RecordingManager()
    receiver = udp.UDPReceiver(conf, manager)
    thread = threading.Thread(target=receiver.run, daemon=True)
    thread.start()
    yield receiver, manager, conf.collector.udp_port
    started = time.monotonic()
    receiver.stop()
    thread.join(5)
    # stop() wakes select() at once rather than at its 10 s timeout.
    assert not thread.is_alive()
    assert time.monotonic() - started < 2


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_udp_good_bad_and_garbage_datagrams(receiver, caplog):
    rcv, manager, port = receiver
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in (
                msgpack.packb(_signed('good'), use_bin_type=True),
                b'\xc1 not msgpack',
                msgpack.packb(_signed('forged', 'other'), use_bin_type=True),
                msgpack.packb([1, 2], use_bin_type=True)):
            sock.sendto(datagram, ('127.0.0.1', port))
    assert _wait(lambda: rcv.received == 4)
    assert [(m, d['counter_name']) for m, d in manager.calls] == [
        ('record_metering_data', 'good')]
    assert (rcv.undecodable, rcv.rejected) == (1, 2)
    assert 'UDP: Cannot decode data sent by' in caplog.text
    assert 'sample signature invalid, discarding' in caplog.text


def test_udp_dispatcher_error_does_not_stop_the_loop(receiver, caplog):
    rcv, manager, port = receiver
    manager.failures = 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in ('lost', 'kept'):
            sock.sendto(msgpack.packb(_signed(name), use_bin_type=True),
                        ('127.0.0.1', port))
    assert _wait(lambda: len(manager.calls) == 1)
    assert manager.calls[0][1]['counter_name'] == 'kept'
    assert rcv.failed == 1
    assert 'UDP: Unable to store meter' in caplog.text


def test_two_receivers_share_the_port(conf, receiver):
    _, _, port = receiver
    second = udp.UDPReceiver(conf, RecordingManager())
    assert second.socket.getsockname()[1] == port
    second.socket.close()
