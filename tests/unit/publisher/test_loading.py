"""Every publisher name of the spec loads through stevedore, and the
sample-only ones refuse events (interfaces.md §5, publishers.md)."""

import importlib.metadata

import pytest

import telemeter
from telemeter.publisher import (
    direct,
    file,
    http,
    messaging,
    opentelemetry_http,
    prometheus,
    tcp,
    test,
    udp,
)

SAMPLE_URLS = {
    'test': ('test://', test.TestPublisher),
    'notifier': ('notifier://', messaging.SampleNotifierPublisher),
    'udp': ('udp://127.0.0.1:4952', udp.UDPPublisher),
    'tcp': ('tcp://127.0.0.1:9', tcp.TCPPublisher),
    'file': ('file:///tmp/x', file.FilePublisher),
    'http': ('http://h:1/p', http.HttpPublisher),
    'https': ('https://h:1/p', http.HttpPublisher),
    'direct': ('direct://', direct.DirectPublisher),
    'database': ('database://', direct.DirectPublisher),
    'file_alt': ('file_alt://', direct.DirectPublisher),
    'http_alt': ('http_alt://', direct.DirectPublisher),
    'prometheus': ('prometheus://h:9091/metrics/job/j',
                   prometheus.PrometheusPublisher),
    'opentelemetryhttp': ('opentelemetryhttp://h:4318/v1/metrics',
                          opentelemetry_http.OpentelemetryHttpPublisher),
}
EVENT_NAMES = ['test', 'notifier', 'http', 'https', 'file', 'direct',
               'database', 'file_alt', 'http_alt']
SAMPLE_ONLY = ['udp', 'tcp', 'prometheus', 'opentelemetryhttp']


def _names(group):
    return {e.name for e in importlib.metadata.entry_points(group=group)}


def test_namespaces_hold_the_spec_names():
    assert _names('telemeter.sample.publisher') >= set(SAMPLE_URLS)
    assert _names('telemeter.event.publisher') >= set(EVENT_NAMES)
    assert not _names('telemeter.event.publisher') & set(SAMPLE_ONLY)
    for group in ('telemeter.dispatcher.meter', 'telemeter.dispatcher.event'):
        assert _names(group) >= {'database', 'file', 'http'}


@pytest.mark.parametrize('name', sorted(SAMPLE_URLS))
def test_each_sample_publisher_builds_from_its_url(conf, make, tmp_path,
                                                  name):
    url, cls = SAMPLE_URLS[name]
    url = url.replace('/tmp/x', str(tmp_path / 'x'))
    publisher = make(url)
    assert type(publisher) is cls
    assert publisher.conf is conf


@pytest.mark.parametrize('name', SAMPLE_ONLY)
def test_sample_only_publishers_refuse_events(make, name):
    publisher = make(SAMPLE_URLS[name][0])
    with pytest.raises(telemeter.NotImplementedError):
        publisher.publish_events([])
    # ... which callers may also catch as the builtin.
    assert issubclass(telemeter.NotImplementedError, NotImplementedError)


@pytest.mark.parametrize('name', EVENT_NAMES)
def test_event_publishers_build(make, tmp_path, name):
    url = SAMPLE_URLS[name][0].replace('/tmp/x', str(tmp_path / 'x'))
    publisher = make(url, 'telemeter.event.publisher')
    expected = (messaging.EventNotifierPublisher if name == 'notifier'
                else SAMPLE_URLS[name][1])
    assert type(publisher) is expected
