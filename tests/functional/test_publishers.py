"""Every network publisher against a real receiver started by the test:
HTTP(S) servers (a throwaway CA, server and client certificates), a
Pushgateway-like endpoint parsing the text format, an OTLP/JSON endpoint
validating the payload, and UDP/TCP sockets decoding msgpack. The last test
runs them all from a pipeline.yaml in a real ``telemeter-send-sample``
process. (notifier:// against the broker: test_publishers_notifier.py.)
"""

from __future__ import annotations

import ast
import base64
import datetime
import json
import socket

import pytest
import requests
from oslo_config import cfg

from telemeter import publisher, sample, service, storage
from telemeter.publisher import utils as signing
from telemeter.storage import models
from tests.functional import daemons
from tests.functional.fixtures import receivers

SECRET = 'publisher-secret'


@pytest.fixture
def conf():
    conf = service.prepare_service(argv=['functional'], config_files=[],
                                   conf=cfg.ConfigOpts())
    conf.set_override('telemetry_secret', SECRET, group='publisher')
    conf.set_override('host', 'publisher-host')
    yield conf
    conf.reset()


@pytest.fixture
def make(conf):
    built = []

    def _make(url, namespace='telemeter.sample.publisher'):
        p = publisher.get_publisher(conf, url, namespace)
        built.append(p)
        return p
    yield _make
    for p in built:
        p.close()


@pytest.fixture
def receiver():
    started = []

    def _start(cls=receivers.HTTPReceiver, *args, **kwargs):
        r = cls(*args, **kwargs)
        started.append(r)
        return r
    yield _start
    for r in started:
        r.close()


@pytest.fixture(scope='module')
def tls(tmp_path_factory):
    return receivers.make_tls(tmp_path_factory.mktemp('tls'))


def _samples(count=3, resource='res-1', type='gauge', name='net.rx-bytes',
             timestamp='2031-03-04T05:06:07.000008'):
    return [sample.Sample(name, type, 'B', float(10 + i), 'user-1',
                          'project-1', resource, timestamp=timestamp,
                          resource_metadata={'i': i})
            for i in range(count)]


def _event(message_id, payload):
    return models.Event(message_id, 'volume.create.end',
                        datetime.datetime(2031, 1, 1, 12, 0, 0),
                        [models.Trait('size', models.Trait.INT_TYPE, 5)],
                        {'payload': payload} if payload else {})


# ------------------------------------------------------------- http ----

def test_http_batch_target_and_query(make, receiver):
    r = receiver()
    batch = _samples(3)
    p = make(r.url('/in/samples?timeout=3&max_retries=1&tag=a&tag=b'))
    p.publish_samples(batch)
    [request] = r.wait(1)
    assert (request.method, request.path) == ('POST', '/in/samples')
    # Publisher parameters never reach the endpoint; others all do.
    assert request.query == {'tag': ['a', 'b']}
    assert request.headers['content-type'] == 'application/json'
    assert 'authorization' not in request.headers
    assert request.json() == [s.as_dict() for s in batch]


def test_http_one_post_per_sample_and_basic_auth(make, receiver):
    r = receiver()
    p = make(f'http://alice:s3cr%40t@{r.netloc()}/in?batch=false')
    p.publish_samples(_samples(3))
    requests_ = r.wait(3)
    assert [q.json()['volume'] for q in requests_] == [10.0, 11.0, 12.0]
    expected = 'Basic ' + base64.b64encode(b'alice:s3cr@t').decode()
    assert {q.headers['authorization'] for q in requests_} == {expected}


def test_http_events_serialized_and_raw_only(make, receiver):
    r = receiver()
    ns = 'telemeter.event.publisher'
    make(r.url('/events'), ns).publish_events([_event('e1', {'a': 1})])
    make(r.url('/raw?raw_only=1'), ns).publish_events(
        [_event('e2', {'b': 2}), _event('e3', None)])
    serialized, raw = r.wait(2)
    assert serialized.json() == [{
        'message_id': 'e1', 'event_type': 'volume.create.end',
        'generated': '2031-01-01T12:00:00', 'traits': [['size', 2, 5]],
        'raw': {'payload': {'a': 1}}}]
    assert raw.json() == [{'b': 2}]


def test_http_client_error_is_logged_server_error_raised(make, receiver,
                                                         caplog):
    refusing = receiver(status=422)
    make(refusing.url('/in')).publish_samples(_samples(1))
    refusing.wait(1)
    assert 'Status Code: 422. Failed to dispatch message:' in caplog.text
    failing = receiver(status=503)
    with pytest.raises(requests.HTTPError, match='503'):
        make(failing.url('/in')).publish_samples(_samples(1))


