"""Value definitions (telemeter.declarative.Definition) and their errors."""

from __future__ import annotations

import pytest
from stevedore import extension

from telemeter import declarative
from telemeter import declarative as impl
from telemeter.notification import jsonpath_syntax
from tests.unit.notification import payloads


@pytest.fixture(scope='module')
def plugins():
    return extension.ExtensionManager('telemeter.event.trait_plugin')


def _value(cfg, message, plugins, all_values=False):
    return declarative.Definition('attr', cfg, plugins).parse(
        message, all_values)


def test_public_names_are_the_implementation():
    assert declarative.Definition is impl.Definition
    assert issubclass(declarative.MeterDefinitionException,
                      declarative.DefinitionException)
    assert issubclass(declarative.EventDefinitionException,
                      declarative.DefinitionException)


def test_exception_text_and_brief_message():
    err = declarative.MeterDefinitionException('Bad thing', {'name': 'x'})
    assert str(err) == "MeterDefinitionException {'name': 'x'}: Bad thing"
    assert err.brief_message == 'Bad thing'


@pytest.mark.parametrize('cfg, expected', [
    (7, 7),
    (0, 0),
    ('$.payload.memory_mb', 2048),
    ('payload.memory_mb', 2048),
    ('$.payload.image_meta.base_image_ref', payloads.IMAGE),
    ("$.payload.image_meta.'org.openstack__1__os_distro'", 'ubuntu'),
    # 2048 MB * 1024 = 2097152 KB
    ('$.payload.memory_mb * 1024', 2097152),
    # root 20 GB - ephemeral 0 GB = 20
    ('$.payload.root_gb - $.payload.ephemeral_gb', 20),
    # disk 20 + memory 2048 = 2068
    ('$.payload.disk_gb + $.payload.memory_mb', 2068),
    ("$.payload.host + '_' + $.payload.node",
     'compute-01_compute-01.example.org'),
    ("'vm-' + $.payload.display_name", 'vm-web-1'),
    ('$.publisher_id.`split(., 1, 1)`', 'compute-01.example.org'),
    ('$.publisher_id.`split(., 0, -1)`', 'compute'),
    ('$.payload.fixed_ips[0].address', '10.0.0.7'),
    ('$.payload.fixed_ips[?(@.type=fixed)].vif_mac', 'fa:16:3e:00:00:07'),
    ('$.ctxt.request_id', 'req-6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'),
    ('$.payload.no_such_field', None),
    # A literal such as a unit is a path matching nothing.
    ('MB', None),
])
def test_value_forms_on_a_nova_notification(plugins, cfg, expected):
    message = payloads.message(payloads.instance())
    assert _value(cfg, message, plugins) == expected


def test_filter_selects_one_metric_of_a_compute_monitor_list(plugins):
    message = payloads.message(payloads.compute_metrics())
    cfg = "$.payload.metrics[?(@.name='cpu.frequency')].value"
    assert _value(cfg, message, plugins) == 2400
    # cpu.percent is reported as a fraction: 0.0265... * 100 = 2.658...
    percent = _value(
        "$.payload.metrics[?(@.name='cpu.percent')].value * 100", message,
        plugins)
    assert percent == pytest.approx(2.6584955048974804)


def test_list_of_paths_takes_the_first_non_null_in_list_order(plugins):
    message = payloads.message(payloads.instance())
    cfg = ['$.payload.os_type', '$.payload.architecture',
           '$.payload.hostname']
    # os_type is None in the payload, so architecture wins over hostname.
    assert _value(cfg, message, plugins) == 'x86_64'
    assert _value(['$.payload.hostname', '$.payload.architecture'],
                  message, plugins) == 'web-1'
    assert _value(['$.payload.a', '$.payload.b'], message, plugins) is None


def test_all_values_keep_order_and_nones(plugins):
    message = payloads.message(payloads.swift_request(incoming=5,
                                                      outgoing=0))
    assert _value('$.payload.measurements[*].result', message, plugins,
                  all_values=True) == [5, 0, 1]
    assert _value(3, message, plugins, all_values=True) == [3]
    assert _value(['$.payload.initiator.nope', '$.payload.outcome'],
                  message, plugins, all_values=True) == ['success']
    # First value only (0 is kept: only None is skipped).
    assert _value('$.payload.measurements[1].result', message,
                  plugins) == 0


