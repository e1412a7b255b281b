"""``accumulator``: hold samples until a flush finds enough of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from telemeter import transformer

if TYPE_CHECKING:
    from telemeter.sample import Sample


class TransformerAccumulator(transformer.TransformerBase):
    """Holds samples and releases them all once ``size`` are held.

    With ``size < 1`` samples pass straight through.
    """

    def __init__(self, size: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = int(size)
        self.samples: list[Any] = []

    def handle_sample(self, sample: Sample) -> Sample | None:
        if self.size >= 1:
            self.samples.append(sample)
            return None
        return sample

    def flush(self) -> list[Sample]:
        if self.size >= 1 and len(self.samples) >= self.size:
            released, self.samples = self.samples, []
            return released
        return []
