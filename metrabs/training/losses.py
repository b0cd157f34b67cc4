"""MeTRAbs training losses: L_meanrel, L_proj, L_abs and their weighted sum.

Labels mark unlabelled joints with NaN. Masks are applied with tf.where *before* any arithmetic
(on both prediction and truth), so an unlabelled joint contributes neither a value nor a NaN
gradient. Every loss is a mean over all labelled (example, joint, coordinate) entries of the
batch; with no labelled entries it is 0.
"""
from __future__ import annotations

import tensorflow as tf

from metrabs.training.config import LossConfig


def labelled_mask(coords: tf.Tensor) -> tf.Tensor:
    """[N, J, C] coordinates with NaN where unlabelled -> [N, J] bool, True if all C are finite."""
    return tf.reduce_all(tf.math.is_finite(tf.cast(coords, tf.float32)), axis=-1)


def _masked_l1(pred: tf.Tensor, true: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean |pred - true| over masked-in joints and all their coordinates; 0 if none."""
    m = mask[..., None]
    diff = tf.where(m, pred, 0.0) - tf.where(m, true, 0.0)
    n_entries = tf.reduce_sum(tf.cast(mask, tf.float32)) * tf.cast(tf.shape(pred)[-1], tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(tf.abs(diff)), n_entries)


def _masked_joint_mean(coords: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Per example mean of the masked-in joints: [N, J, C], [N, J] -> [N, 1, C] (0 if none)."""
    m = mask[..., None]
    total = tf.reduce_sum(tf.where(m, coords, 0.0), axis=1, keepdims=True)
    count = tf.reduce_sum(tf.cast(m, tf.float32), axis=1, keepdims=True)
    return tf.math.divide_no_nan(total, count)


def mean_relative_loss(pred3d_mm: tf.Tensor, true3d_mm: tf.Tensor) -> tf.Tensor:
    """L_meanrel: L1 in metres after centring both poses on the mean of the labelled joints.

    Args:
        pred3d_mm: [N, J, 3] predicted 3D (any common reference; only shape matters), mm.
        true3d_mm: [N, J, 3] true camera-frame 3D, mm, NaN where unlabelled.
    Returns:
        scalar float32, metres.
    """
    pred = tf.cast(pred3d_mm, tf.float32) / 1000.0
    true = tf.cast(true3d_mm, tf.float32) / 1000.0
    mask = labelled_mask(true)
    true = tf.where(mask[..., None], true, 0.0)
    pred_centred = pred - _masked_joint_mean(pred, mask)
    true_centred = true - _masked_joint_mean(true, mask)
    return _masked_l1(pred_centred, true_centred, mask)


def projection_loss(pred2d_px: tf.Tensor, true2d_px: tf.Tensor, crop_side: float) -> tf.Tensor:
    """L_proj: 2D L1 over labelled joints, divided by the crop side (unitless).

    Args:
        pred2d_px: [N, J, 2] predicted crop pixels.
        true2d_px: [N, J, 2] true crop pixels, NaN where unlabelled.
        crop_side: crop side in pixels (proc_side).
    Returns:
        scalar float32.
    """
    pred = tf.cast(pred2d_px, tf.float32) / float(crop_side)
    true = tf.cast(true2d_px, tf.float32) / float(crop_side)
    return _masked_l1(pred, true, labelled_mask(true))


def absolute_loss(pred3d_abs_mm: tf.Tensor, true3d_abs_mm: tf.Tensor) -> tf.Tensor:
    """L_abs: absolute camera-frame 3D L1 in metres over labelled joints.

    Args:
        pred3d_abs_mm, true3d_abs_mm: [N, J, 3] camera frame, mm (truth NaN where unlabelled).
    Returns:
        scalar float32, metres.
    """
    pred = tf.cast(pred3d_abs_mm, tf.float32) / 1000.0
    true = tf.cast(true3d_abs_mm, tf.float32) / 1000.0
    return _masked_l1(pred, true, labelled_mask(true))


def combined_loss(predictions: dict[str, tf.Tensor], true3d_cam_mm: tf.Tensor,
                  true2d_px: tf.Tensor, crop_side: float, step, config: LossConfig = LossConfig()
                  ) -> dict[str, tf.Tensor]:
    """L = L_meanrel + lambda_proj * L_proj + lambda_abs * L_abs (L_abs from the start step on).

    Args:
        predictions: MetrabsModel output: 'coords3d_rel_mm' [N, J, 3], 'coords2d_px' [N, J, 2],
            'coords3d_abs_mm' [N, J, 3].
        true3d_cam_mm: [N, J, 3] camera-frame truth, mm, NaN where unlabelled (all NaN for 2D-only
            examples, which then contribute only L_proj).
        true2d_px: [N, J, 2] truth in crop pixels (projection of the 3D truth, or 2D labels), NaN
            where unlabelled.
        crop_side: crop side in pixels.
        step: current training step (int or scalar tensor).
        config: the loss weights.
    Returns:
        dict with scalar float32 'loss', 'meanrel', 'proj', 'abs'.
    """
    meanrel = mean_relative_loss(predictions['coords3d_rel_mm'], true3d_cam_mm)
    proj = projection_loss(predictions['coords2d_px'], true2d_px, crop_side)
    abs_ = absolute_loss(predictions['coords3d_abs_mm'], true3d_cam_mm)
    abs_weight = tf.where(tf.cast(step, tf.int64) >= config.abs_loss_start_step,
                          tf.constant(config.lambda_abs, tf.float32), 0.0)
    total = meanrel + config.lambda_proj * proj + abs_weight * abs_
    return {'loss': total, 'meanrel': meanrel, 'proj': proj, 'abs': abs_}
