"""Fixtures shared by the unit tests."""

import oslo_messaging
import pytest
from oslo_config import cfg

from telemeter import messaging, service


@pytest.fixture
def conf(tmp_path):
    """A fully registered ConfigOpts that reads no config file."""
    conf = service.prepare_service(argv=['telemeter-test'], config_files=[],
                                   conf=cfg.ConfigOpts())
    conf.set_override('heartbeat_timeout_threshold', 0,
                      group='oslo_messaging_rabbit')
    yield conf
    conf.reset()


@pytest.fixture
def fake_transport_url(conf):
    """Route every transport of ``conf`` to the in-process fake driver."""
    conf.set_override('transport_url', 'fake://')
    # A transport an earlier test left in the cache (under the default
    # URL's key) would be the one this test gets.
    messaging.cleanup()
    yield 'fake://'
    messaging.cleanup()
    # The fake driver keeps its queues in a class attribute: empty them so
    # the next test starts clean.
    from oslo_messaging._drivers import impl_fake
    impl_fake.FakeExchangeManager.cleanup()


@pytest.fixture
def write_yaml(tmp_path):
    """Write a YAML string into the test's directory, return its path."""
    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return _write


def notification_listener(transport, topic, exchange=None):
    """Collects raw notification dicts sent to ``topic``."""
    received = []

    class Endpoint:
        def sample(self, messages):
            received.extend(messages)

        def info(self, messages):
            received.extend(messages)

    listener = messaging.get_batch_notification_listener(
        transport, [oslo_messaging.Target(topic=topic, exchange=exchange)],
        [Endpoint()], batch_size=1, batch_timeout=0.1)
    return listener, received
