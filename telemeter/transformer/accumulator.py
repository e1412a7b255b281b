"""``accumulator``: hold samples until a flush finds enough of them."""

from __future__ import annotations

from typing import Any

from telemeter import transformer


class TransformerAccumulator(transformer.TransformerBase):
    """Holds samples and releases them all once ``size`` are held.

    With ``size < 1`` samples pass straight through.
    """

    def __init__(self, size: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = int(size)
        self.samples: list[Any] = []

    def handle_sample(self, sample: Any) -> Any:
        if self.size >= 1:
            self.samples.append(sample)
            return None
        return sample

    def flush(self) -> list[Any]:
        if self.size >= 1 and len(self.samples) >= self.size:
            released, self.samples = self.samples, []
            return released
        return []
