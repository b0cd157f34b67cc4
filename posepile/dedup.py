"""The 100 mm rule: drop near-duplicate poses within a track, vectorised.

Rule (DESIGN.md "Dedup"): within one track (dataset, sequence, person, camera_id), in frame order,
an example is kept if some joint labelled (non-NaN) both in it and in the last KEPT example moved
more than `threshold_mm`. The first example of a track is always kept, and so is an example that
shares no labelled joint with the last kept one (nothing shows it to be a duplicate).

The rule is sequential (whether example i is kept depends on which example was kept last), so it
cannot be one array expression. It is split in two parts:
  1. `successor[i]`: the example that would be kept next if i is kept. It is the first j > i in
     i's track that passes the test against i, or, past the track's end, the next track's first
     example (always kept). This is where all distance work is, and it is computed for every i at
     once ("speculatively"), offset by offset: d = 1, 2, ... over the still-unresolved examples,
     which shrink quickly on moving people. Examples still unresolved after
     `_SPECULATIVE_MAX_OFFSET` offsets (a person standing still or moving slowly) are resolved
     only if the chain reaches them, by scanning forward in growing chunks, so a long still
     period costs O(its length) once, not its square.
  2. The kept set is the chain 0 -> successor[0] -> ... which visits only kept examples; following
     it is a scalar jump per kept example over a plain list (no distances), all tracks in one pass.
"""
from __future__ import annotations

import numpy as np

# Speculation stops once the unresolved examples are this few (the rest are resolved on demand)…
_SPECULATIVE_MIN_UNRESOLVED_FRACTION = 0.002
# …or after this many offsets: beyond it, most unresolved examples sit in slow or still periods,
# where testing every example costs O(period length x offsets) while the chain visits only a few
# of them (measured on bench/posepile.py's motion: 8 is near the optimum, 4..12 within 30 %).
_SPECULATIVE_MAX_OFFSET = 8
_FIRST_ON_DEMAND_CHUNK = 64
# Rows per speculative block: [rows, J*3] float32 temporaries stay within a few MB of cache.
_BLOCK_ROWS = 4096


def dedup_mask(coords: np.ndarray, track_ids: np.ndarray, frames: np.ndarray,
               threshold_mm: float = 100.0) -> np.ndarray:
    """Which examples the 100 mm rule keeps.

    Args:
        coords: [N, J, 3] joint coordinates in mm (world or camera frame: the rule only compares
            examples of the same track, so any fixed frame per track works); NaN = unlabelled.
        track_ids: [N] integers identifying the track of each example.
        frames: [N] frame indices (time order within a track); inputs may be in any order.
        threshold_mm: a joint must move strictly more than this (mm) for the example to be kept;
            0 turns the rule off (every example is kept, identical repeats included: what a
            user asking for 0 for photos or a small dataset means).
    Returns:
        [N] bool, True for kept examples, in the input order.
    """
    coords = np.asarray(coords)
    track_ids = np.asarray(track_ids)
    frames = np.asarray(frames)
    if coords.ndim != 3 or coords.shape[2] != 3:
        raise ValueError(f'dedup_mask: coords must be [N, J, 3], got {coords.shape}')
    n = coords.shape[0]
    if track_ids.shape != (n,) or frames.shape != (n,):
        raise ValueError(f'dedup_mask: track_ids {track_ids.shape} and frames {frames.shape} must '
                         f'both be [{n}] like coords')
    if not threshold_mm >= 0:
        raise ValueError(f'dedup_mask: threshold_mm must be >= 0, got {threshold_mm}')
    if n == 0:
        return np.zeros(0, bool)
    if threshold_mm == 0:
        return np.ones(n, bool)

    order = _track_frame_order(track_ids, frames)
    flat = np.ascontiguousarray(coords[order].reshape(n, -1), dtype=np.float32)
    sorted_tracks = track_ids[order]
    track_end = _track_ends(sorted_tracks)
    successor = _speculative_successors(flat, track_end, float(threshold_mm) ** 2)
    kept_sorted = _follow_chain(successor, flat, track_end, float(threshold_mm) ** 2)

    result = np.zeros(n, bool)
    result[order[kept_sorted]] = True
    return result


