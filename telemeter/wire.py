"""The messages that cross the daemons, written once.

A :class:`~telemeter.sample.Sample` travels between the polling agent, the
notification agent, the collector and storage as a *metering message*
(:func:`telemeter.publisher.utils.meter_message_from_counter` builds it);
an event as an *event message*
(:func:`telemeter.publisher.utils.message_from_event`). Both are plain
dicts on the wire (JSON on the bus, msgpack over UDP) and carry the HMAC
of their other fields in ``message_signature``.

The :class:`TypedDict` classes below state their fields for the code that
builds and reads them; they cost nothing at run time. What a collector
receives is untrusted until its signature and shape are checked
(:mod:`telemeter.storage.validation` holds the rules a message must meet
to be stored, with the limits of :data:`MAX_LENGTHS`).
"""

import enum
import math
from typing import Any, NotRequired, TypedDict


class MeteringMessage(TypedDict):
    """One sample on the wire."""

    source: str
    counter_name: str
    counter_type: str
    counter_unit: str | None
    #: A number, or the text of one, as the sample carried it.
    counter_volume: Any
    user_id: str | None
    project_id: str | None
    resource_id: str
    #: ISO 8601 text (None only before the polling agent stamps it).
    timestamp: str | None
    resource_metadata: dict[str, Any]
    #: The sample's id: what storage keeps a redelivered sample once by.
    message_id: str
    monotonic_time: float | None
    #: Set by the publishers that name their sender (``tcp://``).
    publisher_id: NotRequired[str]
    #: HMAC-SHA256 of the other fields; ``''`` where nothing is signed.
    message_signature: str


class EventMessage(TypedDict):
    """One event on the wire (``Event.serialize()`` plus its signature)."""

    message_id: str | None
    event_type: str
    #: ISO 8601 text.
    generated: Any
    #: ``[name, dtype, value]`` of each trait.
    traits: list[Any]
    raw: dict[str, Any] | None
    message_signature: NotRequired[str]


#: What a ``notifier://`` publisher sends: a batch holds one kind.
Message = MeteringMessage | EventMessage

#: Longest value of each text field of a metering message (the SQL
#: column sizes; MongoDB applies the same limits).
MAX_LENGTHS: dict[str, int] = {
    'counter_name': 255, 'counter_type': 255, 'counter_unit': 255,
    'resource_id': 255, 'user_id': 255, 'project_id': 255, 'source': 255,
    'message_id': 128, 'message_signature': 64,
}
#: Fields without which a metering message cannot be stored.
REQUIRED = ('counter_name', 'resource_id')
#: The fields that describe the resource, and those that name the meter.
RESOURCE_FIELDS = ('resource_id', 'user_id', 'project_id', 'source')
METER_FIELDS = ('counter_name', 'counter_type', 'counter_unit')


class VolumeProblem(enum.Enum):
    """Why a value cannot be a sample's volume."""

    MISSING = 'missing'
    NOT_A_NUMBER = 'not a number'
    NOT_FINITE = 'not finite'


def volume_problem(value: Any, *, finite: bool) -> VolumeProblem | None:
    """Why ``value`` cannot be a sample's ``counter_volume``, or None.

    The one rule of every stage: a volume is a number (an int, a float, a
    bool, or anything else ``float()`` converts, such as a Decimal) or the
    text of one; bytes are not text. With ``finite`` it must also be
    finite, as storage needs it (MySQL holds no infinity, and no database
    compares NaN); the pipeline passes infinities on, as Ceilometer's
    does, and leaves an integer as it is.
    """
    if isinstance(value, (int, float)):
        if not finite:
            return None
        try:
            number = float(value)
        except OverflowError:  # an int beyond a double's range
            return VolumeProblem.NOT_FINITE
    elif value is None:
        return VolumeProblem.MISSING
    elif isinstance(value, (bytes, bytearray)):
        return VolumeProblem.NOT_A_NUMBER
    else:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return VolumeProblem.NOT_A_NUMBER
    if finite and not math.isfinite(number):
        return VolumeProblem.NOT_FINITE
    return None
