"""Pose plausibility (bone lengths, left/right symmetry, TTA agreement) and pose-level NMS.

All in TF so it runs inside the exported SavedModel. Poses are camera-frame millimetres.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the plausibility test and the pose NMS.

    Attributes:
        min_bone_mm, max_bone_mm: every bone must be this long (mm); catches collapsed and
            exploded poses whatever the skeleton.
        max_symmetry_ratio: the longer of a left/right bone pair may be at most this times the
            shorter one (human bodies are close to symmetric).
        max_relative_bone_error: with dataset bone statistics, each bone / its mean length,
            divided by the pose's median such ratio (removes overall body size), must be within
            1 +- this.
        size_range: with statistics, the median ratio (the person's size relative to the
            dataset mean) must lie in this range.
        max_tta_spread_mm: mean per-joint RMS disagreement of the augmentations (tta.spread_mm).
        nms_distance_fraction: two poses' joints coincide when closer than this fraction of the
            larger side of the higher-scoring pose's box (image px).
        nms_overlap_threshold: a pose is suppressed when this fraction of its joints coincide
            with a higher-scoring kept pose.
    """

    min_bone_mm: float = 5.0
    max_bone_mm: float = 1000.0
    max_symmetry_ratio: float = 1.6
    max_relative_bone_error: float = 0.6
    size_range: tuple[float, float] = (0.4, 1.8)
    max_tta_spread_mm: float = 250.0
    nms_distance_fraction: float = 0.1
    nms_overlap_threshold: float = 0.5


def mirror_edge_pairs(edges: np.ndarray, mirror_perm: np.ndarray) -> np.ndarray:
    """[K, 2] indices into `edges` of (bone, its left/right mirror) pairs, each pair once."""
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    lookup = {frozenset(map(int, e)): i for i, e in enumerate(edges)}
    pairs = []
    for i, (a, b) in enumerate(edges):
        j = lookup.get(frozenset((int(mirror_perm[a]), int(mirror_perm[b]))))
        if j is not None and j > i:
            pairs.append((i, j))
    return np.array(pairs, np.int64).reshape(-1, 2)


def bone_lengths(poses: tf.Tensor, edges: tf.Tensor) -> tf.Tensor:
    """[..., J, 3] mm, edges [E, 2] -> [..., E] mm."""
    edges = tf.reshape(tf.cast(edges, tf.int32), [-1, 2])
    a = tf.gather(poses, edges[:, 0], axis=-2)
    b = tf.gather(poses, edges[:, 1], axis=-2)
    return tf.norm(a - b, axis=-1)


def is_plausible(poses_cam: tf.Tensor, edges: tf.Tensor, symmetric_pairs: tf.Tensor,
                 mean_bone_mm: tf.Tensor, tta_spread: tf.Tensor,
                 config: FilterConfig = FilterConfig()) -> tf.Tensor:
    """[P] bool: whether each pose [P, J, 3] (mm) passes every test.

    Args:
        edges: [E, 2] int bones of the joint set.
        symmetric_pairs: [K, 2] int indices into edges (mirror_edge_pairs).
        mean_bone_mm: [E] dataset mean bone lengths; NaN where unknown (all NaN: test skipped).
        tta_spread: [P] tta.spread_mm of the augmentations.
    """
    poses_cam = tf.cast(poses_cam, tf.float32)
    mean_bone_mm = tf.cast(mean_bone_mm, tf.float32)
    tta_spread = tf.cast(tta_spread, tf.float32)
    symmetric_pairs = tf.reshape(tf.cast(symmetric_pairs, tf.int32), [-1, 2])
    lengths = bone_lengths(poses_cam, edges)
    ok = tf.reduce_all((lengths >= config.min_bone_mm) & (lengths <= config.max_bone_mm), -1)

    left = tf.gather(lengths, symmetric_pairs[:, 0], axis=-1)
    right = tf.gather(lengths, symmetric_pairs[:, 1], axis=-1)
    ratio = tf.maximum(left, right) / tf.maximum(tf.minimum(left, right), 1e-3)
    ok &= tf.reduce_all(ratio <= config.max_symmetry_ratio, -1)

    known = tf.math.is_finite(mean_bone_mm)
    rel = tf.boolean_mask(lengths, known, axis=1) / tf.boolean_mask(mean_bone_mm, known)
    has_stats = tf.shape(rel)[1] > 0
    median = _median(rel)
    rel_err = tf.abs(rel / median[:, None] - 1.0)
    stats_ok = (tf.reduce_all(rel_err <= config.max_relative_bone_error, -1)
                & (median >= config.size_range[0]) & (median <= config.size_range[1]))
    ok &= tf.logical_or(tf.logical_not(has_stats), stats_ok)
    ok &= tta_spread <= config.max_tta_spread_mm
    return ok & tf.reduce_all(tf.math.is_finite(poses_cam), axis=[1, 2])


def _median(values: tf.Tensor) -> tf.Tensor:
    """Median along the last axis of [P, K] (1.0 where K = 0)."""
    k = tf.shape(values)[1]

    def median():
        sorted_values = tf.sort(values, axis=-1)
        lower = tf.gather(sorted_values, (k - 1) // 2, axis=1)
        upper = tf.gather(sorted_values, k // 2, axis=1)
        return (lower + upper) / 2

    return tf.cond(k > 0, median, lambda: tf.ones(tf.shape(values)[:1], values.dtype))


def pose_overlaps(poses2d: tf.Tensor, boxes: tf.Tensor, distance_fraction: float) -> tf.Tensor:
    """[P, P] fraction of joints of pose i within distance_fraction x box size of pose j's.

    poses2d [P, J, 2] image px; boxes [P, >=4] xywh px (the threshold uses the larger box side of
    the two, so the measure is symmetric).
    """
    poses2d = tf.cast(poses2d, tf.float32)
    boxes = tf.cast(boxes, tf.float32)
    diff = poses2d[:, None] - poses2d[None, :]
    dist = tf.norm(diff, axis=-1)
    size = tf.reduce_max(boxes[:, 2:4], axis=-1)
    threshold = distance_fraction * tf.maximum(size[:, None], size[None, :])
    return tf.reduce_mean(tf.cast(dist < threshold[..., None], tf.float32), axis=-1)


def pose_nms(poses2d: tf.Tensor, boxes: tf.Tensor, scores: tf.Tensor,
             config: FilterConfig = FilterConfig()) -> tf.Tensor:
    """Greedy pose-level NMS: indices [K] int32 of kept poses, by decreasing score."""
    overlaps = pose_overlaps(poses2d, boxes, config.nms_distance_fraction)
    scores = tf.cast(scores, tf.float32)
    return tf.image.non_max_suppression_overlaps(
        overlaps, scores, max_output_size=tf.shape(scores)[0],
        overlap_threshold=config.nms_overlap_threshold, score_threshold=float('-inf'))
