"""udp:// and tcp:// publishers (publishers.md §2, §3) against local
sockets."""

import socket
import struct
import threading

import msgpack
import pytest

from telemeter.publisher import tcp
from telemeter.publisher import utils as signing
from tests.unit.publisher.helpers import samples


def _udp_server(family=socket.AF_INET, host='127.0.0.1'):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(5)
    return sock


def test_udp_one_signed_datagram_per_sample(conf, make):
    conf.set_override('telemetry_secret', 's3', group='publisher')
    with _udp_server() as server:
        port = server.getsockname()[1]
        publisher = make(f'udp://127.0.0.1:{port}')
        assert publisher.socket.family == socket.AF_INET
        publisher.publish_samples(samples('a', 'b', 'c'))
        messages = [msgpack.unpackb(server.recv(65536), raw=False)
                    for _ in range(3)]
    assert [m['counter_name'] for m in messages] == ['a', 'b', 'c']
    assert all(signing.verify_signature(m, 's3') for m in messages)
    assert 'publisher_id' not in messages[0]


def test_udp_ipv6_literal_in_brackets(make):
    with _udp_server(socket.AF_INET6, '::1') as server:
        port = server.getsockname()[1]
        publisher = make(f'udp://[::1]:{port}')
        assert publisher.socket.family == socket.AF_INET6
        assert (publisher.host, publisher.port) == ('::1', port)
        publisher.publish_samples(samples('v6'))
        message = msgpack.unpackb(server.recv(65536), raw=False)
    assert message['counter_name'] == 'v6'


def test_udp_port_defaults_to_the_collector_port(conf, make):
    conf.set_override('udp_port', 4999, group='collector')
    assert make('udp://127.0.0.1').port == 4999


def test_udp_unresolvable_host_warns_and_uses_ipv4(make, caplog):
    publisher = make('udp://no-such-host.invalid:4952')
    assert publisher.socket.family == socket.AF_INET
    assert ('Cannot resolve host no-such-host.invalid, creating AF_INET '
            'socket...') in caplog.text
    # Sending fails for each sample; each failure is logged, none raised.
    publisher.publish_samples(samples('a', 'b'))
    assert caplog.text.count('Unable to send sample over UDP') == 2


def test_udp_send_error_does_not_stop_the_batch(make, caplog):
    with _udp_server() as server:
        publisher = make(f'udp://127.0.0.1:{server.getsockname()[1]}')
        big, small = samples('big', 'small')
        # Larger than any UDP datagram: sendto fails with EMSGSIZE.
        big.resource_metadata = {'blob': 'x' * 70000}
        publisher.publish_samples([big, small])
        message = msgpack.unpackb(server.recv(65536), raw=False)
    assert message['counter_name'] == 'small'
    assert 'Unable to send sample over UDP' in caplog.text


