"""Declarative meters: loading rules, value evaluation, lookup, handler."""

from __future__ import annotations

import logging
import textwrap

import pytest
from stevedore import extension

from telemeter.notification import meters
from tests.unit.notification import payloads
from tests.unit.notification.conftest import published_samples

MEMORY = """
metric:
  - name: memory
    event_type: compute\\.instance\\.(?!create\\.start)
    type: gauge
    unit: MB
    volume: $.payload.memory_mb
    resource_id: $.payload.instance_id
"""


def _memory_with(extra: str, indent: int = 4) -> str:
    """MEMORY plus ``extra`` (keys of the memory entry at ``indent`` 4, or
    further list entries at ``indent`` 2)."""
    return MEMORY + textwrap.indent(textwrap.dedent(extra), ' ' * indent)


@pytest.fixture
def plugins():
    return extension.ExtensionManager('telemeter.event.trait_plugin')


def _load(conf, plugins):
    return meters.load_definitions(conf, plugins)


def _samples(conf, plugins, notification):
    definitions, _errors = _load(conf, plugins)
    handler = meters.ProcessMeterNotifications.__new__(
        meters.ProcessMeterNotifications)
    handler.definitions = definitions
    handler._matching = {}
    return list(handler.process_notification(payloads.message(notification)))


# -- loading ------------------------------------------------------------

def test_default_dirs_are_etc_then_package(conf):
    assert conf.meter.meter_definitions_dirs == [
        '/etc/telemeter/meters.d', meters.PACKAGED_METERS_DIR]
    assert conf.meter.meter_definitions_cfg_file is None


def _unit_of(definitions, name):
    return {d.name: d.cfg['unit'] for d in definitions}[name]


def test_first_directory_wins_over_later_ones(conf, tmp_path, plugins):
    etc, package = tmp_path / 'etc', tmp_path / 'pkg'
    etc.mkdir()
    package.mkdir()
    (etc / 'local.yaml').write_text(MEMORY.replace('MB', 'MiB'))
    (package / 'meters.yaml').write_text(
        MEMORY + MEMORY.replace('metric:', '').replace('memory', 'vcpus'))
    conf.set_override('meter_definitions_dirs', [str(etc), str(package)],
                      group='meter')
    definitions, errors = _load(conf, plugins)
    assert errors == []
    assert sorted(d.name for d in definitions) == ['memory', 'vcpus']
    assert _unit_of(definitions, 'memory') == 'MiB'


def test_in_a_file_the_last_definition_wins_and_duplicates_are_logged(
        conf, meters_dir, plugins, caplog):
    meters_dir('m.yaml', MEMORY + MEMORY.replace('metric:', '').replace(
        'MB', 'last'))
    with caplog.at_level(logging.WARNING):
        definitions, _ = _load(conf, plugins)
    assert [(d.name, d.cfg['unit']) for d in definitions] == [
        ('memory', 'last')]
    assert 'Skipping duplicate meter definition' in caplog.text


def test_across_files_of_a_directory_the_first_file_wins(conf, meters_dir,
                                                         plugins):
    meters_dir('b.yaml', MEMORY.replace('MB', 'from-b'))
    meters_dir('a.yaml', MEMORY.replace('MB', 'from-a'))
    meters_dir('notes.txt', MEMORY.replace('MB', 'ignored'))
    definitions, _ = _load(conf, plugins)
    assert _unit_of(definitions, 'memory') == 'from-a'


def test_deprecated_file_comes_last(conf, meters_dir, plugins, tmp_path):
    meters_dir('a.yaml', MEMORY.replace('MB', 'from-dir'))
    legacy = tmp_path / 'legacy.yaml'
    legacy.write_text(MEMORY.replace('MB', 'legacy') + MEMORY.replace(
        'metric:', '').replace('memory', 'legacy.only'))
    conf.set_override('meter_definitions_cfg_file', str(legacy),
                      group='meter')
    definitions, _ = _load(conf, plugins)
    assert _unit_of(definitions, 'memory') == 'from-dir'
    assert _unit_of(definitions, 'legacy.only') == 'MB'


def test_missing_directories_are_ignored(conf, plugins, tmp_path):
    conf.set_override('meter_definitions_dirs', [str(tmp_path / 'none')],
                      group='meter')
    assert _load(conf, plugins) == ([], [])


