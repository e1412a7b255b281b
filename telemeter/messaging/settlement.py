"""Deliveries a listener received but never settled, found and released.

Every message the broker delivers on a channel must end acknowledged or
rejected; one that does not stays "unacknowledged" in its queue for as long
as the connection lives, out of reach of every other consumer. The batch
listener settles each batch it handles, so this should not happen; but a
settle that failed while the channel stayed open, or a delivery lost on the
way, would leave such messages behind without a trace.

:class:`SettlementWatch` keeps two numbers per channel - the last delivery
tag handed to the listener and the last one settled (RabbitMQ numbers the
deliveries of a channel 1, 2, 3, ...) - and, once the listener has been
idle for :attr:`grace` seconds with tags delivered but not settled, says
how many to release. The listener then logs them and asks the broker to
requeue every unacknowledged delivery of the channel (``basic.recover``);
storage is idempotent, so handling them again stores nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from oslo_log import log

LOG = log.getLogger(__name__)


class SettlementWatch:
    """Delivered vs. settled tags of the listener's current channel."""

    def __init__(self, grace: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self._clock = clock
        self._channel: Any = None
        self._delivered = 0
        self._settled = 0
        self._idle_since: float | None = None
        #: Deliveries whose tag did not follow the previous one.
        self.gaps = 0

    def delivered(self, message: Any) -> None:
        """A delivery reached the listener (its consumer callback)."""
        channel, tag = message.channel, message.delivery_tag
        if channel is not self._channel:
            self._channel, self._delivered, self._settled = channel, 0, 0
        elif tag != self._delivered + 1:
            self.gaps += 1
            LOG.warning('Delivery tag %d follows %d on the listener\'s '
                        'channel: a delivery did not reach the listener',
                        tag, self._delivered)
        self._delivered = max(self._delivered, tag)
        self._idle_since = None

    def settled(self, messages: list[Any]) -> None:
        """``messages`` (in delivery order) were acknowledged or
        rejected."""
        for message in reversed(messages):
            if message.channel is self._channel:
                self._settled = max(self._settled, message.delivery_tag)
                return

    def unsettled(self, channel: Any, pending: int) -> tuple[int, int] | None:
        """The first and last tag of the deliveries of ``channel`` to
        release now - neither settled nor waiting in the listener
        (``pending`` of them) after :attr:`grace` idle seconds - or None."""
        if channel is not self._channel or pending or \
                self._delivered <= self._settled:
            self._idle_since = None
            return None
        now = self._clock()
        if self._idle_since is None:
            self._idle_since = now
            return None
        if now - self._idle_since < self.grace:
            return None
        self._idle_since = None
        found = (self._settled + 1, self._delivered)
        # basic.recover settles them all: count afresh from there.
        self._settled = self._delivered
        return found
