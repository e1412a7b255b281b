"""tools/bench/e2e/packaged.py: what the bench copies from the polling
agent and counts on in the packaged pipeline."""

from __future__ import annotations

from pathlib import Path

import yaml

from telemeter.polling import manager as manager_mod
from tools.bench.e2e import packaged

REPO = Path(__file__).resolve().parents[3]
PIPELINE_DATA = REPO / 'telemeter' / 'pipeline' / 'data'


def test_envelope_is_the_polling_agents():
    assert packaged.POLLING_PUBLISHER_ID == manager_mod.PUBLISHER_ID
    assert packaged.POLLING_EVENT_TYPE == manager_mod.EVENT_TYPE
    assert packaged.POLLING_BATCH == 50


def test_meters_are_packaged_polling_meters():
    polling = yaml.safe_load((PIPELINE_DATA / 'polling.yaml').read_text())
    polled = {m for source in polling['sources'] for m in source['meters']}
    assert {m[0] for m in packaged.POLLED_METERS} <= polled


def test_derived_counts_follow_the_packaged_pipeline():
    pipeline = yaml.safe_load((PIPELINE_DATA / 'pipeline.yaml').read_text())
    transforming = {s['name'] for s in pipeline['sinks']
                    if s.get('transformers')}
    for meter, *_ in packaged.POLLED_METERS:
        sinks = [sink for source in pipeline['sources']
                 if meter in source['meters']
                 for sink in source['sinks'] if sink in transforming]
        assert packaged.DERIVED_PER_SAMPLE.get(meter, 0) == len(sinks), meter


def test_derived_meter_names():
    assert packaged.is_derived_meter('cpu_util')
    assert packaged.is_derived_meter('cpu.delta')
    assert packaged.is_derived_meter('network.incoming.bytes.rate')
    assert not packaged.is_derived_meter('cpu')