BAD_DEFINITIONS = [
    ("  - {name: a, type: gauge, event_type: x, unit: B, volume: 1}",
     "Required fields ['resource_id'] not specified"),
    ("  - {name: '', type: '', event_type: x, unit: B, volume: 0, "
     "resource_id: $.r}",
     "Required fields ['name', 'type', 'volume'] not specified"),
    ("  - {name: a, type: counter, event_type: x, unit: B, volume: 1, "
     "resource_id: $.r}", 'Invalid type counter specified'),
    ("  - {name: a, type: gauge, event_type: 'x(', unit: B, volume: 1, "
     "resource_id: $.r}", "Invalid event_type regular expression 'x('"),
    ("  - {name: a, type: gauge, event_type: x, unit: B, volume: '$.[', "
     "resource_id: $.r}", "Parse error in JSONPath specification '$.['"),
    ("  - {name: a, type: gauge, event_type: x, unit: B, resource_id: $.r,"
     " volume: {fields: $.v, plugin: nope}}",
     'No plugin named nope available for volume'),
    ("  - {name: a, type: gauge, event_type: x, unit: B, resource_id: $.r,"
     " volume: {plugin: timedelta}}",
     "The field 'fields' is required for volume"),
    ("  - {name: a, type: gauge, event_type: x, unit: B, resource_id: $.r,"
     " volume: 1, metadata: [a]}", 'metadata must be a mapping'),
    ("  - {name: $.n, type: gauge, event_type: x, unit: B, "
     "resource_id: $.r, lookup: [name], volume: {fields: [$.a, $.b], "
     "plugin: timedelta}}", "don't allows to return multiple values"),
    ("  - just a string", 'A meter definition must be a mapping'),
    # Only the sample attributes name, type and unit may be plain text.
    ("  - {name: a, type: gauge, event_type: x, unit: B, resource_id: $.r,"
     " volume: 1, metadata: {unit: 'payload.[unit'}}",
     'Parse error in JSONPath specification'),
]


@pytest.mark.parametrize('entry, message', BAD_DEFINITIONS)
def test_bad_definition_is_logged_with_its_file_and_skipped(
        conf, meters_dir, plugins, caplog, entry, message):
    path = meters_dir('m.yaml', MEMORY + entry + '\n')
    with caplog.at_level(logging.ERROR):
        definitions, errors = _load(conf, plugins)
    assert [d.name for d in definitions] == ['memory']
    assert len(errors) == 1
    assert errors[0].startswith(f'{path}: entry 2 of metric: ')
    assert message in errors[0]
    assert 'Error loading meter definition: MeterDefinitionException' in (
        caplog.text)
    assert message in caplog.text
    assert path in caplog.text


def test_lookup_allows_a_type_from_the_notification(conf, meters_dir,
                                                    plugins):
    meters_dir('m.yaml', """
        metric:
          - name: $.payload.metrics[*].name
            event_type: magnum.bay.metrics.update
            type: $.payload.metrics[*].type
            unit: $.payload.metrics[*].unit
            volume: $.payload.metrics[*].value
            resource_id: $.payload.resource_id
            lookup: [name, unit, volume, type]
        """)
    definitions, errors = _load(conf, plugins)
    assert errors == [] and len(definitions) == 1


def test_yaml_error_skips_only_that_file(conf, meters_dir, plugins, caplog):
    meters_dir('a.yaml', 'metric:\n  - name: [broken\n')
    meters_dir('b.yaml', MEMORY)
    meters_dir('c.yaml', 'something: else\n')
    definitions, errors = _load(conf, plugins)
    assert [d.name for d in definitions] == ['memory']
    assert len(errors) == 2
    assert 'a.yaml at line: 3, column: 1' in errors[0]
    assert errors[1].endswith('c.yaml: it must hold a top-level "metric:" '
                              'list')
    assert 'Invalid YAML syntax in Definitions file' in caplog.text
    assert 'a.yaml at line: 3, column: 1' in caplog.text
    assert 'c.yaml: it must hold a top-level "metric:" list' in caplog.text


# -- matching and values ---------------------------------------------------

@pytest.mark.parametrize('event_type, matches', [
    ('compute.instance.create.end', True),
    ('compute.instance.update', True),
    ('compute.instance.delete.start', True),
    ('compute.instance.create.start', False),
    ('xcompute.instance.update', False),
])
def test_event_type_is_a_regex_anchored_at_the_start(
        conf, meters_dir, plugins, event_type, matches):
    meters_dir('m.yaml', MEMORY)
    [definition], _ = _load(conf, plugins)
    assert definition.match_type(event_type) is matches


