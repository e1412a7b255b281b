"""Sample and event pipeline loading and publishing (pipeline.md)."""

import logging

import pytest

from telemeter import pipeline, sample
from telemeter.pipeline import base

PIPELINE = """
sources:
  - name: everything
    meters: ["*", "!secret.*"]
    sinks: [to_test]
  - name: cpu
    meters: [cpu]
    sinks: [to_test, cpu]
sinks:
  - name: to_test
    publishers: [test://]
  - name: cpu
    publishers: ["test://", "test://?other"]
"""


def _sample(name='cpu', volume=1.0, **kwargs):
    return sample.Sample(name, 'gauge', 'u', volume, 'user', 'project', 'r',
                         timestamp='2031-01-01T00:00:00', **kwargs)


@pytest.fixture
def manager(conf, write_yaml):
    conf.set_override('pipeline_cfg_file',
                      write_yaml('pipeline.yaml', PIPELINE))
    return pipeline.setup_pipeline(conf)


def test_pipelines_are_named_and_ordered(manager):
    assert [str(p) for p in manager.pipelines] == [
        'everything:to_test', 'cpu:to_test', 'cpu']


def test_one_publisher_instance_per_distinct_url(manager):
    everything, cpu_to_test, cpu = manager.pipelines
    assert everything.sink is cpu_to_test.sink
    assert cpu.sink.publishers[0] is everything.sink.publishers[0]
    assert cpu.sink.publishers[1] is not cpu.sink.publishers[0]


def test_publish_context_routes_by_meter(manager):
    with manager.publisher() as publish:
        publish([_sample('cpu'), _sample('memory'), _sample('secret.x')])
    shared = manager.pipelines[0].sink.publishers[0]
    other = manager.pipelines[2].sink.publishers[1]
    # everything:to_test takes cpu and memory, cpu:to_test cpu again, and
    # the cpu sink sends cpu to the shared test:// publisher a third time.
    assert [s.name for s in shared.samples] == ['cpu', 'memory', 'cpu',
                                                'cpu']
    assert [s.name for s in other.samples] == ['cpu']


def test_single_sample_is_accepted(manager):
    with manager.publisher() as publish:
        publish(_sample('memory'))
    assert len(manager.pipelines[0].sink.publishers[0].samples) == 1


@pytest.mark.parametrize('volume, reason', [
    (None, 'has no volume (volume: None)'),
    ('abc', 'has volume which is not a number (volume: abc)'),
    ([1], 'has volume which is not a number (volume: [1])'),
])
def test_invalid_volumes_are_dropped_with_a_warning(manager, caplog, volume,
                                                    reason):
    with caplog.at_level(logging.WARNING), manager.publisher() as publish:
        publish([_sample('memory', volume), _sample('memory', '2.5')])
    kept = manager.pipelines[0].sink.publishers[0].samples
    assert [s.volume for s in kept] == ['2.5']
    assert (f'metering data memory for r @ 2031-01-01T00:00:00 {reason}, '
            'the sample will be dropped') in caplog.text


def test_publisher_error_is_logged_and_other_publishers_run(manager,
                                                            caplog):
    cpu = manager.pipelines[2]
    first = cpu.sink.publishers[0]

    def boom(samples):
        raise RuntimeError('down')
    first.publish_samples = boom
    with pytest.raises(pipeline.PublishError, match='down'):
        with manager.publisher() as publish:
            publish([_sample('cpu')])
    # The other publisher took the sample all the same; the error is
    # raised once the context is left, so the source can be requeued.
    assert len(cpu.sink.publishers[1].samples) == 1
    assert 'Pipeline cpu: Continue after error from publisher' in caplog.text


def test_unloadable_publisher_is_skipped(conf, write_yaml, caplog):
    conf.set_override('pipeline_cfg_file', write_yaml('p.yaml', """
sources: [{name: s, meters: ["*"], sinks: [k]}]
sinks: [{name: k, publishers: ["nosuchscheme://", "test"]}]
"""))
    manager = pipeline.setup_pipeline(conf)
    assert len(manager.pipelines[0].sink.publishers) == 1
    assert 'Unable to load publisher nosuchscheme://' in caplog.text


