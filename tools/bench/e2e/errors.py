"""The bench's own error."""

from __future__ import annotations


class BenchError(Exception):
    """A failure that the bench explains; the message says what to do."""
