"""Models returned (and, for events, accepted) by the storage drivers."""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Sequence
from typing import Any

from telemeter import utils, wire


class Model:
    """Base class for storage API models.

    Every keyword argument becomes an attribute; ``as_dict()`` converts
    nested models (and lists of models) recursively and ``==`` compares
    those dicts.
    """

    #: The names of the model's fields, in order.
    fields: Sequence[str]

    def __init__(self, **kwds: Any) -> None:
        self.fields = list(kwds)
        self.__dict__.update(kwds)

    def as_dict(self) -> dict:
        """Return the fields as a dict, nested models included."""
        result = {}
        for name in self.fields:
            value = getattr(self, name)
            if isinstance(value, Model):
                value = value.as_dict()
            elif (isinstance(value, list) and value
                  and isinstance(value[0], Model)):
                value = [item.as_dict() for item in value]
            result[name] = value
        return result

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def get_field_names(cls) -> set[str]:
        """The constructor argument names of this model."""
        params = inspect.signature(cls.__init__).parameters
        return {name for name, param in params.items()
                if name != 'self' and param.kind in (
                    param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)}


TEXT_MAX_LENGTH = 255


class Event(Model):
    """One event: a notification reduced to typed traits.

    ``generated`` is a naive UTC datetime, ``traits`` a list of
    :class:`Trait`, ``raw`` the original notification (or ``{}``).
    """

    DUPLICATE = 1
    UNKNOWN_PROBLEM = 2
    INCOMPATIBLE_TRAIT = 3

    # Built for every notification: plain attributes, no keyword dict.
    fields = ('message_id', 'event_type', 'generated', 'traits', 'raw')

    def __init__(self, message_id: str | None, event_type: str,
                 generated: datetime.datetime, traits: list[Trait],
                 raw: dict | None) -> None:
        self.message_id = message_id
        self.event_type = event_type
        self.generated = generated
        self.traits = traits
        self.raw = raw

    def as_dict(self) -> dict:
        return {'message_id': self.message_id,
                'event_type': self.event_type,
                'generated': self.generated,
                'traits': ([trait.as_dict() for trait in self.traits]
                           if self.traits else self.traits),
                'raw': self.raw}

    def append_trait(self, trait_model: Trait) -> None:
        """Add one trait to the event."""
        self.traits.append(trait_model)

    def __repr__(self) -> str:
        trait_list = ' '.join(str(trait) for trait in self.traits or [])
        return (f'<Event: {self.message_id}, {self.event_type}, '
                f'{self.generated}, {trait_list}>')

    def serialize(self) -> wire.EventMessage:
        """The event as a JSON-friendly dict (``generated`` isoformat)."""
        generated: Any = self.generated
        if hasattr(generated, 'isoformat'):
            generated = generated.isoformat()
        return {'message_id': self.message_id,
                'event_type': self.event_type,
                'generated': generated,
                'traits': [trait.serialize() for trait in self.traits],
                'raw': self.raw}


class Trait(Model):
    """A typed name/value pair attached to an event."""

    NONE_TYPE = 0
    TEXT_TYPE = 1
    INT_TYPE = 2
    FLOAT_TYPE = 3
    DATETIME_TYPE = 4

    type_names = {
        NONE_TYPE: 'none',
        TEXT_TYPE: 'string',
        INT_TYPE: 'integer',
        FLOAT_TYPE: 'float',
        DATETIME_TYPE: 'datetime',
    }

    # Built ~20 times per event: plain attributes, no keyword dict.
    fields = ('name', 'dtype', 'value')

    def __init__(self, name: str, dtype: int | None, value: Any) -> None:
        self.name = name
        self.dtype = dtype or Trait.NONE_TYPE
        self.value = value

    def as_dict(self) -> dict:
        return {'name': self.name, 'dtype': self.dtype, 'value': self.value}

    def __repr__(self) -> str:
        return f'<Trait: {self.name} {self.dtype} {self.value}>'

    def serialize(self) -> tuple[str, int, Any]:
        """``(name, dtype, value)`` with datetimes as isoformat strings."""
        value = self.value
        if isinstance(value, datetime.datetime):
            value = value.isoformat()
        return self.name, self.dtype, value

    def get_type_name(self) -> str:
        """The type name of this trait's dtype."""
        return self.get_name_by_type(self.dtype)

    @classmethod
    def get_type_by_name(cls, type_name: str) -> int | None:
        """``'text'`` → 1, ``'int'`` → 2, ...; unknown names → None."""
        return getattr(cls, f'{type_name.upper()}_TYPE', None)

    @classmethod
    def get_type_names(cls) -> Any:
        """All type names."""
        return cls.type_names.values()

    @classmethod
    def get_name_by_type(cls, type_id: int) -> str:
        """Type name of a dtype; unknown ids → ``'none'``."""
        return cls.type_names.get(type_id, 'none')

    @classmethod
    def convert_value(cls, trait_type: int, value: Any) -> Any:
        """Coerce ``value`` to the Python type stored for ``trait_type``.

        Datetimes become naive UTC; text is truncated to 255 characters.
        """
        if trait_type == cls.INT_TYPE:
            return int(value)
        if trait_type == cls.FLOAT_TYPE:
            return float(value)
        if trait_type == cls.DATETIME_TYPE:
            if not isinstance(value, datetime.datetime):
                value = utils.parse_isotime(value)
            return utils.naive_utc(value)
        if isinstance(value, bytes):
            value = value.decode('utf-8')
        return str(value)[:TEXT_MAX_LENGTH]


