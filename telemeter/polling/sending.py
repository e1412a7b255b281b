"""Sending polled samples on the notification bus (polling.md §4).

:class:`SampleSender` signs the Samples of one pollster call, sends them in
batches of ``[polling] batch_size`` as ``telemetry.polling`` notifications
and counts what it sent (the agent's health ledger reads the counts).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from oslo_config import cfg

from telemeter import wire
from telemeter.publisher import utils as publisher_utils

if TYPE_CHECKING:
    from telemeter.sample import Sample

PUBLISHER_ID = 'telemeter.polling'
EVENT_TYPE = 'telemetry.polling'


class SampleNotifier(Protocol):
    """The part of an oslo.messaging ``Notifier`` the sender uses."""

    def sample(self, ctxt: dict, event_type: str, payload: dict) -> None:
        """Send one notification of priority ``sample``."""
        ...


class SampleSender:
    """Signs, batches and sends samples; counts them per pollster.

    :param conf: read at each send (``batch_size``, ``telemetry_secret``),
        so that a reload of the configuration applies to the next batch
    :param notifier: the ``telemeter.polling`` notifier
    """

    def __init__(self, conf: cfg.ConfigOpts,
                 notifier: SampleNotifier) -> None:
        self.conf = conf
        self.notifier = notifier
        #: Samples polled and sent, per pollster; notifications sent.
        self.produced: dict[str, int] = {}
        self.notifications_sent = 0

    @property
    def batch_size(self) -> int:
        """Samples per notification; 0 means one notification per sample.
        """
        if not self.conf.batch_polled_samples:
            return 0
        return self.conf.polling.batch_size

    def send_samples(self, samples: list[wire.MeteringMessage]) -> None:
        """Send signed metering dicts as one ``telemetry.polling`` sample.
        """
        self.notifier.sample({}, EVENT_TYPE, {'samples': samples})
        self.notifications_sent += 1

    def send(self, pollster_name: str, samples: Iterable[Sample] | None,
             timestamp: str) -> int:
        """Stamp, sign and send the samples of one pollster call in batches.

        Returns how many were sent, and counts them for the pollster.
        If the ``samples`` iterable fails, the batches already sent stay
        sent, the unsent partial batch is dropped and nothing is counted
        (the error propagates).
        """
        size = max(self.batch_size, 1)
        secret = self.conf.publisher.telemetry_secret
        batch: list[wire.MeteringMessage] = []
        sent = 0
        for sample in samples or []:
            sample.set_timestamp(timestamp)
            batch.append(
                publisher_utils.meter_message_from_counter(sample, secret))
            if len(batch) >= size:
                self.send_samples(batch)
                sent += len(batch)
                batch = []
        if batch:
            self.send_samples(batch)
            sent += len(batch)
        self.produced[pollster_name] = (
            self.produced.get(pollster_name, 0) + sent)
        return sent
