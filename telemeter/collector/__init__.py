"""The collector: signed samples and events from the bus and UDP, handed to
the configured dispatchers."""

from __future__ import annotations

from oslo_config import cfg

OPTS = [
    cfg.StrOpt('udp_address',
               default='0.0.0.0',
               help='Address to which the UDP socket is bound. Set to '
                    'an empty string to disable.'),
    cfg.PortOpt('udp_port',
                default=4952,
                help='Port to which the UDP socket is bound.'),
    cfg.IntOpt('udp_batch_size',
               default=100,
               min=1,
               help='Maximum number of UDP samples handed to the '
                    'dispatchers in one call. The receiver hands over what '
                    'has already arrived, up to this many, so it adds no '
                    'delay; batches only form when samples arrive faster '
                    'than the dispatchers store them one by one. 1 '
                    'dispatches every sample on its own, as Ceilometer '
                    'did.'),
    cfg.IntOpt('batch_size',
               default=50,
               min=1,
               help='Number of notification messages to wait before '
                    'dispatching them. Each message carries up to the '
                    'notifier publisher\'s max_per_message (100) samples '
                    'or events, and the batch is stored in one transaction '
                    'and acknowledged after it. Ceilometer\'s default was '
                    '1: one transaction per message.'),
    cfg.IntOpt('batch_max_bytes',
               default=0, min=0,
               help='On RabbitMQ, a batch is also handed on once its '
                    'messages\' bodies reach this many bytes (0: no '
                    'bound). A metering message of 100 polled samples is '
                    '~130 KB and a batch holds several times its bytes '
                    'decoded: 1048576 lowered a worker\'s peak RSS from '
                    '152 to 103 MB end to end, for ~8 % more CPU per '
                    'stored sample on the whole data path (smaller '
                    'transactions).'),
    cfg.IntOpt('batch_timeout',
               default=1,
               help='Number of seconds to wait before dispatching samples '
                    'when batch_size is not reached (None means '
                    'indefinitely). On RabbitMQ a batch is also handed on '
                    'as soon as no message has arrived for 50 ms, so a '
                    'short tail never waits.'),
    cfg.FloatOpt('requeue_delay',
                 default=1.0,
                 min=0,
                 help='Seconds a bus batch that a dispatcher failed to '
                      'store is held before it is requeued, so that a '
                      'database or endpoint outage does not become a busy '
                      'redelivery loop. The batch stays unacknowledged '
                      'meanwhile; nothing is lost. Used on transports '
                      'other than RabbitMQ; on RabbitMQ the [delivery] '
                      'requeue_backoff options apply.'),
    cfg.IntOpt('workers',
               default=1,
               min=1,
               deprecated_group='DEFAULT',
               deprecated_name='collector_workers',
               help='Number of workers for collector service. '
                    'default value is 1.'),
]
