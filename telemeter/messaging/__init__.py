"""oslo.messaging plumbing shared by the three daemons.

Transports are cached per URL inside a process so that every listener and
notifier of a worker shares one connection pool. Batch listeners on the
RabbitMQ driver are :class:`~telemeter.messaging.rabbit.RabbitBatchListener`
(same queues, options and endpoint contract, a fraction of the CPU per
message); other drivers get oslo.messaging's own batch listener.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_messaging.serializer import NoOpSerializer
from oslo_utils import timeutils

from telemeter.messaging import delivery, rabbit, rabbit_send

DEFAULT_URL = '__default__'
TRANSPORTS: dict[str, oslo_messaging.Transport] = {}
#: Notifier drivers that put notifications on the transport, and the
#: message format each writes; :func:`send_notification` serves them.
WIRE_VERSIONS = {'messagingv2': 2.0, 'messaging': 1.0}


def setup() -> None:
    """Set telemeter's defaults of oslo.messaging's options.

    - ``telemeter`` is the control exchange of every transport;
    - ``[oslo_messaging_rabbit] amqp_durable_queues = true``: the queues and
      exchanges telemeter declares survive a broker restart, and so do the
      (persistent) messages in them. The services that send notifications
      must be set the same way (README, "Delivery");
    - ``[oslo_messaging_rabbit] rabbit_qos_prefetch_count = 100`` as
      Ceilometer has it (unlimited otherwise); the listeners raise it to
      their batch size.

    Also the ``oslo.config.opts.defaults`` hook of ``oslo-config-generator``,
    so the sample configuration shows these defaults.
    """
    from oslo_messaging._drivers import amqp, impl_rabbit

    oslo_messaging.set_transport_defaults('telemeter')
    cfg.set_defaults(amqp.amqp_opts, amqp_durable_queues=True)
    cfg.set_defaults(impl_rabbit.rabbit_opts, rabbit_qos_prefetch_count=100)


def get_transport(conf: cfg.ConfigOpts, url: str | None = None,
                  optional: bool = False, cache: bool = True
                  ) -> oslo_messaging.Transport | None:
    """Return the notification transport for ``url`` (default: main one).

    With ``optional`` a URL that cannot be loaded gives None instead of an
    exception, which lets the collector run UDP-only.
    """
    cache_key = url or DEFAULT_URL
    transport = TRANSPORTS.get(cache_key)
    if not transport or not cache:
        try:
            transport = oslo_messaging.get_notification_transport(
                conf, url, allowed_remote_exmods=None)
        except (oslo_messaging.InvalidTransportURL,
                oslo_messaging.DriverLoadFailure):
            if not optional or url:
                # A URL given explicitly must work.
                raise
            return None
        if cache:
            TRANSPORTS[cache_key] = transport
    return transport


def cleanup() -> None:
    """Close every cached transport."""
    for url, transport in list(TRANSPORTS.items()):
        transport.cleanup()
        del TRANSPORTS[url]


def get_batch_notification_listener(transport: oslo_messaging.Transport,
                                    targets: list[oslo_messaging.Target],
                                    endpoints: list[Any],
                                    allow_requeue: bool = False,
                                    batch_size: int = 1,
                                    batch_timeout: float | None = None,
                                    batch_bytes: int = 0) -> Any:
    """A batch listener that hands raw notification dicts to the endpoints.

    With ``allow_requeue`` on RabbitMQ this is the project's own batch
    consumer (see :mod:`telemeter.messaging.rabbit`); otherwise
    oslo.messaging's threading batch listener. Both follow the same
    endpoint contract; ``batch_bytes`` (a bound on a batch's body bytes,
    0 for none) applies to the former only.
    """
    if allow_requeue and rabbit.supports(transport):
        return rabbit.RabbitBatchListener(
            transport, targets, endpoints, batch_size=batch_size,
            batch_timeout=batch_timeout, batch_bytes=batch_bytes,
            policy=delivery.DeliveryPolicy.from_conf(transport.conf))
    return oslo_messaging.get_batch_notification_listener(
        transport, targets, endpoints, executor='threading',
        allow_requeue=allow_requeue, batch_size=batch_size,
        batch_timeout=batch_timeout, serializer=NoOpSerializer())


def sample_notification(publisher_id: str, event_type: str,
                        payload: Sequence[Any]) -> dict[str, Any]:
    """A ``sample``-priority notification dict, as oslo.messaging's
    Notifier builds it, for :func:`send_notification`."""
    return {'message_id': str(uuid.uuid4()),
            'publisher_id': publisher_id,
            'event_type': event_type,
            'priority': 'SAMPLE',
            'payload': payload,
            'timestamp': str(timeutils.utcnow())}


def send_notification(transport: oslo_messaging.Transport,
                      target: oslo_messaging.Target, message: dict,
                      version: float = 2.0, retry: int | None = None
                      ) -> None:
    """Put one notification dict (``priority``, ``payload``, ...) on the
    bus as a ``messagingv2`` (2.0) or ``messaging`` (1.0) Notifier would.

    Unlike the Notifier, a failure raises ``MessageDeliveryFailure``.
    """
    if version == 2.0 and rabbit.supports(transport):
        rabbit_send.notify(transport, target, message, retry=retry)
        return
    transport._send_notification(target, {}, message, version=version,
                                 retry=retry)


def send_sample(transport: oslo_messaging.Transport, topics: Sequence[str],
                publisher_id: str, event_type: str, payload: Sequence[Any],
                *, driver: str,
                notifier: Callable[[], oslo_messaging.Notifier],
                retry: int | None = None) -> None:
    """Send ``payload`` as one ``sample``-priority notification to
    ``<topic>.sample`` of every topic, as a Notifier of ``driver`` would.

    A driver that writes to the bus (:data:`WIRE_VERSIONS`) goes through
    :func:`send_notification`, so a failure raises
    ``MessageDeliveryFailure`` (no topic after the one that failed is
    tried). The others (``noop``, ``log``, ...) put nothing on the bus:
    the notification goes through ``notifier()``, with its own topics,
    and never fails; it is only asked for then.
    """
    version = WIRE_VERSIONS.get(driver)
    if version is None:
        notifier().sample({}, event_type=event_type, payload=payload)
        return
    message = sample_notification(publisher_id, event_type, payload)
    for topic in topics:
        send_notification(
            transport, oslo_messaging.Target(topic=f'{topic}.sample'),
            message, version=version, retry=retry)


def consuming(listener: Any) -> threading.Event:
    """An event set once ``listener`` (started) consumes from the broker.

    The project's RabbitMQ listener sets it when the broker has accepted
    its consumers; oslo.messaging's listeners give no such signal and are
    taken as consuming once started.
    """
    event = getattr(listener, 'consuming', None)
    if isinstance(event, threading.Event):
        return event
    event = threading.Event()
    event.set()
    return event


def stop_listeners(listeners: list[Any]) -> None:
    """Stop consuming on every listener, then wait for the batches in
    flight (their messages are acknowledged only once handled)."""
    for listener in listeners:
        listener.stop()
    for listener in listeners:
        listener.wait()


def get_notifier(transport: oslo_messaging.Transport, publisher_id: str,
                 **kwargs: Any) -> oslo_messaging.Notifier:
    """A Notifier that sends payloads unmodified."""
    return oslo_messaging.Notifier(transport, serializer=NoOpSerializer(),
                                   publisher_id=publisher_id, **kwargs)
