"""MeTRAbs training losses, computed on the reconstructed absolute pose as the released code does
(metrabs_tf/models/metrabs.py, compute_loss_with_3d_gt and compte_loss_with_2d_gt).

Every term below is a function of the absolute camera-frame prediction P (the reconstruction of
metrabs.model.reconstruction with a per-example mix in training) and its projection
p = K (P / max(1 mm, P_z)):

3D-labelled rows (truth X, camera frame mm; joint j counts where labelled):
    meanrel: |(P - mean_valid P) - (X - mean_valid X)| / 1000          (metres, per coordinate)
    proj:    |p - x| * box_size_mm / proc_side / 1000                   (per coordinate), counted
             where additionally X_z > 300 mm, p lies inside the crop at least 0.75 stride from
             its border, P_z > 1 mm, and x = proj(X) lies within 20 strides of the crop
    abs:     (|dX| + |dY| + min(1, 10 m / |X_z|) |dZ|) / 3 / 1000      (per joint), counted where
             X_z > 300 mm (equal to the released (2 |dxy| + s |dz|) / 3 averaged over x and y)
2D-only rows (labels y_k of the K base names, crop px; metrabs.data.labels2d):
    proj2d:  |G p - y| * box_size_mm / proc_side / 1000, with G [K, J] the base-name averaging
             matrix, counted where y_k is labelled, (G p)_k lies inside the crop 0.75 stride from
             the border and y_k within 20 strides of it.
Each term is the mean over its own counted entries (so 3D rows and 2D-only rows are normalised
separately, and an example weighs in proportion to its counted joints); the total is
    meanrel + proj_weight * proj + lambda_abs(step) * abs + loss2d_factor * proj2d
with lambda_abs 0 before LossConfig.abs_loss_start_step.

The functions return (sum, count) pairs so that the training step can divide by the global count
over all replicas. Masks are applied with tf.where before any arithmetic, so an unlabelled joint
contributes neither a value nor a NaN gradient.

`mean_relative_loss` and `projection_loss` are the plain L1 terms the ACAE fine-tuning terms reuse
(metrabs.training.consistency).
"""
from __future__ import annotations

import tensorflow as tf

from metrabs.model import reconstruction
from metrabs.training.config import LossConfig

TERMS = ('meanrel', 'proj', 'abs', 'proj2d')


def labelled_mask(coords: tf.Tensor) -> tf.Tensor:
    """[N, J, C] coordinates with NaN where unlabelled -> [N, J] bool, True if all C are finite."""
    return tf.reduce_all(tf.math.is_finite(tf.cast(coords, tf.float32)), axis=-1)


