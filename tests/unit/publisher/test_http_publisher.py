"""http:// and https:// publishers (publishers.md §5): URL handling and
request shape, with the session's post recorded. Real servers, TLS and
client certificates are exercised in tests/functional/test_publishers.py.
"""

import json

import pytest
import requests

from tests.unit.publisher.helpers import event, samples


def Response(status):
    response = requests.Response()
    response.status_code = status
    response.url = 'http://h/in'
    return response


class Recorder:
    def __init__(self, status=200):
        self.posts = []
        self.status = status

    def post(self, url, **kwargs):
        self.posts.append((url, kwargs))
        return Response(self.status)

    def close(self):
        pass


def _recording(publisher, status=200):
    real = publisher.session
    real.close()
    publisher.session = Recorder(status)
    publisher.real_session = real
    return publisher.session


def test_defaults(conf, make):
    conf.set_override('max_parallel_requests', 7)
    publisher = make('http://collector.example:8080/in')
    assert publisher.target == 'http://collector.example:8080/in'
    assert (publisher.timeout, publisher.max_retries, publisher.poster_batch,
            publisher.verify_ssl, publisher.client_cert, publisher.auth,
            publisher.raw_only) == (5, 2, True, True, None, None, False)
    adapter = publisher.session.get_adapter('https://x')
    assert adapter.max_retries.total == 2
    assert adapter._pool_connections == adapter._pool_maxsize == 7


def test_own_parameters_are_stripped_others_kept(make):
    publisher = make(
        'https://alice:s%40cret@[::1]:8443/v1/in?timeout=9&max_retries=4'
        '&batch=false&verify_ssl=/etc/ca.pem&clientcert=/c.pem'
        '&clientkey=/k.pem&raw_only=1&tenant=a&tenant=b&x=#frag')
    assert publisher.target == ('https://[::1]:8443/v1/in?tenant=a&tenant=b'
                                '&x=#frag')
    assert publisher.auth == ('alice', 's@cret')
    assert (publisher.timeout, publisher.max_retries, publisher.poster_batch,
            publisher.verify_ssl, publisher.client_cert,
            publisher.raw_only) == (9, 4, False, '/etc/ca.pem',
                                    ('/c.pem', '/k.pem'), True)
    assert publisher.session.get_adapter(
        'https://x').max_retries.total == 4


@pytest.mark.parametrize('query, verify, cert', [
    ('verify_ssl=false', False, None),
    ('verify_ssl=TRUE', True, None),
    ('verify_ssl=0', False, None),
    ('verify_ssl=/ca.pem&verify_ssl=no', False, None),  # last one wins
    ('clientcert=/both.pem', True, '/both.pem'),
    ('clientkey=/only-key.pem', True, None),
])
def test_verify_and_cert(make, query, verify, cert):
    publisher = make(f'https://h/p?{query}')
    assert (publisher.verify_ssl, publisher.client_cert) == (verify, cert)


def test_unparseable_values_fall_back(make, caplog):
    publisher = make('http://h/p?timeout=soon&max_retries=x&batch=maybe')
    assert (publisher.timeout, publisher.max_retries,
            publisher.poster_batch) == (5, 2, True)
    assert 'URL parameter timeout is not an integer' in caplog.text


def test_bad_urls(make):
    with pytest.raises(ValueError, match='The hostname of an endpoint for '
                                         'HttpPublisher is required'):
        make('http:///path')
    with pytest.raises(ValueError):
        make('http://host:port/path')


def test_batch_posts_one_json_list(make):
    publisher = make('http://u:p@h:1/in?timeout=3&q=1')
    recorder = _recording(publisher)
    batch = samples('a', 'b')
    publisher.publish_samples(batch)
    publisher.publish_samples([])
    [(url, kwargs)] = recorder.posts
    assert url == 'http://h:1/in?q=1'
    assert json.loads(kwargs['data']) == [s.as_dict() for s in batch]
    assert kwargs['headers'] == {'Content-type': 'application/json'}
    assert (kwargs['timeout'], kwargs['auth'], kwargs['cert'],
            kwargs['verify']) == (3, ('u', 'p'), None, True)


def test_no_batch_posts_each_item(make):
    publisher = make('http://h/in?batch=False')
    recorder = _recording(publisher)
    publisher.publish_samples(samples('a', 'b', 'c'))
    assert [json.loads(kw['data'])['name'] for _, kw in recorder.posts] == [
        'a', 'b', 'c']


def test_events_serialized_or_raw_payloads(make):
    publisher = make('http://h/events', 'telemeter.event.publisher')
    recorder = _recording(publisher)
    publisher.publish_events([event('e1', {'a': 1})])
    [body] = [json.loads(kw['data']) for _, kw in recorder.posts]
    assert body == [{'message_id': 'e1',
                     'event_type': 'compute.instance.create.end',
                     'generated': '2031-01-01T12:00:00',
                     'traits': [['n', 2, 5]], 'raw': {'payload': {'a': 1}}}]

    raw = make('http://h/events?raw_only=true', 'telemeter.event.publisher')
    recorder = _recording(raw)
    raw.publish_events([event('e1', {'a': 1}), event('e2'),
                        event('e3', {}), event('e4', {'b': 2})])
    [body] = [json.loads(kw['data']) for _, kw in recorder.posts]
    assert body == [{'a': 1}, {'b': 2}]
    raw.publish_events([event('e2')])
    assert len(recorder.posts) == 1  # nothing left to post


def test_client_error_status_logged_not_raised(make, caplog):
    publisher = make('http://h/in')
    _recording(publisher, status=400)
    publisher.publish_samples(samples('a'))
    assert 'Status Code: 400. Failed to dispatch message: [{' in caplog.text


def test_server_error_status_raised(make):
    publisher = make('http://h/in')
    _recording(publisher, status=503)
    with pytest.raises(requests.HTTPError, match='503'):
        publisher.publish_samples(samples('a'))


def test_connection_error_propagates(make):
    publisher = make('http://127.0.0.1:9/in?max_retries=0')
    with pytest.raises(requests.ConnectionError):
        publisher.publish_samples(samples('a'))