def test_event_type_list_and_unanchored_end(conf, meters_dir, plugins):
    meters_dir('m.yaml', """
        metric:
          - name: volume.size
            event_type: [volume.create.*, 'volume\\.exists']
            type: gauge
            unit: GB
            volume: $.payload.size
            resource_id: $.payload.volume_id
        """)
    [definition], _ = _load(conf, plugins)
    assert definition.match_type('volume.create.end')
    assert definition.match_type('volume.exists')
    # re.match anchors only the start.
    assert definition.match_type('volume.exists.extra')
    assert not definition.match_type('snapshot.create.end')


def test_every_matching_definition_makes_a_sample(conf, meters_dir,
                                                  plugins):
    meters_dir('m.yaml', _memory_with("""
          - name: vcpus
            event_type: compute.instance.create.end
            type: gauge
            unit: vcpu
            volume: $.payload.vcpus
            resource_id: $.payload.instance_id
          - name: unrelated
            event_type: image.upload
            type: gauge
            unit: B
            volume: $.payload.size
            resource_id: $.payload.id
        """, indent=2))
    samples = _samples(conf, plugins, payloads.instance())
    assert [(s.name, s.volume) for s in samples] == [('memory', 2048),
                                                      ('vcpus', 1)]


def test_sample_from_a_nova_notification(conf, meters_dir, plugins):
    meters_dir('m.yaml', MEMORY)
    [sample] = _samples(conf, plugins, payloads.instance())
    assert (sample.name, sample.type, sample.unit, sample.volume,
            sample.resource_id) == ('memory', 'gauge', 'MB', 2048,
                                    payloads.INSTANCE)
    # Defaults from the request context.
    assert (sample.user_id, sample.project_id) == (payloads.USER,
                                                   payloads.PROJECT)
    # The notification's timestamp, re-emitted with an offset.
    assert sample.timestamp == '2017-09-14T09:32:00.123456+00:00'
    # No metadata configured: the payload plus event_type and host.
    assert sample.resource_metadata['event_type'] == (
        'compute.instance.create.end')
    assert sample.resource_metadata['host'] == (
        'compute.compute-01.example.org')
    assert sample.resource_metadata['display_name'] == 'web-1'
    assert sample.source == 'openstack'


@pytest.mark.parametrize('ctxt, user, project', [
    ({'user_id': 'u1', 'user': 'u2', 'project_id': 'p1',
      'tenant_id': 'p2', 'tenant': 'p3'}, 'u1', 'p1'),
    ({'user_id': None, 'user': 'u2', 'tenant_id': 'p2', 'tenant': 'p3'},
     'u2', 'p2'),
    ({'user': 'u2', 'tenant': 'p3'}, 'u2', 'p3'),
    ({}, None, None),
    (None, None, None),
])
def test_user_and_project_fall_back_through_the_context(
        conf, meters_dir, plugins, ctxt, user, project):
    meters_dir('m.yaml', MEMORY)
    notification = payloads.instance()
    notification['ctxt'] = ctxt
    [sample] = _samples(conf, plugins, notification)
    assert (sample.user_id, sample.project_id) == (user, project)


def test_configured_values_replace_defaults_only_when_found(
        conf, meters_dir, plugins):
    meters_dir('m.yaml', """
        metric:
          - name: image.size
            event_type: image.upload
            type: gauge
            unit: B
            volume: $.payload.size
            resource_id: $.payload.id
            project_id: $.payload.owner
            user_id: $.payload.no_such_user
            timestamp: $.payload.updated_at
        """)
    [sample] = _samples(conf, plugins, payloads.image())
    assert sample.project_id == payloads.OTHER_PROJECT
    # The path matched nothing: the context's user stays.
    assert sample.user_id == payloads.USER
    # 'Z' becomes +00:00.
    assert sample.timestamp == '2017-09-14T09:21:37+00:00'


def test_metadata_keeps_truthy_values_only(conf, meters_dir, plugins):
    meters_dir('m.yaml', _memory_with("""
            metadata:
              host: $.payload.host
              flavor: $.payload.instance_type
              ephemeral: $.payload.ephemeral_gb
              kernel: $.payload.kernel_id
              missing: $.payload.nothing
        """))
    [sample] = _samples(conf, plugins, payloads.instance())
    assert sample.resource_metadata == {'host': 'compute-01',
                                        'flavor': 'm1.small'}


