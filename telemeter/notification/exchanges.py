"""Per-service exchange options kept for configuration compatibility.

The notification agent listens on ``[notification]
notification_control_exchanges``; these older per-service options are
accepted (so existing configuration files still load) but not used.
"""

from __future__ import annotations

from oslo_config import cfg

_SERVICES = [('nova', 'nova'), ('glance', 'glance'), ('neutron', 'neutron'),
             ('heat', 'heat'), ('keystone', 'keystone'),
             ('sahara', 'sahara'), ('trove', 'trove'), ('zaqar', 'zaqar'),
             ('swift', 'swift'), ('magnum', 'magnum'), ('cinder', 'cinder'),
             ('dns', 'central')]

OPTS = [
    cfg.StrOpt(f'{service}_control_exchange',
               default=exchange,
               deprecated_for_removal=True,
               deprecated_reason='Use [notification] '
                                 'notification_control_exchanges.',
               help=f'Exchange name for {service} notifications (unused).')
    for service, exchange in _SERVICES
]
