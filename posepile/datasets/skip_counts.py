"""Counts of what converters drop on purpose (crowd / tiny / invisible persons, broken frames).

A converter yields only the examples it keeps; each deliberate drop is reported with
`count_skipped(dataset, reason)`. `posepile.build` wraps its collection loop in
`recording_skips()` and writes the totals into the manifest (`datasets.<name>.skipped`), so a user
sees how much of the raw data a build left out and why. Outside `recording_skips()` the calls do
nothing, so iterating a converter directly (tests, notebooks) needs no setup.

A context variable rather than an extra converter argument: converters are generators consumed
lazily, and the variable set by the consumer is visible in the generator's frames wherever
`next()` is called from that context, without threading a counter through 30 signatures.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections import Counter
from collections.abc import Iterator

_counts: contextvars.ContextVar[Counter | None] = contextvars.ContextVar(
    'posepile_skip_counts', default=None)


def count_skipped(dataset: str, reason: str, n: int = 1) -> None:
    """Records that `n` persons or frames of `dataset` were dropped for `reason` (a short phrase
    naming the rule, e.g. 'crowd annotation', 'box smaller than min_box_side_px').

    The unit is the would-be example (one person in one frame of one camera); a reason counting
    another unit says so, e.g. '... (sequences)'. Only annotated data counts: video frames
    without labels are not skips."""
    counts = _counts.get()
    if counts is not None and n:
        counts[(dataset, reason)] += int(n)


@contextlib.contextmanager
def recording_skips() -> Iterator[Counter]:
    """Within the block, `count_skipped` calls add to the yielded Counter[(dataset, reason)]."""
    counts: Counter = Counter()
    token = _counts.set(counts)
    try:
        yield counts
    finally:
        _counts.reset(token)


def skipped_by_dataset(counts: Counter) -> dict[str, dict[str, int]]:
    """{dataset: {reason: count}} with datasets and reasons sorted (for the manifest)."""
    result: dict[str, dict[str, int]] = {}
    for (dataset, reason), count in sorted(counts.items()):
        result.setdefault(dataset, {})[reason] = count
    return result
