"""Message ids the bench numbers, and what became of them: sent id ranges
against stored ids (lost, duplicated, unexpected), derived samples
expected."""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
from collections.abc import Iterable, Sequence

from .packaged import DERIVED_PER_SAMPLE

# ------------------------------------------------------ message id scheme


def make_id_prefix(rng: random.Random) -> str:
    """A random UUID prefix (the first four groups, version 4 layout)."""
    value = rng.getrandbits(64)
    text = f'{value:016x}'
    return (f'{text[:8]}-{text[8:12]}-4{text[12:15]}-'
            f'8{rng.getrandbits(12):03x}-')


def make_message_id(prefix: str, seq: int) -> str:
    """The UUID-shaped message id of sent sample number ``seq``."""
    return f'{prefix}{seq:012x}'


def parse_message_id(prefix: str, message_id: str | None) -> int | None:
    """The sequence number of one of our ids, None for any other id."""
    if not message_id or not message_id.startswith(prefix):
        return None
    tail = message_id[len(prefix):]
    if len(tail) != 12:
        return None
    try:
        return int(tail, 16)
    except ValueError:
        return None


SEQ_SPAN = 1 << 40  # message id numbers of one sender process


def first_seq(index: int) -> int:
    """The first message id number of sender process ``index``."""
    return index * SEQ_SPAN


# ----------------------------------------------------- delivery accounting


@dataclasses.dataclass
class Delivery:
    """What became of the samples the bench numbered and sent."""

    sent: int
    stored_rows: int
    stored_distinct: int
    lost: int
    duplicated: int
    unexpected: int
    lost_examples: list[int]


def count_sent(ranges: Sequence[tuple[int, int]]) -> int:
    """Number of ids in half-open ``[start, end)`` ranges."""
    return sum(end - start for start, end in ranges)


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping union of half-open ranges."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def in_ranges(ranges: Sequence[tuple[int, int]], value: int) -> bool:
    """Whether ``value`` is in one of the merged, sorted ``ranges``."""
    index = bisect.bisect_right(ranges, (value, math.inf)) - 1
    return index >= 0 and ranges[index][0] <= value < ranges[index][1]


def count_delivery(sent_ranges: Iterable[tuple[int, int]],
                   stored_seqs: Iterable[int],
                   examples: int = 5) -> Delivery:
    """Lost and duplicated samples from the ids sent and the ids stored.

    ``stored_seqs`` has one entry per stored row (a duplicate row repeats
    its number).  Lost: sent and never stored.  Duplicated: rows beyond
    the first of a number.  Unexpected: stored numbers never sent.
    """
    ranges = merge_ranges(sent_ranges)
    rows = 0
    distinct: set[int] = set()
    for seq in stored_seqs:
        rows += 1
        distinct.add(seq)
    sent = count_sent(ranges)
    stored_sent = sum(1 for seq in distinct if in_ranges(ranges, seq))
    lost_examples: list[int] = []
    if stored_sent < sent:
        for start, end in ranges:
            for seq in range(start, end):
                if seq not in distinct:
                    lost_examples.append(seq)
                    if len(lost_examples) >= examples:
                        break
            if len(lost_examples) >= examples:
                break
    return Delivery(sent=sent, stored_rows=rows,
                    stored_distinct=len(distinct), lost=sent - stored_sent,
                    duplicated=rows - len(distinct),
                    unexpected=len(distinct) - stored_sent,
                    lost_examples=lost_examples)


def expected_derived(meter_counts: dict[str, int],
                     meter_resources: dict[str, int]) -> int:
    """Samples the packaged transformers derive from what was sent, when
    one agent worker sees every sample of a resource in order: every
    sample of a transformed meter but the first of each resource."""
    total = 0
    for meter, per_sample in DERIVED_PER_SAMPLE.items():
        count = meter_counts.get(meter, 0)
        total += per_sample * max(count - meter_resources.get(meter, 0), 0)
    return total
