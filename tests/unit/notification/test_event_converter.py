"""Declarative events: matching, traits, defaults, raw, unmatched."""

from __future__ import annotations

import datetime
import logging

import pytest
import yaml
from stevedore import extension

from telemeter import declarative
from telemeter.notification import event_converter
from telemeter.storage import models
from tests.unit.notification import payloads

TEXT, INT, FLOAT, DATETIME = (models.Trait.TEXT_TYPE, models.Trait.INT_TYPE,
                              models.Trait.FLOAT_TYPE,
                              models.Trait.DATETIME_TYPE)


@pytest.fixture
def plugins():
    return extension.ExtensionManager('telemeter.event.trait_plugin')


@pytest.fixture
def converter(conf, plugins):
    def build(definitions, **overrides):
        for name, value in overrides.items():
            conf.set_override(name, value, group='event')
        if isinstance(definitions, str):
            definitions = yaml.safe_load(definitions)
        return event_converter.NotificationEventsConverter(
            conf, definitions, plugins)
    return build


def _traits(event):
    return {t.name: (t.dtype, t.value) for t in event.traits}


def _event(conv, notification, priority='info'):
    return conv.to_event(priority, payloads.message(notification))


INSTANCE_DEFS = """
- event_type: compute.instance.*
  traits:
    instance_id: {fields: payload.instance_id}
    memory_mb: {type: int, fields: payload.memory_mb}
    disk_gb: {type: float, fields: payload.disk_gb}
    launched_at: {type: datetime, fields: payload.launched_at}
    deleted_at: {type: datetime, fields: payload.deleted_at}
    host: {fields: 'publisher_id.`split(., 1, 1)`'}
    nothing: {fields: payload.not_there}
"""


def test_event_from_a_nova_notification(converter):
    conv = converter(INSTANCE_DEFS)
    event = _event(conv, payloads.instance())
    assert event.event_type == 'compute.instance.create.end'
    assert event.message_id == 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d'
    assert event.generated == datetime.datetime(2017, 9, 14, 9, 32, 0,
                                                123456)
    assert event.raw == {}
    traits = _traits(event)
    assert traits == {
        'instance_id': (TEXT, payloads.INSTANCE),
        'memory_mb': (INT, 2048),
        'disk_gb': (FLOAT, 20.0),
        'launched_at': (DATETIME, datetime.datetime(2017, 9, 14, 9, 31, 55,
                                                    500000)),
        'host': (TEXT, 'compute-01.example.org'),
        # Default traits.
        'service': (TEXT, 'compute.compute-01.example.org'),
        'request_id': (TEXT, 'req-6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'),
        'project_id': (TEXT, payloads.PROJECT),
        'tenant_id': (TEXT, payloads.PROJECT),
        'user_id': (TEXT, payloads.USER),
    }
    # deleted_at is '' (not text: skipped); 'nothing' matched nothing.


def test_generated_is_normalised_to_naive_utc(converter):
    conv = converter(INSTANCE_DEFS)
    notification = payloads.instance()
    notification['metadata']['timestamp'] = '2017-09-14T11:32:00+02:00'
    assert _event(conv, notification).generated == datetime.datetime(
        2017, 9, 14, 9, 32)


def test_text_traits_are_cut_to_255_characters(converter):
    conv = converter(INSTANCE_DEFS)
    event = _event(conv, payloads.instance(instance_id='x' * 300))
    assert _traits(event)['instance_id'] == (TEXT, 'x' * 255)


def test_a_value_of_the_wrong_type_drops_only_that_trait(converter, caplog):
    conv = converter(INSTANCE_DEFS)
    with caplog.at_level(logging.WARNING):
        event = _event(conv, payloads.instance(memory_mb='lots',
                                               launched_at='yesterday'))
    traits = _traits(event)
    assert 'memory_mb' not in traits and 'launched_at' not in traits
    assert traits['instance_id'] == (TEXT, payloads.INSTANCE)
    assert "cannot convert 'lots' to integer" in caplog.text


@pytest.mark.parametrize('event_type, expected', [
    # update matches the first two: the later, generic one wins.
    ('compute.instance.update', 'generic'),
    ('compute.instance.create.end', 'generic'),
    ('compute.instance.create.start', 'generic'),
    ('compute.instance.delete.end', 'delete'),
])
def test_the_last_matching_definition_wins(converter, event_type,
                                           expected):
    conv = converter("""
- event_type: compute.instance.update
  traits: {which: {fields: payload.update}}
- event_type: [compute.instance.*, '!compute.instance.delete.*']
  traits: {which: {fields: payload.generic}}
- event_type: compute.instance.delete.*
  traits: {which: {fields: payload.delete}}
""")
    notification = payloads.instance()
    notification['event_type'] = event_type
    notification['payload'].update(update='update', generic='generic',
                                   delete='delete')
    assert _traits(_event(conv, notification))['which'] == (TEXT, expected)


