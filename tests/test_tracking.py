"""IoU tracking against hand-computed IoUs and a brute-force assignment."""
import itertools

import numpy as np

from metrabs.serving.tracking import IouTracker, box_iou


def test_box_iou_hand_computed():
    a = np.array([[0, 0, 10, 10], [100, 100, 1, 1]], np.float64)
    b = np.array([[5, 5, 10, 10, 0.9], [0, 0, 10, 10, 0.5], [50, 0, 2, 2, 1]])
    np.testing.assert_allclose(box_iou(a, b), [[25 / 175, 1, 0], [0, 0, 0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)
    assert box_iou(a, np.zeros((0, 5))).shape == (2, 0)


def test_ids_follow_moving_boxes_survive_gaps_and_expire():
    tracker = IouTracker(iou_threshold=0.3, max_age=2)
    np.testing.assert_array_equal(tracker.update([[0, 0, 10, 20], [50, 0, 10, 20]]), [0, 1])
    # Moved by 2 px and listed in the other order.
    np.testing.assert_array_equal(tracker.update([[52, 0, 10, 20], [2, 0, 10, 20]]), [1, 0])
    assert tracker.update(np.zeros((0, 5))).shape == (0,)  # nobody in this frame
    np.testing.assert_array_equal(tracker.update([[3, 1, 10, 20]]), [0])  # back after a gap
    np.testing.assert_array_equal(tracker.update([[200, 0, 10, 20]]), [2])  # a new person
    for _ in range(3):  # track 1 unmatched for 4 frames in all > max_age: gone
        tracker.update([[3, 1, 10, 20]])
    np.testing.assert_array_equal(tracker.update([[52, 0, 10, 20], [3, 1, 10, 20]]), [3, 0])


def _brute_force_ids(boxes, track_boxes, track_ids, threshold):
    """Best total IoU over every matching (pairs under the threshold count 0 and stay unmatched)."""
    iou = box_iou(boxes, track_boxes)
    iou = np.where(iou >= threshold, iou, 0.0)
    n, m = iou.shape
    best, best_pairs = -1.0, []
    for cols in itertools.permutations(range(max(n, m)), n):
        pairs = [(r, c) for r, c in enumerate(cols) if c < m and iou[r, c] > 0]
        total = sum(iou[r, c] for r, c in pairs)
        if total > best + 1e-12:
            best, best_pairs = total, pairs
    ids = np.full(n, -1)
    for r, c in best_pairs:
        ids[r] = track_ids[c]
    return ids


def test_assignment_maximises_total_iou_like_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(60):
        tracks = np.concatenate([rng.uniform(0, 40, (4, 2)), rng.uniform(8, 20, (4, 2))], 1)
        tracker = IouTracker(iou_threshold=0.2)
        ids = tracker.update(tracks)
        boxes = tracks[rng.permutation(4)[:rng.integers(1, 5)]].copy()
        boxes[:, :2] += rng.normal(0, 4, (len(boxes), 2))
        want = _brute_force_ids(boxes, tracks, ids, 0.2)
        got = tracker.update(boxes)
        matched = want >= 0
        np.testing.assert_array_equal(got[matched], want[matched])
        assert np.all(got[~matched] >= 4)  # unmatched boxes start new tracks
