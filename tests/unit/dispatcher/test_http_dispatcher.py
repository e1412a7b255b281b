"""The http dispatcher ([dispatcher_http], collector.md §5)."""

import json

import pytest
import requests

from telemeter import dispatcher
from telemeter.dispatcher import errors, http


def Response(status):
    response = requests.Response()
    response.status_code = status
    response.url = 'http://t/'
    return response


class RecordingSession:
    def __init__(self, status=200):
        self.posts = []
        self.status = status

    def post(self, url, **kwargs):
        self.posts.append((url, kwargs))
        return Response(self.status)


def _dispatcher(conf, status=200, **options):
    for name, value in options.items():
        conf.set_override(name, value, group='dispatcher_http')
    d = http.HttpDispatcher(conf)
    d.session = RecordingSession(status)
    return d


def test_loaded_for_meters_and_events(conf):
    conf.set_override('meter_dispatchers', ['http'])
    conf.set_override('event_dispatchers', ['http'])
    meter, event = dispatcher.load_dispatcher_manager(conf)
    assert isinstance(meter['http'].obj, http.HttpDispatcher)
    assert isinstance(event['http'].obj, http.HttpDispatcher)


def test_one_post_per_dict_by_default(conf):
    d = _dispatcher(conf, target='http://collector.example:8080/meters')
    d.record_metering_data([{'counter_name': 'a'}, {'counter_name': 'b'}])
    d.record_metering_data({'counter_name': 'udp'})
    assert [json.loads(kw['data']) for _, kw in d.session.posts] == [
        {'counter_name': 'a'}, {'counter_name': 'b'},
        {'counter_name': 'udp'}]
    url, kwargs = d.session.posts[0]
    assert url == 'http://collector.example:8080/meters'
    assert kwargs['headers'] == {'Content-type': 'application/json'}
    assert kwargs['timeout'] == 5
    assert kwargs['verify'] is True


def test_batch_mode_posts_the_list_once(conf):
    d = _dispatcher(conf, target='http://t/', batch_mode=True, timeout=9)
    d.record_metering_data([{'counter_name': 'a'}, {'counter_name': 'b'}])
    [(_, kwargs)] = d.session.posts
    assert json.loads(kwargs['data']) == [{'counter_name': 'a'},
                                          {'counter_name': 'b'}]
    assert kwargs['timeout'] == 9


def test_events_go_to_event_target_or_target(conf):
    d = _dispatcher(conf, target='http://t/meters')
    d.record_events([{'message_id': 'e1'}])
    assert d.session.posts[0][0] == 'http://t/meters'
    d = _dispatcher(conf, target='http://t/meters',
                    event_target='http://t/events')
    d.record_events({'message_id': 'e2'})
    assert d.session.posts[0][0] == 'http://t/events'


@pytest.mark.parametrize('value, verify', [
    (None, True), ('false', False), ('True', True), ('0', False),
    ('/etc/ssl/private-ca.pem', '/etc/ssl/private-ca.pem')])
def test_verify_ssl(conf, value, verify):
    d = _dispatcher(conf, target='https://t/', verify_ssl=value)
    d.record_metering_data([{'x': 1}])
    assert d.session.posts[0][1]['verify'] == verify


def test_missing_targets_log_and_post_nothing(conf, caplog):
    d = _dispatcher(conf)
    d.record_metering_data([{'x': 1}])
    d.record_events([{'x': 1}])
    assert d.session.posts == []
    assert ('Dispatcher target was not set, no meter will be posted. Set '
            'the target in the telemeter.conf file.') in caplog.text
    assert ('Dispatcher event target was not set, no event will be posted. '
            'Set event_target in the telemeter.conf file.') in caplog.text


def test_client_error_status_is_logged_not_raised(conf, caplog):
    d = _dispatcher(conf, status=400, target='http://t/')
    d.record_metering_data([{'counter_name': 'a'}])
    d.record_events([{'message_id': 'e'}])
    assert ('Status Code: 400. Failed to dispatch meter: '
            '{"counter_name": "a"}') in caplog.text
    assert ('Status Code: 400. Failed to dispatch event: '
            '{"message_id": "e"}') in caplog.text


def test_server_error_status_requeues(conf):
    """A 5xx is the endpoint's failure: raised as an error that makes the
    collector requeue the batch."""
    d = _dispatcher(conf, status=503, target='http://t/')
    with pytest.raises(requests.HTTPError) as caught:
        d.record_metering_data([{'counter_name': 'a'}])
    assert errors.unreachable(caught.value)


def test_connection_error_propagates(conf):
    """So the collector requeues the bus batch."""
    d = _dispatcher(conf, target='http://127.0.0.1:9/')
    d.session = requests.Session()
    with pytest.raises(requests.ConnectionError):
        d.record_metering_data([{'counter_name': 'a'}])