def test_user_metadata_copies_reserved_keys(conf, meters_dir, plugins):
    conf.set_override('reserved_metadata_keys', ['owner'])
    conf.set_override('reserved_metadata_length', 4)
    meters_dir('m.yaml', _memory_with("""
            user_metadata: $.payload.metadata
            metadata:
              host: $.payload.host
        """))
    [sample] = _samples(conf, plugins, payloads.instance())
    # metering.stack -> stack (cut to 4 characters), metering.server.group
    # -> server_group, owner listed in reserved_metadata_keys.
    assert sample.resource_metadata == {
        'host': 'compute-01',
        'user_metadata': {'stack': 'prod', 'server_group': 'web',
                          'owner': 'ops'}}


def test_user_metadata_that_is_not_a_mapping_is_ignored(conf, meters_dir,
                                                        plugins):
    meters_dir('m.yaml', _memory_with("""
            user_metadata: $.payload.display_name
            metadata:
              host: $.payload.host
        """))
    [sample] = _samples(conf, plugins, payloads.instance())
    assert sample.resource_metadata == {'host': 'compute-01'}


def test_literal_units_that_are_not_jsonpath(conf, meters_dir, plugins):
    meters_dir('m.yaml', """
        metric:
          - name: compute.node.cpu.percent
            event_type: compute.metrics.update
            type: gauge
            unit: '%'
            volume: $.payload.metrics[?(@.name='cpu.percent')].value * 100
            resource_id: $.payload.host + '_' + $.payload.nodename
          - name: transfer.rate
            event_type: compute.metrics.update
            type: gauge
            unit: B/s
            volume: 5
            resource_id: $.payload.host
        """)
    samples = _samples(conf, plugins, payloads.compute_metrics())
    assert [(s.name, s.unit) for s in samples] == [
        ('compute.node.cpu.percent', '%'), ('transfer.rate', 'B/s')]
    # 0.026584955048974804 * 100 = 2.6584955048974804
    assert samples[0].volume == pytest.approx(2.6584955048974804)
    assert samples[1].volume == 5


def test_missing_volume_gives_a_sample_the_pipeline_drops(conf, meters_dir,
                                                          plugins):
    meters_dir('m.yaml', MEMORY)
    notification = payloads.instance()
    del notification['payload']['memory_mb']
    [sample] = _samples(conf, plugins, notification)
    assert sample.volume is None


# -- lookup -------------------------------------------------------------

SWIFT = """
metric:
  - name: $.payload.measurements[*].metric.name
    event_type: objectstore.http.request
    type: delta
    unit: $.payload.measurements[*].metric.unit
    volume: $.payload.measurements[*].result
    resource_id: $.payload.target.id
    user_id: $.payload.initiator.id
    project_id: $.payload.initiator.project_id
    lookup: [name, unit, volume]
    metadata:
      container: $.payload.target.metadata.container
"""


SWIFT_SAMPLES = [('storage.objects.incoming.bytes', 'B', 4096),
                 ('storage.objects.outgoing.bytes', 'B', 0),
                 ('storage.api.request', 'request', 1)]


def _swift_samples(conf, plugins):
    return _samples(conf, plugins, payloads.swift_request(
        incoming=4096, outgoing=0))


def test_lookup_makes_one_sample_per_name(conf, meters_dir, plugins):
    meters_dir('m.yaml', SWIFT)
    samples = _swift_samples(conf, plugins)
    assert [(s.name, s.unit, s.volume) for s in samples] == SWIFT_SAMPLES
    for sample in samples:
        # Single values repeated for every sample.
        assert (sample.resource_id, sample.user_id, sample.project_id,
                sample.type) == (payloads.PROJECT, payloads.USER,
                                 payloads.PROJECT, 'delta')
        assert sample.resource_metadata == {'container': 'backups'}
    # Each sample has its own metadata dict.
    samples[0].resource_metadata['x'] = 1
    assert 'x' not in samples[1].resource_metadata


def test_ceilometers_spelling_of_the_swift_meter_gives_the_same_samples(
        conf, meters_dir, plugins):
    # Ceilometer's packaged meters.yaml writes `.[*].metric.[*].name`:
    # `[*]` of the `metric` mapping is the mapping itself (jsonpath-rw's
    # reading), not its values.
    meters_dir('m.yaml', SWIFT.replace(
        'measurements[*].metric.', 'measurements.[*].metric.[*].').replace(
        'measurements[*].result', 'measurements.[*].result'))
    samples = _swift_samples(conf, plugins)
    assert [(s.name, s.unit, s.volume) for s in samples] == SWIFT_SAMPLES