def test_a_specific_definition_must_come_after_the_generic_one(converter):
    conv = converter("""
- event_type: compute.instance.*
  traits: {which: {fields: payload.generic}}
- event_type: compute.instance.update
  traits: {which: {fields: payload.update}}
""")
    notification = payloads.instance_update(generic='generic',
                                            update='update')
    assert _traits(_event(conv, notification))['which'] == (TEXT, 'update')


def test_exclusions_alone_imply_everything_else(converter):
    conv = converter("""
- event_type: ['!compute.*', '!image.*']
  traits: {matched: {fields: event_type}}
""", drop_unmatched_notifications=True)
    assert _event(conv, payloads.instance()) is None
    assert _event(conv, payloads.image()) is None
    event = _event(conv, payloads.volume())
    assert _traits(event)['matched'] == (TEXT, 'volume.create.end')


def test_globs_match_the_whole_event_type(converter):
    conv = converter("""
- event_type: volume.*.end
  traits: {x: {fields: payload.volume_id}}
""", drop_unmatched_notifications=True)
    assert _event(conv, payloads.volume('volume.create.end')) is not None
    assert _event(conv, payloads.volume('volume.create.start')) is None
    assert _event(conv, payloads.volume('xvolume.create.end')) is None


def test_catch_all_only_for_unmatched_notifications(converter):
    conv = converter(INSTANCE_DEFS)
    image = _event(conv, payloads.image())
    # Only the default traits; the payload's owner is not tenant_id, so
    # the context's project is used.
    assert set(_traits(image)) == {'service', 'request_id', 'project_id',
                                   'tenant_id', 'user_id'}
    assert _traits(image)['project_id'] == (TEXT, payloads.PROJECT)
    # A configured match is never overridden by the catch-all.
    assert 'memory_mb' in _traits(_event(conv, payloads.instance()))


def test_no_extra_catch_all_when_one_is_configured(converter):
    conv = converter("""
- event_type: '*'
  traits: {everything: {fields: publisher_id}}
- event_type: compute.*
  traits: {compute: {fields: publisher_id}}
""")
    assert conv.catchall is None
    assert 'everything' in _traits(_event(conv, payloads.image()))
    assert 'compute' in _traits(_event(conv, payloads.instance()))
    # '*' with an exclusion is not a catch-all.
    conv = converter("- {event_type: ['*', '!image.*'], traits: {}}")
    assert conv.catchall is not None


def test_drop_unmatched(converter, caplog):
    conv = converter(INSTANCE_DEFS, drop_unmatched_notifications=True)
    with caplog.at_level(logging.DEBUG):
        assert _event(conv, payloads.image()) is None
    assert ('Dropping Notification image.upload '
            '(uuid:a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d)') in caplog.text


@pytest.mark.parametrize('store_raw, priority, stored', [
    ([], 'info', False),
    (['info'], 'info', True),
    (['INFO'], 'info', True),
    (['error'], 'info', False),
    (['error'], 'error', True),
    (['info', 'error'], 'ERROR', True),
])
def test_store_raw_by_priority(converter, store_raw, priority, stored):
    conv = converter(INSTANCE_DEFS, store_raw=store_raw)
    notification = payloads.message(payloads.instance())
    event = conv.to_event(priority, notification)
    assert event.raw == (notification if stored else {})


def test_default_traits_prefer_the_payload_and_can_be_replaced(converter):
    conv = converter("""
- event_type: compute.instance.*
  traits:
    service: {fields: payload.host}
""")
    notification = payloads.instance()
    notification['ctxt'] = {'project_id': 'ctx-project',
                            'user_id': 'ctx-user'}
    traits = _traits(_event(conv, notification))
    assert traits['service'] == (TEXT, 'compute-01')
    assert traits['project_id'] == (TEXT, payloads.PROJECT)
    assert traits['user_id'] == (TEXT, payloads.USER)
    assert 'request_id' not in traits
    del notification['payload']['tenant_id']
    del notification['payload']['user_id']
    traits = _traits(_event(conv, notification))
    assert traits['project_id'] == (TEXT, 'ctx-project')
    assert traits['tenant_id'] == (TEXT, 'ctx-project')
    assert traits['user_id'] == (TEXT, 'ctx-user')
    notification['ctxt'] = {'tenant': 'legacy-tenant'}
    assert _traits(_event(conv, notification))['tenant_id'] == (
        TEXT, 'legacy-tenant')