def _track_frame_order(track_ids: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """[N] indices sorting by (track, frame), stable.

    One argsort of a packed int64 key is about twice as fast as np.lexsort on two keys; it
    applies when both fit in 31 bits (the usual case), else lexsort.
    """
    if (np.issubdtype(track_ids.dtype, np.integer) and np.issubdtype(frames.dtype, np.integer)
            and track_ids.min() >= 0 and frames.min() >= 0
            and track_ids.max() < 2 ** 31 and frames.max() < 2 ** 31):
        key = (track_ids.astype(np.int64) << 32) | frames.astype(np.int64)
        if np.all(key[1:] >= key[:-1]):
            return np.arange(len(key))
        return np.argsort(key, kind='stable')
    return np.lexsort((frames, track_ids))


def _track_ends(sorted_tracks: np.ndarray) -> np.ndarray:
    """[N] int64: for each example (sorted by track), the index one past its track's last."""
    n = len(sorted_tracks)
    starts_of_next = np.flatnonzero(sorted_tracks[1:] != sorted_tracks[:-1]) + 1
    boundaries = np.append(starts_of_next, n)
    track_number = np.zeros(n, np.int64)
    track_number[starts_of_next] = 1
    return boundaries[np.cumsum(track_number)]


def _moved(flat_a: np.ndarray, flat_b: np.ndarray, threshold_sq: float) -> np.ndarray:
    """[M] bool: the 100 mm test between rows of two [M, J*3] arrays.

    True if some joint labelled in both moved more than the threshold, or if no joint is labelled
    in both. NaN squared distances (a joint unlabelled in either) compare False everywhere.
    """
    diff = flat_a - flat_b
    sq = diff * diff
    dist_sq = sq[:, 0::3] + sq[:, 1::3] + sq[:, 2::3]
    moved = (dist_sq > threshold_sq).any(axis=1)
    shares_a_joint = (dist_sq == dist_sq).any(axis=1)
    return moved | ~shares_a_joint


def _speculative_successors(flat: np.ndarray, track_end: np.ndarray,
                            threshold_sq: float) -> np.ndarray:
    """[N] int64 successor per example (see module docstring); -1 where left unresolved.

    Works block by block so that the rows an offset compares are still in cache, and compares
    contiguous slices (no gather) while most of a block is unresolved.
    """
    n = len(flat)
    successor = np.full(n, -1, np.int64)
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        unresolved = np.arange(start, stop)
        for offset in range(1, _SPECULATIVE_MAX_OFFSET + 1):
            if len(unresolved) <= _SPECULATIVE_MIN_UNRESOLVED_FRACTION * (stop - start):
                break
            candidate = unresolved + offset
            past_end = candidate >= track_end[unresolved]
            if past_end.any():
                successor[unresolved[past_end]] = track_end[unresolved[past_end]]
                unresolved = unresolved[~past_end]
                candidate = candidate[~past_end]
                if not len(unresolved):
                    break
            lo, hi = unresolved[0], unresolved[-1] + 1
            if 2 * len(unresolved) >= hi - lo:
                hit_dense = _moved(flat[lo + offset:hi + offset], flat[lo:hi], threshold_sq)
                hit = hit_dense[unresolved - lo]
            else:
                hit = _moved(flat[candidate], flat[unresolved], threshold_sq)
            successor[unresolved[hit]] = candidate[hit]
            unresolved = unresolved[~hit]
    return successor


def _resolve_one(i: int, flat: np.ndarray, end: int, threshold_sq: float) -> int:
    """Successor of example i by scanning the rest of its track in doubling chunks.

    Starts at i + 1: cheap to repeat the few offsets speculation already tested, and it keeps
    this independent of how far speculation went for i.
    """
    start, chunk = i + 1, _FIRST_ON_DEMAND_CHUNK
    while start < end:
        stop = min(start + chunk, end)
        hit = np.flatnonzero(_moved(flat[start:stop], flat[i][np.newaxis], threshold_sq))
        if len(hit):
            return start + int(hit[0])
        start, chunk = stop, chunk * 2
    return end


def _follow_chain(successor: np.ndarray, flat: np.ndarray, track_end: np.ndarray,
                  threshold_sq: float) -> np.ndarray:
    """[K] sorted indices of kept examples: the chain from example 0 through `successor`."""
    n = len(successor)
    # A list makes each jump a plain integer lookup: ~10x faster than indexing numpy scalars.
    succ = successor.tolist()
    ends = track_end.tolist()
    kept = []
    i = 0
    while i < n:
        kept.append(i)
        j = succ[i]
        if j < 0:
            j = _resolve_one(i, flat, ends[i], threshold_sq)
        i = j
    return np.asarray(kept, np.int64)