@pytest.mark.parametrize('text, message', [
    ('sources: []', 'Both sources & sinks are required'),
    ("""
sources: [{name: a, meters: ["*"], sinks: [k]},
          {name: a, meters: ["*"], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]""", 'Duplicated source names: a'),
    ("""
sources: [{meters: ["*"], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]""",
     'Required field name not specified'),
    ("""
sources: [{name: a, meters: ["*"]}]
sinks: [{name: k, publishers: [test://]}]""",
     'Required field sinks not specified'),
    ("""
sources: [{name: a, sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]""", 'Missing meters value'),
    ("""
sources: [{name: a, meters: [cpu, "!x"], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]""",
     'Both included and excluded meters specified'),
    ("""
sources: [{name: a, meters: ["*", cpu], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]""",
     'Included meters specified with wildcard'),
    ("""
sources: [{name: a, meters: ["*"], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}, {name: k, publishers: [test://]}]
""", 'Duplicated sink names: k'),
    ("""
sources: [{name: a, meters: ["*"], sinks: [k]}]
sinks: [{name: k}]""", 'No publisher specified'),
    ("""
sources: [{name: a, meters: ["*"], sinks: [k]}]
sinks: [{name: k, publishers: [test://],
         transformers: [{name: nosuch}]}]""",
     'No transformer named nosuch loaded'),
    ("""
sources: [{name: a, meters: ["*"], sinks: []}]
sinks: [{name: k, publishers: [test://]}]""", 'No sink defined in source a'),
    ("""
sources: [{name: a, meters: ["*"], sinks: [other]}]
sinks: [{name: k, publishers: [test://]}]""",
     'Dangling sink other from source a'),
    ("""
sources: [{name: a, meters: ["*"], sinks: [b]},
          {name: "a:b", meters: ["*"], sinks: ["a:b"]}]
sinks: [{name: b, publishers: [test://]},
        {name: "a:b", publishers: [test://]}]""",
     'Duplicate pipeline name: a:b.'),
])
def test_validation_errors_name_the_file(conf, write_yaml, text, message):
    path = write_yaml('bad.yaml', text)
    conf.set_override('pipeline_cfg_file', path)
    with pytest.raises(base.PipelineException) as info:
        pipeline.setup_pipeline(conf)
    assert message in info.value.msg
    assert str(info.value).startswith(f'{path}: Pipeline ')


def test_yaml_syntax_error_names_file_and_line(conf, write_yaml):
    path = write_yaml('broken.yaml', 'sources:\n  - name: [a\n')
    conf.set_override('pipeline_cfg_file', path)
    with pytest.raises(ValueError, match=f'{path} at line 3'):
        pipeline.setup_pipeline(conf)


def test_packaged_files_are_used_when_nothing_else_exists(conf):
    conf.set_override('pipeline_cfg_file', 'pipeline.yaml')
    manager = pipeline.setup_pipeline(conf)
    assert manager.cfg_file.endswith('telemeter/pipeline/data/pipeline.yaml')
    assert [str(p) for p in manager.pipelines] == [
        'meter_source:meter_sink', 'cpu_source:cpu_sink',
        'cpu_source:cpu_delta_sink', 'disk_source:disk_sink',
        'network_source:network_sink']
    events = pipeline.setup_event_pipeline(conf)
    assert [str(p) for p in events.pipelines] == [
        'event:event_source:event_sink']


def test_event_pipeline_filters_event_types(conf, write_yaml):
    conf.set_override('event_pipeline_cfg_file', write_yaml('e.yaml', """
sources: [{name: s, events: ["compute.*"], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]
"""))
    manager = pipeline.setup_event_pipeline(conf)

    class Event:
        def __init__(self, event_type):
            self.event_type = event_type

    with manager.publisher() as publish:
        publish([Event('compute.instance.create'), Event('image.update')])
    published = manager.pipelines[0].sink.publishers[0].events
    assert [e.event_type for e in published] == ['compute.instance.create']


TRANSFORMING = """
sources: [{name: s, meters: ["*"], sinks: [k]}]
sinks:
  - name: k
    transformers:
      - name: accumulator
        parameters: {size: 2}
      - name: unit_conversion
        parameters: {target: {scale: "volume * 10"}}
    publishers: [test://]
"""


def test_flush_feeds_each_transformer_into_the_next(conf, write_yaml):
    conf.set_override('pipeline_cfg_file', write_yaml('t.yaml', TRANSFORMING))
    manager = pipeline.setup_pipeline(conf)
    published = manager.pipelines[0].sink.publishers[0].samples
    with manager.publisher() as publish:
        publish([_sample('a', 1.0)])
    assert published == []  # the accumulator holds one sample
    with manager.publisher() as publish:
        publish([_sample('b', 2.0)])
    # released by the accumulator's flush, then scaled: 1*10, 2*10
    assert [(s.name, s.volume) for s in published] == [('a', 10.0),
                                                       ('b', 20.0)]


def test_transformer_error_drops_only_that_sample(conf, write_yaml, caplog):
    conf.set_override('pipeline_cfg_file', write_yaml('t.yaml', """
sources: [{name: s, meters: ["*"], sinks: [k]}]
sinks:
  - name: k
    transformers:
      - name: unit_conversion
        parameters: {target: {scale: "volume * resource_metadata.factor"}}
    publishers: [test://]
"""))
    manager = pipeline.setup_pipeline(conf)
    with manager.publisher() as publish:
        publish([_sample('bad', 1.0),
                 _sample('good', 2.0, resource_metadata={'factor': 3})])
    published = manager.pipelines[0].sink.publishers[0].samples
    # 'bad' multiplies by an empty Namespace and fails; 'good': 2 * 3 = 6
    assert [(s.name, s.volume) for s in published] == [('good', 6.0)]
    assert 'Pipeline k: Exit after error from transformer' in caplog.text