def test_lookup_with_a_missing_value_makes_no_sample(conf, meters_dir,
                                                     plugins, caplog):
    meters_dir('m.yaml', SWIFT)
    notification = payloads.swift_request()
    del notification['payload']['measurements'][1]['result']
    with caplog.at_level(logging.WARNING):
        samples = _samples(conf, plugins, notification)
    assert samples == []
    assert ('Only 2 fetched meters contain "volume" field instead of 3.'
            in caplog.text)


def test_lookup_without_names_makes_no_sample(conf, meters_dir, plugins):
    meters_dir('m.yaml', SWIFT)
    notification = payloads.swift_request()
    notification['payload']['measurements'] = []
    assert _samples(conf, plugins, notification) == []


def test_lookup_non_lookup_attribute_with_several_values_is_rejected(
        conf, meters_dir, plugins, caplog):
    meters_dir('m.yaml', SWIFT.replace(
        'resource_id: $.payload.target.id',
        'resource_id: $.payload.measurements[0:2].metric.metricId'))
    with caplog.at_level(logging.WARNING):
        assert _samples(conf, plugins, payloads.swift_request()) == []
    assert ('Only 2 fetched meters contain "resource_id" field instead of '
            '3.') in caplog.text


def test_lookup_attribute_present_once_is_not_repeated(conf, meters_dir,
                                                       plugins, caplog):
    meters_dir('m.yaml', SWIFT.replace(
        'unit: $.payload.measurements[*].metric.unit',
        'unit: $.payload.measurements[2].metric.unit'))
    with caplog.at_level(logging.WARNING):
        assert _samples(conf, plugins, payloads.swift_request()) == []
    assert 'Only 1 fetched meters contain "unit" field instead of 3.' in (
        caplog.text)


def test_lookup_none_single_value_is_reported_as_zero(conf, meters_dir,
                                                      plugins, caplog):
    meters_dir('m.yaml', SWIFT.replace(
        'unit: $.payload.measurements[*].metric.unit',
        'unit: $.payload.observer.none'))
    notification = payloads.swift_request()
    notification['payload']['observer']['none'] = None
    with caplog.at_level(logging.WARNING):
        assert _samples(conf, plugins, notification) == []
    assert 'Only 0 fetched meters contain "unit" field instead of 3.' in (
        caplog.text)


def test_lookup_non_lookup_attribute_not_found_keeps_the_default(
        conf, meters_dir, plugins):
    meters_dir('m.yaml', SWIFT.replace(
        'user_id: $.payload.initiator.id', 'user_id: $.payload.nobody'))
    notification = payloads.swift_request()
    notification['ctxt'] = {'user_id': 'ctx-user'}
    samples = _samples(conf, plugins, notification)
    assert [s.user_id for s in samples] == ['ctx-user'] * 3


# -- the handler ----------------------------------------------------------

def test_handler_publishes_each_notification_in_its_context(
        conf, meters_dir, sample_pipelines):
    meters_dir('m.yaml', MEMORY)
    handler = meters.ProcessMeterNotifications(sample_pipelines)
    assert handler.event_types == []
    assert not hasattr(handler, 'filter_rule')
    handler.info([payloads.message(payloads.instance()),
                  payloads.message(payloads.image())])
    handler.sample([payloads.message(payloads.instance_update())])
    handler.error([payloads.message(payloads.instance())])
    assert [s.name for s in published_samples(sample_pipelines)] == [
        'memory', 'memory']


@pytest.mark.parametrize('bad', [
    {'payload': None},
    {'payload': 'text'},
    {'payload': {'memory_mb': 'lots', 'instance_id': 'i'}},
    {'metadata': {}},
    {'metadata': {'timestamp': 'not a date', 'message_id': 'm'}},
    {'event_type': None},
    {'event_type': 42},
])
def test_malformed_notifications_do_not_stop_the_others(
        conf, meters_dir, sample_pipelines, caplog, bad):
    meters_dir('m.yaml', MEMORY)
    handler = meters.ProcessMeterNotifications(sample_pipelines)
    broken = payloads.message(payloads.instance())
    broken.update(bad)
    handler.info([broken, payloads.message(payloads.instance())])
    published = published_samples(sample_pipelines)
    # The good notification always gets through; the broken one either
    # failed (logged, counted) or made a sample the pipeline refused.
    assert [s.volume for s in published] == [2048]
    assert handler.failures in (0, 1)
    if handler.failures:
        assert 'Fail to process notification' in caplog.text
