"""Counting the events a driver drops because they cannot be stored.

An event the database refuses forever (see each driver's checks) would
fail its whole batch, and the collector would requeue the batch forever;
the drivers log, count and drop such an event instead and store the rest.
"""

from __future__ import annotations

from typing import Any

from oslo_log import log

LOG = log.getLogger(__name__)


class EventChecker:
    """Counts and logs the events dropped (``dropped``)."""

    def __init__(self) -> None:
        self.dropped = 0

    def drop(self, message_id: Any, reason: str) -> None:
        """Log and count one event that cannot be stored."""
        self.dropped += 1
        LOG.error('Failed to record event %(id)s, dropping it: %(reason)s; '
                  '%(count)d events dropped so far',
                  {'id': message_id, 'reason': reason,
                   'count': self.dropped})
