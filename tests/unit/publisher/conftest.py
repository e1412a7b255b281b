"""Publisher unit-test fixtures."""

import pytest

from tests.unit.publisher import helpers


@pytest.fixture
def make(conf, fake_transport_url):
    """Build publishers from URLs (the bus is the in-process fake) and
    close them after the test."""
    built = []

    def _make(url, namespace='telemeter.sample.publisher'):
        publisher = helpers.build(conf, url, namespace)
        built.append(publisher)
        return publisher
    yield _make
    for publisher in built:
        publisher.close()