@pytest.mark.parametrize('parameters, message', [
    ('{target: {scale: "__import__(\'os\').getcwd()"}}', 'calling '
     '__import__'),
    ('{target: {scale: "volume.__class__"}}', "attribute '__class__'"),
    ('{target: {scale: "volume +"}}', 'invalid expression'),
    ('{target: {scale: [1]}}', 'target.scale must be a number or an '
     'expression'),
    ('{target: {max: "100"}}', 'target.max must be a number'),
])
def test_unsafe_or_broken_expressions_refused_at_load(conf, write_yaml,
                                                      parameters, message):
    conf.set_override('pipeline_cfg_file', write_yaml('t.yaml', f"""
sources: [{{name: s, meters: ["*"], sinks: [the_sink]}}]
sinks:
  - name: the_sink
    transformers: [{{name: unit_conversion, parameters: {parameters}}}]
    publishers: [test://]
"""))
    with pytest.raises(base.PipelineException) as info:
        pipeline.setup_pipeline(conf)
    text = str(info.value)
    assert 'Sink the_sink: invalid parameters for transformer ' \
        'unit_conversion' in text
    assert message in text


def test_arithmetic_expression_refused_at_load(conf, write_yaml):
    conf.set_override('pipeline_cfg_file', write_yaml('t.yaml', """
sources: [{name: s, meters: ["*"], sinks: [k]}]
sinks:
  - name: k
    transformers:
      - name: arithmetic
        parameters: {target: {expr: "$(memory) + open('x')"}}
    publishers: [test://]
"""))
    with pytest.raises(base.PipelineException, match='calling open'):
        pipeline.setup_pipeline(conf)


def test_sinks_shared_by_sources_share_transformer_state(conf, write_yaml):
    conf.set_override('pipeline_cfg_file', write_yaml('t.yaml', """
sources:
  - {name: one, meters: [a], sinks: [k]}
  - {name: two, meters: [b], sinks: [k]}
sinks:
  - name: k
    transformers: [{name: rate_of_change}]
    publishers: [test://]
"""))
    manager = pipeline.setup_pipeline(conf)
    first, second = manager.pipelines
    assert first.sink.transformers[0] is second.sink.transformers[0]
    assert pipeline.get_pipeline_grouping_key(first) == ['resource_id']


@pytest.mark.parametrize('events, message', [
    ('[]', 'No events specified'),
    ('["compute.*", "!image.*"]', 'Both included and excluded events '
     'specified'),
    ('["*", "compute.*"]', 'Included events specified with wildcard'),
])
def test_event_match_list_errors(conf, write_yaml, events, message):
    conf.set_override('event_pipeline_cfg_file', write_yaml('e.yaml', f"""
sources: [{{name: s, events: {events}, sinks: [k]}}]
sinks: [{{name: k, publishers: [test://]}}]
"""))
    with pytest.raises(base.PipelineException, match=message):
        pipeline.setup_event_pipeline(conf)


def test_empty_meter_list_is_refused(conf, write_yaml):
    conf.set_override('pipeline_cfg_file', write_yaml('p.yaml', """
sources: [{name: s, meters: [], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]
"""))
    with pytest.raises(base.PipelineException, match='No meters specified'):
        pipeline.setup_pipeline(conf)


class _Event:
    event_type = 'compute.instance.update'


def _event_manager(conf, write_yaml, publishers):
    conf.set_override('event_pipeline_cfg_file', write_yaml('e.yaml', f"""
sources: [{{name: s, events: ["*"], sinks: [k]}}]
sinks: [{{name: k, publishers: {publishers}}}]
"""))
    return pipeline.setup_event_pipeline(conf)


def _break(publisher):
    def publish_events(events):
        raise RuntimeError('receiver down')
    publisher.publish_events = publish_events


def test_event_sink_with_one_publisher_reraises(conf, write_yaml, caplog):
    manager = _event_manager(conf, write_yaml, '["test://"]')
    _break(manager.pipelines[0].sink.publishers[0])
    with pytest.raises(RuntimeError), manager.publisher() as publish:
        publish([_Event()])
    assert 'Pipeline k: Exit after error from publisher' in caplog.text


def test_event_sink_with_several_publishers_continues(conf, write_yaml,
                                                      caplog):
    manager = _event_manager(conf, write_yaml,
                             '["test://", "test://?second"]')
    first, second = manager.pipelines[0].sink.publishers
    _break(first)
    with manager.publisher() as publish:
        publish([_Event()])
    assert len(second.events) == 1
    assert 'Pipeline k: Continue after error from publisher' in caplog.text