def test_trait_plugins_in_event_definitions(converter):
    conv = converter("""
- event_type: compute.instance.create.end
  traits:
    booting:
      type: float
      fields: [payload.created_at, payload.launched_at]
      plugin: timedelta
    state_code:
      type: int
      fields: payload.state
      plugin: {name: map, parameters: {values: {active: 1, error: 2}}}
    flags:
      type: int
      fields: [payload.state, payload.vcpus]
      plugin:
        name: bitfield
        parameters:
          flags:
            - {path: payload.state, bit: 0, value: active}
            - {path: payload.vcpus, bit: 2}
""")
    traits = _traits(_event(conv, payloads.instance()))
    # 09:31:55.5 - 09:31:42 = 13.5 s
    assert traits['booting'] == (FLOAT, 13.5)
    assert traits['state_code'] == (INT, 1)
    # bit 0 (state active) + bit 2 (vcpus present) = 1 + 4 = 5
    assert traits['flags'] == (INT, 5)


@pytest.mark.parametrize('definition, message', [
    ({'traits': {}}, 'Required field event_type not specified'),
    ({'event_type': 'x'}, 'Required field traits not specified'),
    ({'event_type': 'x', 'traits': {'t': {'type': 'bool', 'fields': 'a'}}},
     "Invalid trait type 'bool' for trait t"),
    ({'event_type': 'x', 'traits': {'t': {'type': 'int'}}},
     "The field 'fields' is required for t"),
    ({'event_type': 'x', 'traits': {'t': {'fields': 'a', 'plugin': 'no'}}},
     'No plugin named no available for t'),
    ({'event_type': 'x', 'traits': {'t': 'payload.['}},
     "Parse error in JSONPath specification 'payload.['"),
    ({'event_type': [], 'traits': {}}, 'event_type must be a glob'),
    ({'event_type': 'x', 'traits': ['a']}, 'traits must be a mapping'),
    ('compute.*', 'must be a mapping with event_type and traits'),
])
def test_bad_definitions_are_logged_and_skipped(converter, caplog,
                                                definition, message):
    with caplog.at_level(logging.ERROR):
        conv = converter([definition, {'event_type': 'image.*',
                                       'traits': {'ok': 'payload.id'}}])
    assert len(conv.definition_errors) == 1
    assert message in conv.definition_errors[0]
    assert conv.definition_errors[0].startswith('event definitions: event '
                                                'definition 1: ')
    assert [d.cfg['event_type'] for d in conv.definitions] == ['image.*']
    assert 'Error loading event definition 1 of event definitions' in (
        caplog.text)
    assert message in caplog.text
    with pytest.raises(declarative.EventDefinitionException,
                       match=message.replace('[', r'\[')):
        event_converter.EventDefinition(definition, extension.
                                        ExtensionManager('x'))


def test_definitions_file_lookup(conf, plugins, tmp_path):
    # Default: the packaged file.
    assert event_converter._definitions_path(conf) == (
        event_converter.PACKAGED_DEFINITIONS)
    path = tmp_path / 'mine.yaml'
    path.write_text('- {event_type: mine.*, traits: {}}\n')
    conf.set_override('definitions_cfg_file', str(path), group='event')
    conv = event_converter.setup_events(conf, plugins)
    assert [d.cfg['event_type'] for d in conv.definitions] == ['mine.*']


def test_definitions_file_errors_name_the_file(conf, plugins, tmp_path):
    path = tmp_path / 'broken.yaml'
    path.write_text('- event_type: [a\n')
    conf.set_override('definitions_cfg_file', str(path), group='event')
    with pytest.raises(declarative.DefinitionFileError,
                       match=r'broken\.yaml at line: 2, column: 1'):
        event_converter.setup_events(conf, plugins)


def test_a_file_that_is_not_a_list_loads_nothing(converter, caplog):
    conv = converter({'event_type': 'x', 'traits': {}})
    assert conv.definitions == [] and len(conv.definition_errors) == 1
    assert 'must hold a list of event definitions' in caplog.text


def test_notification_without_timestamp_raises(converter):
    conv = converter(INSTANCE_DEFS)
    notification = payloads.instance()
    notification['metadata'] = {'message_id': 'x'}
    with pytest.raises(KeyError):
        _event(conv, notification)


@pytest.mark.parametrize('message_id', [None, '', 42, ['x'], {'a': 1}])
def test_a_notification_without_a_string_message_id_is_refused(
        converter, message_id):
    notification = payloads.message(payloads.instance())
    notification['metadata'] = dict(notification['metadata'],
                                    message_id=message_id)
    with pytest.raises(ValueError, match=r'message_id .* is not a string'):
        converter(INSTANCE_DEFS).to_event('info', notification)
