"""The notification agent: notifications in, samples and events out.

This package module holds only the ``[notification]`` options.
``telemeter.notification.NotificationProcessBase``, the public name of the
handler base class (interfaces.md), is resolved on first access by a module
``__getattr__`` rather than imported here, for a measured reason: the class
lives in :mod:`~telemeter.notification.plugin_base`, which loads
oslo.messaging and the pipeline and publisher packages. Importing it eagerly
took ``import telemeter.notification`` from ~0.13 s to ~0.67 s and the
modules loaded by ``import telemeter.declarative`` (which reads
:mod:`~telemeter.notification.accessors`) from 339 to 801 (``python -X
importtime``, best of five). The daemons import plugin_base anyway when they
register their options.
"""

from __future__ import annotations

from oslo_config import cfg

OPTS = [
    cfg.IntOpt('workers',
               default=1,
               min=1,
               deprecated_group='DEFAULT',
               deprecated_name='notification_workers',
               help='Number of workers for notification service, default '
                    'value is 1.'),
    cfg.BoolOpt('ack_on_event_error',
                default=False,
                deprecated_group='collector',
                help='Acknowledge message when event persistence fails '
                     '(an event publisher raised): the events are lost. '
                     'False requeues the notifications until the '
                     'publishers take them. A notification that cannot '
                     'be converted is acknowledged and copied to the '
                     'quarantine queue either way. Ceilometer\'s default '
                     'was True.'),
    cfg.BoolOpt('workload_partitioning',
                default=False,
                help='Enable workload partitioning, allowing multiple '
                     'notification agents to be run simultaneously.'),
    cfg.IntOpt('pipeline_processing_queues',
               default=10,
               min=1,
               help='Number of queues to parallelize workload across. This '
                    'value should be larger than the number of active '
                    'notification agents for optimal results. WARNING: '
                    'Once set, lowering this value may result in lost '
                    'data.'),
    cfg.MultiStrOpt('messaging_urls',
                    default=[],
                    secret=True,
                    help='Messaging URLs to listen for notifications. '
                         'Example: rabbit://user:pass@host1:port1'
                         '[,user:pass@hostN:portN]/virtual_host '
                         '(DEFAULT/transport_url is used if empty). This '
                         'is useful when you have dedicate messaging nodes '
                         'for each service, for example, all nova '
                         'notifications go to rabbit-nova:5672, while all '
                         'cinder notifications go to rabbit-cinder:5672.'),
    cfg.IntOpt('batch_size',
               default=100, min=1,
               help='Number of notification messages to wait before '
                    'publishing them.'),
    cfg.IntOpt('batch_max_bytes',
               default=1024 * 1024, min=0,
               help='On RabbitMQ, a batch is also handed on once its '
                    'messages\' bodies reach this many bytes (0: no '
                    'bound), so that a batch of large notifications '
                    '(the polling agent\'s carry 50 samples, ~65 KB) '
                    'does not hold thousands of decoded samples at once '
                    'while small notifications still batch by '
                    'batch_size. With polling notifications the default '
                    'lowered a worker\'s peak RSS from 91 to 59 MB for '
                    '~15 % more of its CPU per sample; 0 gives that '
                    'back.'),
    cfg.IntOpt('batch_timeout',
               default=5,
               help='Number of seconds to wait before publishing samples '
                    'when batch_size is not reached (None means '
                    'indefinitely).'),
    cfg.MultiStrOpt('notification_control_exchanges',
                    default=['nova', 'glance', 'neutron', 'cinder', 'heat',
                             'keystone', 'sahara', 'trove', 'zaqar', 'swift',
                             'telemeter', 'magnum', 'dns'],
                    deprecated_group='DEFAULT',
                    deprecated_name='http_control_exchanges',
                    help='Exchanges name to listen for notifications.'),
]


def __getattr__(name: str) -> object:
    # ``telemeter.notification.NotificationProcessBase`` is the public name
    # of the handler base class; loaded on access (see the module docstring).
    if name == 'NotificationProcessBase':
        from telemeter.notification.plugin_base import NotificationBase
        return NotificationBase
    raise AttributeError(name)