class TCPServer:
    """Accepts connections and decodes length-prefixed msgpack frames."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]

    def accept(self):
        self.listener.settimeout(5)
        conn, _ = self.listener.accept()
        conn.settimeout(5)
        return conn

    @staticmethod
    def read_frames(conn, count):
        frames = []
        buf = b''
        while len(frames) < count:
            while len(buf) < 8:
                buf += conn.recv(65536)
            (size,) = struct.unpack('<Q', buf[:8])
            while len(buf) < 8 + size:
                buf += conn.recv(65536)
            frames.append(msgpack.unpackb(buf[8:8 + size], raw=False))
            buf = buf[8 + size:]
        return frames

    def close(self):
        self.listener.close()


@pytest.fixture
def tcp_server():
    server = TCPServer()
    yield server
    server.close()


def test_tcp_frames_carry_publisher_id(conf, make, tcp_server):
    conf.set_override('host', 'node-7')
    publisher = make(f'tcp://127.0.0.1:{tcp_server.port}')
    with tcp_server.accept() as conn:
        publisher.publish_samples(samples('a', 'b'))
        frames = tcp_server.read_frames(conn, 2)
    assert [f['counter_name'] for f in frames] == ['a', 'b']
    assert all(f['publisher_id'] == 'node-7' for f in frames)
    secret = conf.publisher.telemetry_secret
    assert all(signing.verify_signature(f, secret) for f in frames)


def test_tcp_frame_layout():
    body = msgpack.packb({'k': 'v'}, use_bin_type=True)
    # The body is 0x81 (a map of one), 0xa1 'k', 0xa1 'v': 5 bytes, so the
    # frame starts with 05 00 00 00 00 00 00 00.
    assert len(body) == 5
    assert tcp.frame({'k': 'v'}) == b'\x05' + b'\x00' * 7 + body


def test_tcp_reconnects_after_the_receiver_closed(make, tcp_server, caplog):
    publisher = make(f'tcp://127.0.0.1:{tcp_server.port}')
    first = tcp_server.accept()
    publisher.publish_samples(samples('one'))
    assert tcp_server.read_frames(first, 1)[0]['counter_name'] == 'one'
    first.close()
    accepted = []
    thread = threading.Thread(
        target=lambda: accepted.append(tcp_server.accept()))
    thread.start()
    publisher.publish_samples(samples('two', 'three'))
    thread.join(5)
    with accepted[0] as second:
        frames = tcp_server.read_frames(second, 2)
    assert [f['counter_name'] for f in frames] == ['two', 'three']
    assert 'closed the connection, reconnecting' in caplog.text


def test_tcp_refused_connection_is_logged_and_retried_later(conf, make,
                                                            caplog):
    server = TCPServer()
    port = server.port
    server.close()  # nothing listens on the port now
    publisher = make(f'tcp://127.0.0.1:{port}')
    assert publisher.socket is None
    assert (f'Unable to connect to the remote endpoint 127.0.0.1:{port}. '
            'Connection refused.') in caplog.text
    publisher.publish_samples(samples('lost', 'also-lost'))
    assert caplog.text.count('Unable to reconnect and resend sample over '
                             'TCP') == 1


def test_tcp_unresolvable_host(make, caplog):
    publisher = make('tcp://no-such-host.invalid')
    assert publisher.port == 4952
    assert 'Unable to resolv the remote no-such-host.invalid' in caplog.text


def test_tcp_ipv6(make):
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as listener:
        listener.bind(('::1', 0))
        listener.listen()
        listener.settimeout(5)
        port = listener.getsockname()[1]
        publisher = make(f'tcp://[::1]:{port}')
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            publisher.publish_samples(samples('v6'))
            [frame] = TCPServer.read_frames(conn, 1)
    assert frame['counter_name'] == 'v6'


def test_udp_datetime_values_travel_as_signed_strings(conf, make):
    """msgpack cannot carry a datetime: it travels as its str(), which is
    also what the signature was computed over."""
    import datetime
    conf.set_override('telemetry_secret', 's3', group='publisher')
    with _udp_server() as server:
        publisher = make(f'udp://127.0.0.1:{server.getsockname()[1]}')
        [s] = samples('dt')
        s.resource_metadata = {'launched': datetime.datetime(2031, 1, 2, 3)}
        publisher.publish_samples([s])
        message = msgpack.unpackb(server.recv(65536), raw=False)
    assert message['resource_metadata'] == {'launched': '2031-01-02 03:00:00'}
    assert signing.verify_signature(message, 's3')


def test_tcp_concurrent_publishers_do_not_interleave_frames(make,
                                                            tcp_server):
    publisher = make(f'tcp://127.0.0.1:{tcp_server.port}')
    with tcp_server.accept() as conn:
        threads = [threading.Thread(target=publisher.publish_samples,
                                    args=(samples(*[f't{t}-{i}'
                                                    for i in range(50)]),))
                   for t in range(4)]
        for thread in threads:
            thread.start()
        frames = tcp_server.read_frames(conn, 200)
        for thread in threads:
            thread.join(5)
    names = [f['counter_name'] for f in frames]
    assert sorted(names) == sorted(f't{t}-{i}' for t in range(4)
                                   for i in range(50))
    # Each batch went out whole: its 50 frames are consecutive.
    for t in range(4):
        positions = [i for i, n in enumerate(names) if n.startswith(f't{t}-')]
        assert positions == list(range(positions[0], positions[0] + 50))