class Resource(Model):
    """Something for which sample data has been collected."""

    resource_id: str
    project_id: str | None
    first_sample_timestamp: datetime.datetime | None
    last_sample_timestamp: datetime.datetime | None
    source: str | None
    user_id: str | None
    metadata: dict | None

    def __init__(self, resource_id: str, project_id: str | None,
                 first_sample_timestamp: datetime.datetime | None,
                 last_sample_timestamp: datetime.datetime | None,
                 source: str | None, user_id: str | None,
                 metadata: dict | None) -> None:
        Model.__init__(self, resource_id=resource_id,
                            first_sample_timestamp=first_sample_timestamp,
                            last_sample_timestamp=last_sample_timestamp,
                            project_id=project_id, source=source,
                            user_id=user_id, metadata=metadata)


class Meter(Model):
    """A meter seen for a resource (or, with ``unique``, overall)."""

    name: str
    type: str | None
    unit: str | None
    resource_id: str | None
    project_id: str | None
    source: str | None
    user_id: str | None

    def __init__(self, name: str, type: str | None,
                 unit: str | None, resource_id: str | None,
                 project_id: str | None, source: str | None,
                 user_id: str | None) -> None:
        Model.__init__(self, name=name, type=type, unit=unit,
                            resource_id=resource_id, project_id=project_id,
                            source=source, user_id=user_id)


class Sample(Model):
    """One stored sample as returned by queries."""

    source: str | None
    counter_name: str
    counter_type: str | None
    counter_unit: str | None
    counter_volume: float | None
    user_id: str | None
    project_id: str | None
    resource_id: str
    timestamp: datetime.datetime | None
    resource_metadata: dict | None
    message_id: str | None
    message_signature: str | None
    recorded_at: datetime.datetime | None

    def __init__(self, source: str | None, counter_name: str,
                 counter_type: str | None, counter_unit: str | None,
                 counter_volume: float | None, user_id: str | None,
                 project_id: str | None, resource_id: str,
                 timestamp: datetime.datetime | None,
                 resource_metadata: dict | None, message_id: str | None,
                 message_signature: str | None,
                 recorded_at: datetime.datetime | None) -> None:
        Model.__init__(self, source=source, counter_name=counter_name,
                            counter_type=counter_type,
                            counter_unit=counter_unit,
                            counter_volume=counter_volume, user_id=user_id,
                            project_id=project_id, resource_id=resource_id,
                            timestamp=timestamp,
                            resource_metadata=resource_metadata,
                            message_id=message_id,
                            message_signature=message_signature,
                            recorded_at=recorded_at)


class Statistics(Model):
    """Computed statistics of a group of samples.

    ``data`` holds the aggregates: any of ``min``, ``max``, ``avg``,
    ``sum``, ``count`` and ``aggregate``.
    """

    unit: str | None
    period: int
    period_start: datetime.datetime | None
    period_end: datetime.datetime | None
    duration: float | None
    duration_start: datetime.datetime | None
    duration_end: datetime.datetime | None
    groupby: dict | None

    def __init__(self, unit: str | None, period: int,
                 period_start: datetime.datetime | None,
                 period_end: datetime.datetime | None,
                 duration: float | None,
                 duration_start: datetime.datetime | None,
                 duration_end: datetime.datetime | None,
                 groupby: dict | None, **data: Any) -> None:
        Model.__init__(self, unit=unit, period=period,
                            period_start=period_start,
                            period_end=period_end, duration=duration,
                            duration_start=duration_start,
                            duration_end=duration_end, groupby=groupby,
                            **data)