def test_http_timeout_and_refused_connection_propagate(make, receiver):
    slow = receiver(delay=2.0)
    with pytest.raises(requests.Timeout):
        make(slow.url('/in?timeout=1')).publish_samples(_samples(1))
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    # Nothing listens: the connection is retried max_retries times, then
    # the error reaches the pipeline sink (which logs it).
    with pytest.raises(requests.ConnectionError):
        make(f'http://127.0.0.1:{port}/in?max_retries=2').publish_samples(
            _samples(1))


def test_https_verify_ssl_with_a_ca_path(make, receiver, tls):
    r = receiver(tls=tls)
    url = r.url('/in', host='localhost')
    make(f'{url}?verify_ssl={tls.ca_cert}').publish_samples(_samples(1))
    r.wait(1)
    # The default (True) trusts only the system CAs: refused, not posted.
    with pytest.raises(requests.exceptions.SSLError):
        make(url).publish_samples(_samples(1))
    # The CA is trusted, but the certificate does not name 127.0.0.2.
    other = receiver(tls=tls, bind='127.0.0.2')
    with pytest.raises(requests.exceptions.SSLError):
        make(f'{other.url("/in")}?verify_ssl={tls.ca_cert}').publish_samples(
            _samples(1))
    assert len(r.requests) == 1 and other.requests == []


@pytest.mark.filterwarnings(
    'ignore::urllib3.exceptions.InsecureRequestWarning')
def test_https_verify_ssl_false(make, receiver, tls):
    r = receiver(tls=tls)
    make(r.url('/in?verify_ssl=false')).publish_samples(_samples(1))
    r.wait(1)


def test_https_client_certificate(make, receiver, tls):
    r = receiver(tls=tls, require_client_cert=True)
    base = f'{r.url("/in", host="localhost")}?verify_ssl={tls.ca_cert}'
    make(f'{base}&clientcert={tls.client_cert}&clientkey={tls.client_key}'
         ).publish_samples(_samples(1))
    [request] = r.wait(1)
    subject = dict(pair[0] for pair in request.client_cert['subject'])
    assert subject == {'commonName': 'telemeter-publisher'}
    # Without a client certificate the handshake is refused.
    with pytest.raises(requests.exceptions.RequestException):
        make(base).publish_samples(_samples(1))
    assert len(r.requests) == 1


# ------------------------------------------------------- prometheus ----

def test_prometheus_pushes_one_group_per_resource(make, receiver):
    gateway = receiver(receivers.PushgatewayReceiver)
    p = make(f'prometheus://{gateway.netloc()}/metrics/job/telemeter')
    p.publish_samples(
        _samples(1, resource='vm-1', type='cumulative', name='disk.read.bytes')
        + _samples(1, resource='vm-1', type='gauge', name='cpu.util')
        + _samples(1, resource='vm-2', type='cumulative',
                   name='disk.read.bytes')
        + _samples(1, resource='vm-2', type='delta', name='net.rx-packets'))
    pushes = gateway.wait(2)
    assert gateway.rejections == []
    assert [q.path for q in pushes] == [
        '/metrics/job/telemeter/resource_id/vm-1',
        '/metrics/job/telemeter/resource_id/vm-2']
    assert {q.headers['content-type'] for q in pushes} == {'plain/text'}
    vm1 = gateway.groups[(('job', 'telemeter'), ('resource_id', 'vm-1'))]
    vm2 = gateway.groups[(('job', 'telemeter'), ('resource_id', 'vm-2'))]
    assert {n: t for n, (t, _) in vm1.items()} == {
        'disk_read_bytes': 'counter', 'cpu_util': 'gauge'}
    # A delta sample gets no TYPE line: the gateway sees it untyped.
    assert {n: t for n, (t, _) in vm2.items()} == {
        'disk_read_bytes': 'counter', 'net_rx_packets': 'unknown'}
    [point] = vm2['disk_read_bytes'][1]
    assert point.labels == {'resource_id': 'vm-2', 'user_id': 'user-1',
                            'project_id': 'project-1'}
    assert point.value == 10.0


def test_prometheus_grouping_labels_in_path_push_once(make, receiver):
    gateway = receiver(receivers.PushgatewayReceiver)
    p = make(f'prometheus://{gateway.netloc()}/metrics/job/tm/'
             f'instance/node-1')
    p.publish_samples(_samples(1, resource='vm-1', name='cpu.util')
                      + _samples(1, resource='vm-2', name='cpu.util'))
    [push] = gateway.wait(1)
    assert push.path == '/metrics/job/tm/instance/node-1'
    group = gateway.groups[(('job', 'tm'), ('instance', 'node-1'))]
    assert sorted(s.labels['resource_id']
                  for s in group['cpu_util'][1]) == ['vm-1', 'vm-2']
    assert gateway.rejections == []