def test_plugin_post_processes_the_matches(plugins):
    message = payloads.message(payloads.instance())
    # launched 09:31:55.5 - created 09:31:42 = 13.5 s
    cfg = {'fields': ['$.payload.created_at', '$.payload.launched_at'],
           'plugin': 'timedelta'}
    assert _value(cfg, message, plugins) == 13.5
    split = {'fields': '$.publisher_id',
             'plugin': {'name': 'split',
                        'parameters': {'segment': 1, 'max_split': 1}}}
    assert _value(split, message, plugins) == 'compute-01.example.org'


def test_plugins_receive_dotted_paths(plugins):
    seen = []

    class Recorder:
        support_return_all_values = True

        def __init__(self, **kw):
            pass

        def trait_values(self, match_list):
            seen.extend(match_list)
            return [len(match_list)]

    manager = extension.ExtensionManager.make_test_instance(
        [extension.Extension('recorder', None, Recorder, None)])
    message = payloads.message(payloads.volume())
    cfg = {'fields': ['$.payload.size', 'payload.status'],
           'plugin': 'recorder'}
    assert _value(cfg, message, manager) == 2
    assert seen == [('payload.size', 10), ('payload.status', 'available')]


def test_plugins_receive_field_names_unquoted(plugins):
    seen = []

    class Recorder:
        def __init__(self, **kw):
            pass

        def trait_values(self, match_list):
            seen.extend(match_list)
            return [None]

    manager = extension.ExtensionManager.make_test_instance(
        [extension.Extension('recorder', None, Recorder, None)])
    message = payloads.message(payloads.instance())
    cfg = {'fields': ["$.payload.image_meta.'org.openstack__1__os_distro'",
                      '$.payload.fixed_ips[?(@.version=4)].address'],
           'plugin': 'recorder'}
    _value(cfg, message, manager)
    # As jsonpath-rw wrote them (and the bitfield plugin's flags say them),
    # not jsonpath-ng's "payload.image_meta.'org.openstack__1__os_distro'".
    assert seen == [
        ('payload.image_meta.org.openstack__1__os_distro', 'ubuntu'),
        ('payload.fixed_ips.[0].address', '10.0.0.7')]


def test_lists_mixing_plain_and_other_paths(plugins):
    message = payloads.message(payloads.instance())
    compiled = declarative.Definition('attr', [
        '$.payload.os_type',
        "payload.image_meta.'org.openstack__1__os_distro'",
        '$.payload.fixed_ips[*].address'], plugins)
    assert compiled.compiled is not None
    assert compiled.parse(message) == 'ubuntu'
    assert compiled.parse(message, True) == [None, 'ubuntu', '10.0.0.7']
    evaluated = declarative.Definition('attr', [
        '$.payload.missing', '$.payload.memory_mb * 1024',
        '$.payload.vcpus'], plugins)
    assert evaluated.compiled is None
    assert evaluated.parse(message) == 2097152
    assert evaluated.parse(message, True) == [2097152, 1]
    with pytest.raises(declarative.DefinitionException) as info:
        declarative.Definition('attr', ['$.payload.a', '$.payload.['],
                               plugins)
    assert info.value.brief_message.startswith(
        "Parse error in JSONPath specification '$.payload.[' for attr")


def test_syntax_deprecated_by_jsonpath_ng_is_logged_not_raised(caplog):
    # Warnings are errors in these tests: parsing must not let one out.
    caplog.set_level('DEBUG', logger=jsonpath_syntax.__name__)
    definition = declarative.Definition(
        'attr', 'resource_metadata.(no_name|(flavor.id)|flavor_id)', None)
    assert definition.parse({'resource_metadata': {
        'flavor': {'id': 'f1'}, 'flavor_id': 'f2'}}) == 'f1'
    assert 'union) operator is deprecated' in caplog.text


def test_plugin_refusing_all_values_raises(plugins):
    definition = declarative.Definition(
        'volume', {'fields': ['$.payload.a', '$.payload.b'],
                   'plugin': 'timedelta'}, plugins)
    assert not definition.supports_all_values
    with pytest.raises(declarative.DefinitionException,
                       match="don't allows to return multiple values"):
        definition.parse({'payload': {}}, return_all_values=True)


