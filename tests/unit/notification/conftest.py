"""Fixtures of the notification agent tests."""

from __future__ import annotations

import textwrap

import pytest

from telemeter import pipeline

SAMPLE_PIPELINE = """
sources: [{name: s, meters: ["*"], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]
"""

#: Meter definitions: ``memory`` from nova's instance create notifications.
MEMORY_METER = """
metric:
  - name: memory
    event_type: compute.instance.create.end
    type: gauge
    unit: MiB
    volume: $.payload.memory_mb
    resource_id: $.payload.instance_id
"""

EVENT_PIPELINE = """
sources: [{name: s, events: ["*"], sinks: [k]}]
sinks: [{name: k, publishers: [test://]}]
"""


@pytest.fixture
def meters_dir(conf, tmp_path):
    """Only the given meter definitions: ``write(name, yaml)`` adds a file
    to a fresh directory that is the sole ``meter_definitions_dirs``."""
    directory = tmp_path / 'meters.d'
    directory.mkdir()
    conf.set_override('meter_definitions_dirs', [str(directory)],
                      group='meter')

    def write(name: str, text: str) -> str:
        path = directory / name
        path.write_text(textwrap.dedent(text))
        return str(path)
    return write


@pytest.fixture
def sample_pipelines(conf, write_yaml):
    """A pipeline manager publishing every sample to ``test://``."""
    conf.set_override('pipeline_cfg_file',
                      write_yaml('pipeline.yaml', SAMPLE_PIPELINE))
    return pipeline.setup_pipeline(conf)


@pytest.fixture
def event_pipelines(conf, write_yaml):
    """An event pipeline manager publishing every event to ``test://``."""
    conf.set_override('event_pipeline_cfg_file',
                      write_yaml('event_pipeline.yaml', EVENT_PIPELINE))
    return pipeline.setup_event_pipeline(conf)


def published_samples(manager):
    return manager.pipelines[0].sink.publishers[0].samples


def published_events(manager):
    return manager.pipelines[0].sink.publishers[0].events
