"""Fixtures of the polling agent tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator

import oslo_messaging
import pytest
from oslo_config import cfg
from oslo_messaging._drivers import impl_fake

from telemeter import messaging, service


@pytest.fixture
def conf() -> Iterator[cfg.ConfigOpts]:
    conf = service.prepare_service(argv=[], config_files=[],
                                   conf=cfg.ConfigOpts())
    conf.set_override('transport_url', 'fake://')
    conf.set_override('heartbeat_timeout_threshold', 0,
                      group='oslo_messaging_rabbit')
    yield conf
    messaging.cleanup()
    # The fake driver keeps its exchanges in a class attribute.
    impl_fake.FakeExchangeManager.cleanup()


@pytest.fixture
def polling_file(conf: cfg.ConfigOpts, tmp_path) -> Callable[[str], str]:
    """Write a polling.yaml and make it ``[polling] cfg_file``."""

    def write(content: str, name: str = 'polling.yaml') -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(content))
        conf.set_override('cfg_file', str(path), group='polling')
        return str(path)

    return write


@pytest.fixture
def fake_transport(conf: cfg.ConfigOpts
                   ) -> Iterator[oslo_messaging.Transport]:
    transport = oslo_messaging.get_notification_transport(conf, 'fake://')
    yield transport
    transport.cleanup()
