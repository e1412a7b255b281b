"""What telemeter's packaged configuration and polling agent do that the
bench copies (message shape, meters) or counts on (derived samples,
exchanges, queues)."""

from __future__ import annotations

# What the polling agent puts on the bus (telemeter/polling/sending.py).
POLLING_PUBLISHER_ID = 'telemeter.polling'
POLLING_EVENT_TYPE = 'telemetry.polling'
POLLING_BATCH = 50  # [polling] batch_size default

# (meter, type, unit, resource kind) of the packaged compute pollsters
# that the packaged polling.yaml polls.
POLLED_METERS: tuple[tuple[str, str, str, str], ...] = (
    ('cpu', 'cumulative', 'ns', 'instance'),
    ('memory.usage', 'gauge', 'MB', 'instance'),
    ('disk.read.bytes', 'cumulative', 'B', 'instance'),
    ('disk.read.requests', 'cumulative', 'request', 'instance'),
    ('disk.write.bytes', 'cumulative', 'B', 'instance'),
    ('disk.write.requests', 'cumulative', 'request', 'instance'),
    ('network.incoming.bytes', 'cumulative', 'B', 'vnic'),
    ('network.incoming.packets', 'cumulative', 'packet', 'vnic'),
    ('network.outgoing.bytes', 'cumulative', 'B', 'vnic'),
    ('network.outgoing.packets', 'cumulative', 'packet', 'vnic'),
)

# Samples the packaged pipeline.yaml derives from one sample of a meter
# once the transformer has seen the resource before: cpu → cpu_util
# (rate_of_change) and cpu.delta (delta); disk and network → *.rate.
DERIVED_PER_SAMPLE = {
    'cpu': 2,
    'disk.read.bytes': 1, 'disk.read.requests': 1,
    'disk.write.bytes': 1, 'disk.write.requests': 1,
    'network.incoming.bytes': 1, 'network.incoming.packets': 1,
    'network.outgoing.bytes': 1, 'network.outgoing.packets': 1,
}


def is_derived_meter(name: str) -> bool:
    """Whether a meter is one the packaged transformers make."""
    return name in ('cpu_util', 'cpu.delta') or name.endswith('.rate')


# Exchanges of corpus entries that the packaged agent does not listen to,
# and where telemeter's own sender would put them.
EXCHANGE_MAP = {'ceilometer': 'telemeter'}

# Queues that exist with the packaged configuration (the AMQP probe can
# only ask for queues by name).
KNOWN_QUEUES = tuple(
    [f'notifications.{p}' for p in ('audit', 'critical', 'debug', 'error',
                                    'info', 'sample', 'warn')]
    + ['metering.sample', 'event.sample'])
AGENT_QUEUES = ('notifications.info', 'notifications.sample')
COLLECTOR_QUEUES = ('metering.sample', 'event.sample')
