"""Transformers: stateful steps of a sample sink (``telemeter.transformer``).

Each sink builds its own instances as ``cls(**parameters)`` from
pipeline.yaml, so state (caches of previous samples) belongs to the sink and
lives as long as the process.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from telemeter import expression

if TYPE_CHECKING:
    from telemeter.sample import Sample


#: What the expressions of the transformers (``arithmetic``'s ``expr``,
#: ``unit_conversion``'s ``scale``) may use: any name, looked up in the
#: sample's fields and the other meters when evaluated.
EXPRESSIONS = expression.Policy('transformer')


class TransformerBase(metaclass=abc.ABCMeta):
    """Base class of every transformer plugin."""

    #: Metering-dict keys that must route a resource's samples to one
    #: notification agent when work is partitioned.
    grouping_keys: list[str] = ['resource_id']

    def __init__(self, **kwargs: Any) -> None:
        pass

    @abc.abstractmethod
    def handle_sample(self, sample: Sample) -> Sample | None:
        """Return a Sample to pass on, or None to drop or hold it."""

    def flush(self) -> list[Sample]:
        """Return the samples held back so far (default: none)."""
        return []

    def __repr__(self) -> str:
        return type(self).__name__


class Namespace:
    """The names an expression sees.

    Keys of the seed become attributes; dict values are seen as nested
    Namespaces (wrapped when looked up, so a sample's metadata is not
    copied for every expression); an absent attribute or item is an empty
    Namespace, which is falsy, so ``resource_metadata.cpu_number or 1``
    and ``a.b.c.d`` never raise. Expressions only read the seed.
    """

    __slots__ = ('_data',)

    def __init__(self, seed: dict | None = None) -> None:
        object.__setattr__(self, '_data', seed or {})

    def lookup(self, name: Any) -> Any:
        """The value named ``name``, or an empty Namespace."""
        try:
            value = self._data[name]
        except (KeyError, TypeError):
            return Namespace()
        return Namespace(value) if isinstance(value, dict) else value

    def __getattr__(self, name: str) -> Any:
        if name.startswith('__'):
            raise AttributeError(name)
        return self.lookup(name)

    def __getitem__(self, name: Any) -> Any:
        return self.lookup(name)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Namespace) and self._data == other._data

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f'Namespace({self._data!r})'