def test_pushgateway_fake_rejects_what_the_real_one_would(receiver):
    """The receiver is strict enough to catch a broken publisher."""
    gateway = receiver(receivers.PushgatewayReceiver)
    for path, body in (
            ('/metrics/job/j', 'no_newline 1'),
            ('/metrics/job/j', 'x 1\n# TYPE x gauge\n'),
            ('/metrics/job/j/resource_id/a', 'x{resource_id="b"} 1\n'),
            ('/metrics/job/j', 'x{a="1"} 1\nx{a="1"} 2\n'),
            ('/metrics/nojob', 'x 1\n')):
        response = requests.post(f'http://{gateway.netloc()}{path}',
                                 data=body, timeout=5)
        assert response.status_code == 400, (path, body)
    assert len(gateway.rejections) == 5 and gateway.groups == {}


# ------------------------------------------------------------- otlp ----

def test_opentelemetry_posts_valid_otlp_json(make, receiver, caplog):
    otlp = receiver(receivers.OTLPReceiver)
    p = make(f'opentelemetryhttp://{otlp.netloc()}/v1/metrics')
    good = (_samples(1, type='cumulative', name='disk.read.bytes')
            + _samples(1, type='gauge', name='cpu.util',
                       timestamp='2031-03-04T07:06:07+02:00'))
    bad = _samples(1, timestamp='when the cows come home')
    p.publish_samples(good + bad)
    posts = otlp.wait(2)
    assert otlp.rejections == []
    assert 'Get data point error' in caplog.text
    metrics = [q.json()['resource_metrics'][0]['scope_metrics'][0][
        'metrics'][0] for q in posts]
    assert [m['name'] for m in metrics] == ['disk_read_bytes', 'cpu_util']
    assert 'counter' in metrics[0] and 'gauge' in metrics[1]
    # 2031-03-04T05:06:07.000008Z: 22280 days to 2031-01-01, + 31 + 28 + 3
    # days = 22342 days = 1930348800 s, + 5 h 6 min 7 s (18367 s) =
    # 1930367167 s, then 8 us = 8000 ns. The +02:00 one is the same instant
    # without the microseconds.
    points = [m[k]['data_points'][0] for m, k in
              zip(metrics, ('counter', 'gauge'), strict=True)]
    assert points[0]['time_unix_nano'] == 1930367167 * 10**9 + 8000
    assert points[1]['time_unix_nano'] == 1930367167 * 10**9
    assert points[0]['start_time_unix_nano'] == points[0]['time_unix_nano']
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    moment = datetime.datetime(2031, 3, 4, 5, 6, 7, 8, tzinfo=datetime.UTC)
    assert (moment - epoch) // datetime.timedelta(microseconds=1) == (
        1930367167 * 10**6 + 8)


def test_otlp_fake_rejects_seconds_in_time_fields(receiver):
    """Ceilometer sent seconds; the endpoint of this test refuses them."""
    otlp = receiver(receivers.OTLPReceiver)
    document = {'resource_metrics': [{'scope_metrics': [{
        'scope': {'name': 'telemeter', 'version': 'v1'},
        'metrics': [{'name': 'x', 'description': 'x unit:B', 'unit': 'B',
                     'gauge': {'data_points': [{
                         'attributes': [], 'start_time_unix_nano':
                         1930367167, 'time_unix_nano': 1930367167,
                         'as_double': 1.0, 'flags': 0}]}}]}]}]}
    response = requests.post(f'http://{otlp.netloc()}/v1/metrics',
                             json=document, timeout=5)
    assert response.status_code == 400
    assert 'not integer nanoseconds' in response.text


# -------------------------------------------------------------- udp ----

@pytest.mark.parametrize('host', ['127.0.0.1', '::1'])
def test_udp_one_signed_datagram_per_sample(make, receiver, host):
    sink = receiver(receivers.UDPReceiver, host)
    p = make(f'udp://{sink.netloc()}')
    assert p.socket.family == (socket.AF_INET6 if ':' in host
                               else socket.AF_INET)
    batch = _samples(5)
    p.publish_samples(batch)
    messages = sink.wait(5)
    assert sink.datagrams == 5
    assert [m['message_id'] for m in messages] == [s.id for s in batch]
    assert all(signing.verify_signature(m, SECRET) for m in messages)
    assert messages[0]['resource_metadata'] == {'i': 0}
    assert messages[0]['counter_volume'] == 10.0


# -------------------------------------------------------------- tcp ----

