"""Compiled JSONPath accessors give exactly what the parsed tree gives."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemeter import declarative
from telemeter.notification import accessors, jsonpath_syntax

DOCUMENTS = [
    {'payload': {'a': 1, 'b': None, 'image_meta': {
        'org.openstack__1__os': 'ubuntu', 'min_disk': '20'},
        'attachments': [{'server_id': 's1'}, {'server_id': 's2'}],
        'metrics': [{'name': 'cpu', 'value': 3}, {'name': 'mem'}],
        'text': 'x', 'number': 7, 'empty': []},
     'publisher_id': 'compute.host-1.example', 'event_type': 'a.b'},
    {'payload': {'attachments': [], 'metrics': {'name': 'solo'},
                 'image_meta': 'not a mapping'},
     'publisher_id': 'nodots'},
    {'payload': ['a', 'list'], 'publisher_id': 12},
    {'payload': {'attachments': 'string', 'metrics': 'abc'}},
    {},
]

EXPRESSIONS = [
    '$', '$.payload', 'payload.a', '$.payload.b', 'payload.missing',
    "payload.image_meta.'org.openstack__1__os'",
    'payload.attachments[0].server_id', 'payload.attachments[1]',
    'payload.attachments[5].server_id', '$.payload.metrics.[*].name',
    '$.payload.metrics[*].value', 'payload.a,b',
    'payload.text.`split(x, 0, 1)`',
    'publisher_id.`split(., 0, -1)`', 'publisher_id.`split(., 1, 1)`',
    'publisher_id.`split(., 5, -1)`', '(payload.missing)|(payload.a)',
    '(payload.b)|(payload.a)|(event_type)',
    'payload.*', 'payload.text[*]', 'payload.number[*]', 'payload[*].a',
    # Also compiled with jsonpath-ng: negative and several indices, `*`
    # segments, negative segments and longer separators of `split`.
    'payload.attachments[-1].server_id', 'payload.attachments[0,1]',
    'payload.metrics[-3]', 'payload.metrics[*].*', '$.*',
    'publisher_id.`split(., -1, -1)`', 'publisher_id.`split(., *, 1)`',
    'publisher_id.`split(-1., 0, -1)`', 'payload.number.`split(., 0, -1)`',
]


def _reference(expression, document):
    """What the parse tree finds, uncompiled."""
    tree = jsonpath_syntax.parse_tree(expression)
    try:
        return [match.value for match in tree.find(document)]
    except Exception as err:  # the compiled form must fail alike
        return type(err)


@pytest.mark.parametrize('expression', EXPRESSIONS)
@pytest.mark.parametrize('document', range(len(DOCUMENTS)))
def test_compiled_values_equal_jsonpath(expression, document):
    document = DOCUMENTS[document]
    compiled = accessors.compile_values(
        jsonpath_syntax.parse_tree(expression))
    assert compiled is not None, expression
    expected = _reference(expression, document)
    if isinstance(expected, type):
        with pytest.raises(expected):
            compiled(document)
    else:
        assert compiled(document) == expected



# What jsonpath-rw(-ext), Ceilometer's JSONPath, finds: `[*]` of a mapping,
# string or integer is that value, `*` of a mapping its values.
CEILOMETER_READING = [
    ('$.payload.metrics[*].name', 1, ['solo']),
    ('$.payload.metrics[*].name', 0, ['cpu', 'mem']),
    ('payload.metrics[*]', 3, ['abc']),
    ('payload.image_meta[*]', 0, [DOCUMENTS[0]['payload']['image_meta']]),
    ('payload.number[*]', 0, [7]),
    ('payload.image_meta.*', 0, ['ubuntu', '20']),
    ('$.payload.attachments[*].server_id', 0, ['s1', 's2']),
]


@pytest.mark.parametrize('expression,document,expected', CEILOMETER_READING)
def test_every_item_is_read_as_ceilometer_reads_it(expression, document,
                                                   expected):
    tree = jsonpath_syntax.parse_tree(expression)
    assert [match.value for match in tree.find(DOCUMENTS[document])] == (
        expected)
    assert accessors.compile_values(tree)(DOCUMENTS[document]) == expected


def test_every_item_match_paths_are_jsonpath_rws():
    tree = jsonpath_syntax.parse_tree('$.payload.metrics.[*].name')
    assert [jsonpath_syntax.path_text(match.full_path)
            for match in tree.find(DOCUMENTS[1])] == [
        'payload.metrics.[0].name']


def test_a_quoted_star_stays_a_field_name():
    tree = jsonpath_syntax.parse_tree("payload.'[*]'")
    assert [m.value for m in tree.find({'payload': {'[*]': 1}})] == [1]

@pytest.mark.parametrize('expression', [
    "$.payload.metrics[?(@.name='cpu')].value",
    '$.payload.a * 100',
    '$.payload.host + "_" + $.payload.nodename',
    'payload.glance_metadata[?key=image_id].value',
    '$.payload.metrics[0:1]',
    '$..name',
])
def test_what_is_not_compiled_is_left_to_jsonpath(expression):
    assert accessors.compile_values(
        jsonpath_syntax.parse_tree(expression)) is None


def test_definitions_use_the_compiled_form_and_keep_their_results():
    definition = declarative.Definition(
        'os', {'fields': "payload.image_meta.'org.openstack__1__os'"}, {})
    assert definition.compiled is not None
    assert definition.parse(DOCUMENTS[0]) == 'ubuntu'
    assert definition.parse(DOCUMENTS[1]) is None
    assert definition.parse(DOCUMENTS[0], return_all_values=True) == [
        'ubuntu']


def test_first_value_skips_none():
    first = accessors.first_value(accessors.compile_values(
        jsonpath_syntax.parse_tree('(payload.b)|(payload.a)')))
    assert first(DOCUMENTS[0]) == 1
    assert first({}) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(['a', 'b', 'c']), children, max_size=3),
    max_leaves=10)


@given(obj=json_values,
       fields=st.lists(st.sampled_from(['a', 'b', 'c']), min_size=1,
                       max_size=5))
def test_chain_getter_is_the_dotted_path(obj, fields):
    path = declarative._DottedPath(fields)
    value = path.get(obj)
    expected = None if value is declarative._MISSING else value
    assert path.first(obj) == expected
