"""The http.request/http.response and hardware.ipmi.* handlers."""

from __future__ import annotations

import logging

import pytest
from stevedore import extension

from telemeter.notification import ipmi, middleware
from tests.unit.notification import payloads
from tests.unit.notification.conftest import published_samples


def test_entry_points():
    manager = extension.ExtensionManager('telemeter.notification')
    plugins = {ext.name: ext.plugin for ext in manager}
    assert plugins['http.request'] is middleware.HTTPRequest
    assert plugins['http.response'] is middleware.HTTPResponse
    assert plugins['hardware.ipmi.temperature'] is (
        ipmi.TemperatureSensorNotification)
    assert plugins['hardware.ipmi.voltage'] is ipmi.VoltageSensorNotification
    assert plugins['hardware.ipmi.current'] is ipmi.CurrentSensorNotification
    assert plugins['hardware.ipmi.fan'] is ipmi.FanSensorNotification


# -- http ------------------------------------------------------------------

@pytest.mark.parametrize('cls, event_type', [
    (middleware.HTTPRequest, 'http.request'),
    (middleware.HTTPResponse, 'http.response'),
])
def test_http_handlers(sample_pipelines, cls, event_type):
    handler = cls(sample_pipelines)
    assert handler.filter_rule.match({}, 'x', event_type, {}, {})
    assert not handler.filter_rule.match({}, 'x', 'compute.instance.update',
                                         {}, {})
    notification = payloads.message(payloads.http_request())
    notification['event_type'] = event_type
    [sample] = handler.process_notification(notification)
    assert (sample.name, sample.type, sample.unit, sample.volume) == (
        event_type, 'delta', event_type.split('.')[1], 1)
    assert (sample.user_id, sample.project_id, sample.resource_id) == (
        payloads.USER, payloads.PROJECT, 'nova')
    assert sample.resource_metadata['host'] == 'ceilometermiddleware'
    assert sample.timestamp == '2017-09-14T09:32:00.123456+00:00'


def test_http_handler_without_request_fails_and_is_counted(
        sample_pipelines, caplog):
    handler = middleware.HTTPRequest(sample_pipelines)
    broken = payloads.message(payloads.http_request())
    broken['payload'] = {'response': {}}
    handler.info([broken, payloads.message(payloads.http_request())])
    assert len(published_samples(sample_pipelines)) == 1
    assert handler.failures == 1
    assert 'Fail to process notification' in caplog.text


# -- ipmi ------------------------------------------------------------------

def _ipmi(cls, pipelines, notification=None):
    handler = cls(pipelines)
    message = payloads.message(notification or payloads.ipmi_metrics())
    return handler, list(handler.process_notification(message))


def test_ipmi_targets_use_the_ironic_exchange(conf, sample_pipelines):
    conf.set_override('ironic_exchange', 'baremetal')
    handler = ipmi.FanSensorNotification(sample_pipelines)
    assert [(t.topic, t.exchange) for t in handler.get_targets(conf)] == [
        ('notifications', 'baremetal')]
    assert handler.filter_rule.match({}, 'x', 'hardware.ipmi.metrics',
                                     {}, {})
    assert not handler.filter_rule.match({}, 'x', 'compute.metrics.update',
                                         {}, {})


def test_temperature(sample_pipelines, caplog):
    _handler, samples = _ipmi(ipmi.TemperatureSensorNotification,
                              sample_pipelines)
    # The Disabled PCH reading is skipped.
    assert sorted((s.resource_id, s.volume, s.unit) for s in samples) == [
        (f'{payloads.NODE}-cpu1_vr_temp_(0x36)', 32.0, 'C'),
        (f'{payloads.NODE}-dimm_gh_vr_temp_(0x3b)', 26.0, 'C')]
    sample = samples[0]
    assert (sample.name, sample.type, sample.user_id,
            sample.project_id) == ('hardware.ipmi.temperature', 'gauge',
                                   None, None)
    # Ceilometer's metadata: the sensor's fields, node, event_type, host.
    assert sample.resource_metadata == dict(
        payloads.ipmi_metrics()['payload']['payload']['Temperature'][
            'DIMM GH VR Temp (0x3b)'],
        node=payloads.NODE, event_type='hardware.ipmi.metrics.update',
        host='ironic.conductor-01')
    assert 'invalid sensor data' not in caplog.text


def test_voltage_converts_the_unit(sample_pipelines):
    _handler, [sample] = _ipmi(ipmi.VoltageSensorNotification,
                               sample_pipelines)
    assert (sample.name, sample.volume, sample.unit, sample.resource_id) == (
        'hardware.ipmi.voltage', 3.263, 'V',
        f'{payloads.NODE}-planar_3.3v_(0x30)')


def test_current_skips_power_consumption(sample_pipelines):
    _handler, samples = _ipmi(ipmi.CurrentSensorNotification,
                              sample_pipelines)
    assert sorted((s.resource_id, s.volume, s.unit) for s in samples) == [
        (f'{payloads.NODE}-avg_power_(0x2e)', 130.0, 'W'),
        (f'{payloads.NODE}-ps1_curr_out_%_(0x58)', 11.0, 'unspecified')]


def test_fan_with_a_bad_reading_warns_and_keeps_the_others(
        sample_pipelines, caplog):
    with caplog.at_level(logging.WARNING):
        _handler, [sample] = _ipmi(ipmi.FanSensorNotification,
                                   sample_pipelines)
    assert (sample.volume, sample.unit) == (6900.0, 'RPM')
    assert (f'invalid sensor data for {payloads.NODE}-fan_5a_tach_(0x48): '
            "unparsable Sensor Reading 'no reading'") in caplog.text


