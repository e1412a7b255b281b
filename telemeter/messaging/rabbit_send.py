"""Sending notifications on oslo.messaging's RabbitMQ driver, fast.

The listening side is :mod:`.rabbit`; this is what the ``notifier://``
publisher (through :func:`telemeter.messaging.send_notification`) uses.
"""

from __future__ import annotations

import uuid
from typing import Any

from oslo_messaging._drivers import common as rpc_common

from telemeter.messaging import envelope


def notify(transport: Any, target: Any, message: dict[str, Any],
           retry: int | None = None) -> None:
    """Send ``message`` (a notification dict with ``priority``) to
    ``<target.topic>`` as oslo.messaging's ``messagingv2`` driver does.

    The driver's connection declares the exchange and the default queue,
    publishes with a broker confirm and retries as configured; only the
    inner JSON is written here, by :func:`.envelope.dumps`, where
    oslo.messaging's encoder costs ~7 µs per sample of a payload. Raises
    ``MessageDeliveryFailure`` as the Notifier's transport does.
    """
    driver = transport._driver
    message = dict(message, _unique_id=uuid.uuid4().hex)
    body = envelope.wrap(message)
    with driver._get_connection(rpc_common.PURPOSE_SEND, retry) as conn:
        conn.notify_send(driver._get_exchange(target), target.topic, body,
                         retry=retry)
