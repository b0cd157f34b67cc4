"""The 100 mm rule: hand-made tracks with known survivors, and a plain loop on random data."""
import numpy as np
import pytest

from posepile.dedup import dedup_mask


def reference_dedup_mask(coords, track_ids, frames, threshold_mm=100.0):
    """The rule as written in DESIGN.md, one example at a time (independent of the module)."""
    coords = np.asarray(coords, np.float64)
    keep = np.zeros(len(coords), bool)
    last_kept_of_track = {}
    for i in sorted(range(len(coords)), key=lambda k: (track_ids[k], frames[k])):
        track = track_ids[i]
        if track in last_kept_of_track:
            dist = np.linalg.norm(coords[i] - coords[last_kept_of_track[track]], axis=-1)
            both = ~np.isnan(dist)
            if both.any() and not np.any(dist[both] > threshold_mm):
                continue
        keep[i] = True
        last_kept_of_track[track] = i
    return keep


def test_slow_drift_is_kept_when_cumulative_motion_exceeds_threshold():
    # Joint 0 drifts 30 mm per frame along x: never 100 mm step to step, but frame 4 is 120 mm
    # from frame 0 (kept), frame 8 is 120 mm from frame 4, etc.
    n = 13
    coords = np.zeros((n, 2, 3), np.float32)
    coords[:, 0, 0] = 30 * np.arange(n)
    kept = dedup_mask(coords, np.zeros(n, int), np.arange(n))
    assert np.flatnonzero(kept).tolist() == [0, 4, 8, 12]


def test_exactly_threshold_is_not_enough():
    coords = np.zeros((3, 1, 3), np.float32)
    coords[1, 0, 2] = 100.0
    coords[2, 0, 2] = 100.0 + 100.5
    assert dedup_mask(coords, np.zeros(3, int), np.arange(3)).tolist() == [True, False, True]


def test_nan_joints_only_compare_joints_labelled_in_both():
    nan = np.nan
    coords = np.array([
        [[0, 0, 0], [0, 0, 0]],        # kept: first
        [[nan, nan, nan], [50, 0, 0]],  # joint 1 moved 50 only: dropped
        [[500, 0, 0], [nan, nan, nan]],  # joint 0 moved 500 vs frame 0: kept
        [[nan, nan, nan], [0, 0, 0]],   # nothing labelled in both with frame 2: kept
        [[nan, nan, nan], [90, 0, 0]],  # joint 1 moved 90 vs frame 3: dropped
        [[nan, nan, nan], [nan, nan, nan]],  # nothing labelled: kept
    ], np.float32)
    kept = dedup_mask(coords, np.zeros(6, int), np.arange(6))
    assert np.flatnonzero(kept).tolist() == [0, 2, 3, 5]


def test_interleaved_tracks_in_shuffled_order():
    # Track 7: slow drift (30 mm/frame) -> frames 0, 4, 8. Track 3: fast (200 mm/frame) -> all.
    # Track 5: still -> only its first frame (frame 10).
    rows = []
    for f in range(9):
        rows.append((7, f, [30.0 * f, 0, 0]))
    for f in range(4):
        rows.append((3, f, [0, 200.0 * f, 0]))
    for f in range(10, 16):
        rows.append((5, f, [1000.0, 1000.0, 1000.0]))
    perm = np.random.default_rng(0).permutation(len(rows))
    rows = [rows[i] for i in perm]
    tracks = np.array([r[0] for r in rows])
    frames = np.array([r[1] for r in rows])
    coords = np.array([[r[2]] for r in rows], np.float32)
    kept = dedup_mask(coords, tracks, frames)
    survivors = sorted((int(t), int(f)) for t, f in zip(tracks[kept], frames[kept]))
    assert survivors == [(3, 0), (3, 1), (3, 2), (3, 3), (5, 10), (7, 0), (7, 4), (7, 8)]


def test_long_still_period_is_resolved_on_demand():
    # 3000 still frames (far beyond the speculative window), then one jump.
    n = 3000
    coords = np.zeros((n, 3, 3), np.float32)
    coords[:, :, 0] = np.random.default_rng(1).uniform(-20, 20, (n, 3))
    coords[2500:, 1, 1] = 400
    kept = dedup_mask(coords, np.zeros(n, int), np.arange(n))
    assert np.flatnonzero(kept).tolist() == [0, 2500]


@pytest.mark.parametrize('seed', range(4))
def test_matches_plain_loop_on_random_walks(seed):
    rng = np.random.default_rng(seed)
    n, j = 3000, 5
    tracks = rng.integers(0, 12, n)
    frames = rng.permutation(n)
    # Random walks with a per-track speed, some tracks nearly still, plus random NaN joints.
    speed = rng.choice([3.0, 20.0, 60.0, 150.0], size=12)[tracks]
    steps = rng.normal(size=(n, j, 3)) * speed[:, None, None]
    order = np.lexsort((frames, tracks))
    coords = np.empty_like(steps)
    coords[order] = np.cumsum(steps[order], axis=0)
    coords[rng.random((n, j)) < 0.3] = np.nan
    expected = reference_dedup_mask(coords, tracks, frames)
    got = dedup_mask(coords.astype(np.float32), tracks, frames)
    assert 0 < expected.sum() < n
    np.testing.assert_array_equal(got, expected)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match='coords'):
        dedup_mask(np.zeros((4, 3)), np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match='track_ids'):
        dedup_mask(np.zeros((4, 2, 3)), np.zeros(3), np.zeros(4))
    assert dedup_mask(np.zeros((0, 2, 3)), np.zeros(0), np.zeros(0)).shape == (0,)


def test_result_does_not_depend_on_id_ranges():
    # Negative track ids and frames beyond 31 bits take the lexsort path: same answer.
    rng = np.random.default_rng(7)
    n = 500
    tracks = rng.integers(0, 5, n)
    frames = rng.permutation(n)
    coords = np.cumsum(rng.normal(size=(n, 3, 3)) * 40, axis=0).astype(np.float32)
    expected = dedup_mask(coords, tracks, frames)
    np.testing.assert_array_equal(dedup_mask(coords, tracks - 3, frames + 2 ** 40), expected)
    np.testing.assert_array_equal(dedup_mask(coords, tracks, frames.astype(float)), expected)