@pytest.mark.parametrize('sensors, resource, message', [
    ({'X (0x1)': 'not a dict'}, 'missing id',
     'sensor entry is not a mapping'),
    ({'X (0x1)': {'Sensor Reading': '5 C'}}, 'missing id',
     "missing key in payload: 'Sensor ID'"),
    ({'X (0x1)': {'Sensor ID': 7, 'Sensor Reading': '5 C'}}, 'missing id',
     'Sensor ID is not text'),
    ({'X (0x1)': {'Sensor ID': 'X (0x1)'}}, f'{payloads.NODE}-x_(0x1)',
     "missing 'Sensor Reading' in payload"),
    ({'X (0x1)': {'Sensor ID': 'X (0x1)', 'Sensor Reading': 5}},
     f'{payloads.NODE}-x_(0x1)', 'Sensor Reading is not text'),
    ({'X (0x1)': {'Sensor ID': 'X (0x1)', 'Sensor Reading': '12'}},
     f'{payloads.NODE}-x_(0x1)', "unparsable Sensor Reading '12'"),
    ({'X (0x1)': {'Sensor ID': 'X (0x1)', 'Sensor Reading': ' Disabled'}},
     f'{payloads.NODE}-x_(0x1)', "unparsable Sensor Reading ' Disabled'"),
])
def test_bad_sensor_entries(sample_pipelines, caplog, sensors, resource,
                            message):
    notification = payloads.ipmi_metrics()
    notification['payload']['payload'] = {'Fan': sensors}
    with caplog.at_level(logging.WARNING):
        handler, samples = _ipmi(ipmi.FanSensorNotification,
                                 sample_pipelines, notification)
    assert samples == []
    assert handler.failures == 0
    assert f'invalid sensor data for {resource}: {message}' in caplog.text


def test_no_node_uuid_skips_every_sensor(sample_pipelines, caplog):
    notification = payloads.ipmi_metrics()
    del notification['payload']['node_uuid']
    with caplog.at_level(logging.WARNING):
        _handler, samples = _ipmi(ipmi.TemperatureSensorNotification,
                                  sample_pipelines, notification)
    assert samples == []
    assert caplog.text.count("invalid sensor data for missing id: missing "
                             "key in payload: 'node_uuid'") == 3


@pytest.mark.parametrize('stamp, expected', [
    ('2017-09-14T09:32:00.5', '2017-09-14T09:32:00.500000+00:00'),
    ('2017-09-14 11:32:00+02:00', '2017-09-14T11:32:00+02:00'),
    # Not ISO 8601, or absent: the envelope's timestamp, with a warning.
    ('20170914093200', '2017-09-14T09:32:00.123456+00:00'),
    (None, '2017-09-14T09:32:00.123456+00:00'),
])
def test_timestamp_is_the_payload_one(sample_pipelines, caplog, stamp,
                                      expected):
    notification = payloads.ipmi_metrics()
    notification['metadata']['timestamp'] = '2017-09-14 09:32:00.123456'
    if stamp is None:
        del notification['payload']['timestamp']
    else:
        notification['payload']['timestamp'] = stamp
    with caplog.at_level(logging.WARNING):
        _handler, samples = _ipmi(ipmi.FanSensorNotification,
                                  sample_pipelines, notification)
    assert [s.timestamp for s in samples] == [expected]
    assert ('is not ISO 8601' in caplog.text) is (
        expected.startswith('2017-09-14T09:32:00.123456'))


def test_owner_ids_come_from_the_payload(sample_pipelines):
    notification = payloads.ipmi_metrics()
    notification['payload'].update(user_id='u-1', project_id='p-1')
    _handler, samples = _ipmi(ipmi.VoltageSensorNotification,
                              sample_pipelines, notification)
    assert [(s.user_id, s.project_id) for s in samples] == [('u-1', 'p-1')]


def test_family_absent_gives_nothing_and_not_a_mapping_warns(
        sample_pipelines, caplog):
    notification = payloads.ipmi_metrics()
    notification['payload']['payload'] = {'Fan': ['a', 'b']}
    assert _ipmi(ipmi.TemperatureSensorNotification, sample_pipelines,
                 notification)[1] == []
    assert _ipmi(ipmi.FanSensorNotification, sample_pipelines,
                 notification)[1] == []
    assert 'Fan is not a mapping' in caplog.text


@pytest.mark.parametrize('reading, expected', [
    ('26 (+/- 0.500) degrees C', (26.0, 'C')),
    ('3.263 (+/- 0) Volts', (3.263, 'V')),
    ('130 (+/- 0) Watts', (130.0, 'W')),
    ('6900 (+/- 0) RPM', (6900.0, 'RPM')),
    ('-5 degrees C', (-5.0, 'C')),
])
def test_parse_reading(reading, expected):
    assert ipmi.parse_reading(reading) == expected


def test_event_type_filter_matches_like_oslo_and_remembers():
    import oslo_messaging

    from telemeter.notification import plugin_base
    patterns = ['hardware.ipmi.*', 'http\\.request']
    ours = plugin_base.EventTypeFilter(patterns)
    theirs = oslo_messaging.NotificationFilter(event_type='|'.join(patterns))
    for event_type in ('hardware.ipmi.metrics', 'http.request',
                       'http.requests', 'xhttp.request', 'compute.x', None,
                       3):
        for _ in range(2):  # the second answer comes from the cache
            assert ours.match({}, 'p', event_type, {}, {}) == \
                theirs.match({}, 'p', event_type, {}, {}), event_type
    assert set(ours._known) == {'hardware.ipmi.metrics', 'http.request',
                                'http.requests', 'xhttp.request',
                                'compute.x'}