@pytest.mark.parametrize('cfg, message', [
    ({'plugin': 'timedelta'}, "The field 'fields' is required for attr"),
    ({'fields': '$.a', 'plugin': {'parameters': {}}},
     'Plugin specified, but no plugin name supplied for attr'),
    ({'fields': '$.a', 'plugin': ''},
     'Plugin specified, but no plugin name supplied for attr'),
    ({'fields': '$.a', 'plugin': 'nope'},
     'No plugin named nope available for attr'),
    ('$.payload.[', "Parse error in JSONPath specification '$.payload.['"
                    ' for attr'),
    ('$.payload.a +', "Parse error in JSONPath specification"),
    ({'fields': '$.a', 'plugin': {'name': 'map', 'parameters': {}}},
     'Plugin map of attr rejected its parameters'),
    ([], 'must be a non-empty list'),
    (None, 'must be a number, a JSONPath string'),
])
def test_definition_errors(plugins, cfg, message):
    with pytest.raises(declarative.DefinitionException) as info:
        declarative.Definition('attr', cfg, plugins)
    assert message in info.value.brief_message
    assert info.value.definition_cfg == cfg


def test_expressions_are_parsed_once(plugins, monkeypatch):
    calls = []
    real = jsonpath_syntax.parse_tree

    def counting(text):
        calls.append(text)
        return real(text)

    monkeypatch.setattr(jsonpath_syntax, 'parse_tree', counting)
    expression = '$.payload.parsed_once_probe[0]'
    for _ in range(3):
        declarative.Definition('attr', expression, plugins)
    assert calls.count(expression) == 1


def test_yaml_syntax_error_names_file_line_and_column(tmp_path, caplog):
    path = tmp_path / 'bad.yaml'
    path.write_text('metric:\n  - name: a\n    type: [gauge\n')
    with pytest.raises(declarative.DefinitionFileError) as info:
        impl.load_definitions_file(str(path))
    assert f'Invalid YAML syntax in Definitions file {path} at line: ' in (
        str(info.value))
    assert 'Invalid YAML syntax in Definitions file' in caplog.text
    assert 'line: 4, column: 1' in str(info.value)


def test_yaml_files_are_sorted_and_missing_dirs_are_empty(tmp_path):
    for name in ('b.yaml', 'a.yaml', 'notes.txt', 'c.yml'):
        (tmp_path / name).write_text('')
    assert impl.yaml_files(str(tmp_path)) == [
        str(tmp_path / 'a.yaml'), str(tmp_path / 'b.yaml')]
    assert impl.yaml_files(str(tmp_path / 'absent')) == []


@pytest.mark.parametrize('expression', [
    '$.payload.memory_mb', 'payload.memory_mb', 'payload.image_meta',
    '$.payload.image_meta.base_image_ref', 'payload.os_type',
    'payload.fixed_ips', 'payload.fixed_ips.address', 'payload.missing.x',
    'payload.memory_mb.deeper', 'publisher_id', 'ctxt.request_id',
    'metadata.message_id', 'payload.display_name.x', 'nothing',
])
@pytest.mark.parametrize('notification', [
    payloads.instance(), payloads.swift_request(), payloads.volume(),
    {'payload': None}, {'payload': [1, 2]}, {},
])
def test_plain_field_chains_match_like_jsonpath(expression, notification):
    fast = impl.dotted_path(expression)
    assert fast is not None
    reference = jsonpath_syntax.parse_tree(expression)
    message = payloads.message(notification) if 'priority' in (
        notification) else notification
    assert [(m.full_path, m.value) for m in fast.find(message)] == [
        (str(m.full_path), m.value) for m in reference.find(message)]


@pytest.mark.parametrize('expression', [
    '$.payload.a * 2', "$.payload.x + '_'", 'payload[0]', 'payload.*',
    '$..memory_mb', 'payload.where', 'payload.true', '`this`', 'a.`len`',
    "payload.'quoted.key'", '$.payload.metrics[?(@.name=cpu)].value',
])
def test_other_expressions_go_through_jsonpath(expression):
    assert impl.dotted_path(expression) is None