def _masked_sum(values: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(sum of values[mask], number of entries) for values [N, J, C] (already finite where
    masked in) and mask [N, J]; each joint counts C entries."""
    m = tf.cast(mask, tf.float32)[..., None]
    total = tf.reduce_sum(tf.where(m > 0, values, 0.0))
    count = tf.reduce_sum(m) * tf.cast(tf.shape(values)[-1], tf.float32)
    return total, count


def _masked_l1(pred: tf.Tensor, true: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean |pred - true| over masked-in joints and all their coordinates; 0 if none."""
    m = mask[..., None]
    diff = tf.where(m, pred, 0.0) - tf.where(m, true, 0.0)
    total, count = _masked_sum(tf.abs(diff), mask)
    return tf.math.divide_no_nan(total, count)


def _masked_joint_mean(coords: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Per example mean of the masked-in joints: [N, J, C], [N, J] -> [N, 1, C] (0 if none)."""
    m = mask[..., None]
    total = tf.reduce_sum(tf.where(m, coords, 0.0), axis=1, keepdims=True)
    count = tf.reduce_sum(tf.cast(m, tf.float32), axis=1, keepdims=True)
    return tf.math.divide_no_nan(total, count)


def mean_relative_loss(pred3d_mm: tf.Tensor, true3d_mm: tf.Tensor) -> tf.Tensor:
    """Mean-centred L1 in metres over the labelled joints (the meanrel term as a mean).

    Args:
        pred3d_mm: [N, J, 3] predicted 3D (any common reference; only shape matters), mm.
        true3d_mm: [N, J, 3] true camera-frame 3D, mm, NaN where unlabelled.
    Returns:
        scalar float32, metres.
    """
    total, count = meanrel_term(pred3d_mm, true3d_mm)
    return tf.math.divide_no_nan(total, count)


def projection_loss(pred2d_px: tf.Tensor, true2d_px: tf.Tensor, crop_side: float) -> tf.Tensor:
    """2D L1 over labelled joints, divided by the crop side (unitless), ungated.

    Args:
        pred2d_px: [N, J, 2] predicted crop pixels.
        true2d_px: [N, J, 2] true crop pixels, NaN where unlabelled.
        crop_side: crop side in pixels (proc_side).
    """
    pred = tf.cast(pred2d_px, tf.float32) / float(crop_side)
    true = tf.cast(true2d_px, tf.float32) / float(crop_side)
    return _masked_l1(pred, true, labelled_mask(true))


def meanrel_term(pred3d_mm: tf.Tensor, true3d_mm: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(sum, count) of the meanrel term (module docstring), metres."""
    pred = tf.cast(pred3d_mm, tf.float32) / 1000.0
    true = tf.cast(true3d_mm, tf.float32) / 1000.0
    mask = labelled_mask(true)
    true = tf.where(mask[..., None], true, 0.0)
    pred_centred = pred - _masked_joint_mean(pred, mask)
    true_centred = true - _masked_joint_mean(true, mask)
    return _masked_sum(tf.abs(pred_centred - true_centred), mask)


def absolute_term(pred3d_abs_mm: tf.Tensor, true3d_abs_mm: tf.Tensor, config: LossConfig
                  ) -> tuple[tf.Tensor, tf.Tensor]:
    """(sum, count) of the abs term (module docstring), metres; entries are coordinates."""
    pred = tf.cast(pred3d_abs_mm, tf.float32)
    true = tf.cast(true3d_abs_mm, tf.float32)
    mask = labelled_mask(true)
    true = tf.where(mask[..., None], true, 0.0)
    mask &= true[..., 2] > config.min_depth_mm
    depth = tf.maximum(tf.abs(true[..., 2:]), 1.0)
    far_scale = tf.minimum(1.0, config.far_depth_mm / depth)
    diff = tf.abs(pred - true) * tf.concat([tf.ones_like(far_scale), tf.ones_like(far_scale),
                                            far_scale], axis=-1)
    return _masked_sum(diff / 1000.0, mask)


def _scale_2d(proc_side: int, box_size_mm: float) -> float:
    """Metres per crop pixel at the heatmap cube's scale (the released scale_2d)."""
    return box_size_mm / proc_side / 1000.0


def projection_term(pred3d_abs_mm: tf.Tensor, true3d_abs_mm: tf.Tensor, intrinsics: tf.Tensor,
                    proc_side: int, stride: int, box_size_mm: float, config: LossConfig
                    ) -> tuple[tf.Tensor, tf.Tensor]:
    """(sum, count) of the proj term of 3D-labelled rows (module docstring)."""
    pred = tf.cast(pred3d_abs_mm, tf.float32)
    true = tf.cast(true3d_abs_mm, tf.float32)
    mask = labelled_mask(true)
    true = tf.where(mask[..., None], true, tf.constant([0.0, 0.0, 1000.0]))
    pred2d = reconstruction.project(pred, intrinsics)
    true2d = reconstruction.project(true, intrinsics)
    mask &= true[..., 2] > config.min_depth_mm
    mask &= reconstruction.is_within_fov(pred2d, proc_side, stride, config.fov_border_factor)
    mask &= pred[..., 2] > 1.0
    mask &= reconstruction.is_within_fov(true2d, proc_side, stride, config.near_fov_border_factor)
    diff = tf.abs(tf.where(mask[..., None], pred2d - true2d, 0.0))
    return _masked_sum(diff * _scale_2d(proc_side, box_size_mm), mask)


def projection_term_2d(pred3d_abs_mm: tf.Tensor, labels2d_px: tf.Tensor, groups: tf.Tensor,
                       intrinsics: tf.Tensor, proc_side: int, stride: int, box_size_mm: float,
                       config: LossConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """(sum, count) of the proj2d term of 2D-only rows (module docstring).

    Args:
        pred3d_abs_mm: [N, J, 3] camera frame, mm. labels2d_px: [N, K, 2] crop px, NaN where
        unlabelled. groups: [K, J] base-name averaging matrix (metrabs.data.labels2d).
    """
    labels = tf.cast(labels2d_px, tf.float32)
    mask = labelled_mask(labels)
    labels = tf.where(mask[..., None], labels, 0.0)
    pred2d = reconstruction.project(tf.cast(pred3d_abs_mm, tf.float32), intrinsics)
    pred_groups = tf.einsum('kj,njc->nkc', tf.cast(groups, tf.float32), pred2d)
    mask &= reconstruction.is_within_fov(pred_groups, proc_side, stride, config.fov_border_factor)
    mask &= reconstruction.is_within_fov(labels, proc_side, stride, config.near_fov_border_factor)
    diff = tf.abs(tf.where(mask[..., None], pred_groups - labels, 0.0))
    return _masked_sum(diff * _scale_2d(proc_side, box_size_mm), mask)


def loss_terms(pred3d_abs_mm: tf.Tensor, intrinsics: tf.Tensor, true3d_cam_mm: tf.Tensor,
               labels2d_px: tf.Tensor, groups: tf.Tensor, proc_side: int, stride: int,
               box_size_mm: float, config: LossConfig = LossConfig()
               ) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
    """{term: (sum, count)} for TERMS (module docstring).

    Args:
        pred3d_abs_mm: [N, J, 3] the model's absolute output (crop camera frame, mm).
        intrinsics: [N, 3, 3] crop camera K.
        true3d_cam_mm: [N, J, 3] camera-frame truth, mm, NaN where unlabelled (all NaN on
            2D-only rows).
        labels2d_px: [N, K, 2] 2D-only labels, crop px, NaN where unlabelled (all NaN on 3D rows).
        groups: [K, J] base-name averaging matrix.
        proc_side, stride, box_size_mm: the model's geometry (ModelConfig).
    """
    return {
        'meanrel': meanrel_term(pred3d_abs_mm, true3d_cam_mm),
        'proj': projection_term(pred3d_abs_mm, true3d_cam_mm, intrinsics, proc_side, stride,
                                box_size_mm, config),
        'abs': absolute_term(pred3d_abs_mm, true3d_cam_mm, config),
        'proj2d': projection_term_2d(pred3d_abs_mm, labels2d_px, groups, intrinsics, proc_side,
                                     stride, box_size_mm, config),
    }


def term_weights(step, config: LossConfig = LossConfig()) -> dict[str, tf.Tensor]:
    """The weight of each term at `step` (int or scalar tensor): abs is 0 before
    config.abs_loss_start_step."""
    abs_weight = tf.where(tf.cast(step, tf.int64) >= config.abs_loss_start_step,
                          tf.constant(config.lambda_abs, tf.float32), 0.0)
    return {'meanrel': tf.constant(1.0), 'proj': tf.constant(config.proj_weight, tf.float32),
            'abs': abs_weight, 'proj2d': tf.constant(config.loss2d_factor, tf.float32)}


def combined_loss(terms: dict[str, tuple[tf.Tensor, tf.Tensor]], step,
                  config: LossConfig = LossConfig()) -> dict[str, tf.Tensor]:
    """One device's total loss: each term's mean over its counted entries, weighted.

    Returns:
        dict with scalar float32 'loss' and the unweighted mean of each term of TERMS.
    """
    weights = term_weights(step, config)
    means = {k: tf.math.divide_no_nan(total, count) for k, (total, count) in terms.items()}
    means['loss'] = tf.add_n([weights[k] * means[k] for k in TERMS])
    return means
