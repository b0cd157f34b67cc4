"""Simple IoU tracking: a person keeps an id from frame to frame while their boxes overlap.

Each frame's boxes are matched to the live tracks' last boxes by the assignment of maximum total
IoU over pairs with IoU >= iou_threshold (Hungarian algorithm, scipy); unmatched boxes start new tracks; a
track not matched for more than max_age frames ends (ids are never reused). No motion model:
meant for video at normal frame rates, where a person's box moves little between frames.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, >=4], [M, >=4] xywh boxes (px) -> [N, M] intersection over union (0 for empty)."""
    a = np.asarray(a, np.float64)[..., :4].reshape(-1, 4)
    b = np.asarray(b, np.float64)[..., :4].reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    union = np.prod(a[:, 2:], -1)[:, None] + np.prod(b[:, 2:], -1)[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


class IouTracker:
    """Assigns track ids to per-frame boxes (call `update` once per frame, in order).

    Args:
        iou_threshold: minimum IoU between a box and a track's last box to continue the track.
        max_age: frames a track survives without a match (0: it must match in the next frame).
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 5):
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self._boxes = np.zeros((0, 4))
        self._ids = np.zeros(0, np.int64)
        self._missed = np.zeros(0, np.int64)
        self._next_id = 0

    def update(self, boxes: np.ndarray) -> np.ndarray:
        """boxes [N, >=4] xywh px of one frame -> [N] int64 track ids."""
        boxes = np.asarray(boxes, np.float64)[..., :4].reshape(-1, 4)
        ids = np.full(len(boxes), -1, np.int64)
        matched_tracks = np.zeros(len(self._ids), bool)
        if len(boxes) and len(self._ids):
            iou = box_iou(boxes, self._boxes)
            iou = np.where(iou >= self.iou_threshold, iou, 0.0)
            rows, cols = linear_sum_assignment(-iou)
            good = iou[rows, cols] > 0
            ids[rows[good]] = self._ids[cols[good]]
            matched_tracks[cols[good]] = True
            self._boxes[cols[good]] = boxes[rows[good]]
        new = ids < 0
        ids[new] = self._next_id + np.arange(new.sum())
        self._next_id += int(new.sum())
        self._missed = np.where(matched_tracks, 0, self._missed + 1)
        alive = self._missed <= self.max_age
        self._boxes = np.concatenate([self._boxes[alive], boxes[new]])
        self._ids = np.concatenate([self._ids[alive], ids[new]])
        self._missed = np.concatenate([self._missed[alive], np.zeros(new.sum(), np.int64)])
        return ids
