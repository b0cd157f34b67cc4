"""Test-time augmentation of crops: which rotations, flips and brightness factors, and merging.

Augmentation i of A (deterministic, so repeated calls agree):
    roll:       0, +d, -d, +2d, -2d, ... with d = max_roll / ceil((A - 1) / 2) (radians; the crop
                camera's roll, the content turns by -roll), so augmentation 0 is the plain crop;
    flip:       odd i (the crop camera is mirrored; predicted left/right labels are swapped back
                with the joint set's mirror permutation, and mapping the camera-frame prediction
                back through the mirrored camera's rotation undoes the coordinate mirror);
    brightness: factor 1, 1 + b, 1 - b repeating.
Results are averaged in the original camera frame (millimetres), where all augmentations agree.
"""
from __future__ import annotations

import math

import tensorflow as tf

DEFAULT_MAX_ROLL_DEG = 20.0
DEFAULT_BRIGHTNESS_DELTA = 0.1


def augmentation_params(num_aug, max_roll_deg: float = DEFAULT_MAX_ROLL_DEG,
                        brightness_delta: float = DEFAULT_BRIGHTNESS_DELTA
                        ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(roll [A] float32 radians, flip [A] bool, brightness [A] float32) for A = num_aug >= 1."""
    num_aug = tf.maximum(tf.cast(num_aug, tf.int32), 1)
    i = tf.range(num_aug)
    steps = tf.cast((i + 1) // 2, tf.float32)
    sign = tf.where(i % 2 == 1, 1.0, -1.0)
    n_levels = tf.maximum(tf.cast((num_aug - 1 + 1) // 2, tf.float32), 1.0)
    roll = sign * steps * (max_roll_deg * math.pi / 180.0) / n_levels
    flip = i % 2 == 1
    brightness = tf.gather(tf.constant([1.0, 1.0 + brightness_delta, 1.0 - brightness_delta]),
                           i % 3)
    return roll, flip, brightness


def adjust_brightness(crops: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """crops [N, H, W, 3] float in [0, 1] times factors [N], clipped to [0, 1]."""
    return tf.clip_by_value(crops * factors[:, None, None, None], 0.0, 1.0)


def unmirror_labels(poses: tf.Tensor, flip: tf.Tensor, mirror_perm: tf.Tensor) -> tf.Tensor:
    """Swaps left/right joint labels [N, J, D] of the flipped crops (flip [N] bool)."""
    mirrored = tf.gather(poses, mirror_perm, axis=1)
    return tf.where(flip[:, None, None], mirrored, poses)


def crop_to_camera(poses_crop: tf.Tensor, rot: tf.Tensor) -> tf.Tensor:
    """[N, J, 3] crop-camera mm -> original camera mm (rot: p_crop = rot @ p_cam, orthonormal)."""
    return tf.einsum('njc,ncr->njr', poses_crop, rot)


def average(poses: tf.Tensor) -> tf.Tensor:
    """[P, A, J, D] -> [P, J, D] mean over augmentations (camera frame)."""
    return tf.reduce_mean(poses, axis=1)


def spread_mm(poses_cam: tf.Tensor) -> tf.Tensor:
    """TTA disagreement [P]: mean over joints of the RMS distance of the A results from their mean
    (mm, camera frame); 0 for A = 1."""
    centred = poses_cam - tf.reduce_mean(poses_cam, axis=1, keepdims=True)
    rms = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(centred), -1), axis=1))
    return tf.reduce_mean(rms, axis=-1)