def test_tcp_frames_reconnect_and_resend(make, receiver, caplog):
    sink = receiver(receivers.TCPReceiver)
    p = make(f'tcp://{sink.host}:{sink.port}')
    p.publish_samples(_samples(2))
    first = sink.wait(2)
    assert {m['publisher_id'] for m in first} == {'publisher-host'}
    assert all(signing.verify_signature(m, SECRET) for m in first)

    # The receiver restarts: the publisher notices the closed connection,
    # reconnects and sends everything.
    sink.drop_connections()
    p.publish_samples(_samples(3))
    assert len(sink.wait(5)) == 5
    assert sink.accepted == 2

    # The receiver is down: the batch is abandoned and logged...
    port = sink.port
    sink.close()
    p.publish_samples(_samples(2))
    assert 'Unable to reconnect and resend sample over TCP' in caplog.text
    # ... and once it is back on its port, publishing resumes.
    back = receiver(receivers.TCPReceiver, '127.0.0.1', port)
    batch = _samples(2)
    p.publish_samples(batch)
    assert [m['message_id'] for m in back.wait(2)] == [s.id for s in batch]


def test_tcp_ipv6(make, receiver):
    sink = receiver(receivers.TCPReceiver, '::1')
    make(f'tcp://[::1]:{sink.port}').publish_samples(_samples(1))
    assert sink.wait(1)[0]['counter_name'] == 'net.rx-bytes'


# ------------------------------------- all of them from a real process ----

def test_send_sample_process_publishes_through_every_publisher(
        tmp_path, receiver):
    """pipeline.yaml of a real process lists every publisher at once."""
    http_sink = receiver()
    gateway = receiver(receivers.PushgatewayReceiver)
    otlp = receiver(receivers.OTLPReceiver)
    udp_sink = receiver(receivers.UDPReceiver)
    tcp_sink = receiver(receivers.TCPReceiver)
    alt_sink = receiver()
    json_file = tmp_path / 'samples.json'
    urls = [
        http_sink.url('/samples'),
        f'prometheus://{gateway.netloc()}/metrics/job/telemeter',
        f'opentelemetryhttp://{otlp.netloc()}/v1/metrics',
        f'udp://{udp_sink.netloc()}',
        f'tcp://{tcp_sink.host}:{tcp_sink.port}',
        f'file://{json_file}?json',
        'database://',
        'file_alt://',
        'http_alt://',
    ]
    pipeline = ('sources: [{name: s, meters: ["*"], sinks: [k]}]\n'
                f'sinks: [{{name: k, publishers: {json.dumps(urls)}}}]\n')
    dep = daemons.Deployment(
        tmp_path / 'dep', 'rabbit://unused:unused@127.0.0.1:9/',
        pipeline=pipeline,
        extra_conf=f"""
            [dispatcher_http]
            target = {alt_sink.url('/alt')}
            """)
    dep.run('telemeter-dbsync')
    try:
        dep.run('telemeter-send-sample', '-n', 'disk.write.bytes',
                '-y', 'cumulative', '-U', 'B', '-l', '4096',
                '-r', 'vm-42', '-u', 'user-1', '-p', 'project-1',
                '-i', '2031-05-06T07:08:09.101112')
        [posted] = http_sink.wait(1)[0].json()
        assert (posted['name'], posted['volume']) == ('disk.write.bytes',
                                                      4096)
        gateway.wait(1)
        [(_, [point])] = gateway.groups[
            (('job', 'telemeter'), ('resource_id', 'vm-42'))].values()
        assert point.value == 4096.0
        otlp.wait(1)
        assert otlp.rejections == [] and gateway.rejections == []
        [datagram] = udp_sink.wait(1)
        [frame] = tcp_sink.wait(1)
        assert signing.verify_signature(datagram, daemons.SECRET)
        assert signing.verify_signature(frame, daemons.SECRET)
        assert frame['publisher_id'] == dep.host
        assert json.loads(json_file.read_text())['resource_id'] == 'vm-42'
        [stored] = dep.storage().get_samples(storage.SampleFilter())
        assert (stored.counter_name, stored.counter_volume,
                stored.message_signature) == ('disk.write.bytes', 4096, '')
        # file_alt:// wrote through the file dispatcher, http_alt:// posted
        # through the http dispatcher (one POST per dict).
        [line] = dep.received_path.read_text().splitlines()
        assert ast.literal_eval(line)[0]['resource_id'] == 'vm-42'
        [alt] = alt_sink.wait(1)
        assert alt.path == '/alt'
        assert alt.json()['counter_name'] == 'disk.write.bytes'
        ids = {posted['id'], datagram['message_id'], frame['message_id'],
               stored.message_id, alt.json()['message_id']}
        assert len(ids) == 1
    finally:
        dep.cleanup()
