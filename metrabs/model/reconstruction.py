"""Absolute camera-space pose from a root-relative metric 3D pose and a 2D pose (MeTRAbs).

The metric 3D head knows the pose's shape up to an unknown translation t (camera frame, mm); the
2D head knows where the joints appear in the crop. t is the solution of the linear least-squares
problem that makes the perspective projection of (coords3d_rel + t) match the 2D prediction:
for each joint with normalised image coordinates (u, v) = K^-1 (x, y, 1) and relative coordinates
(X, Y, Z):   tx - u tz = u Z - X   and   ty - v tz = v Z - Y.
The weak-perspective fit (the released code's choice for the first 500 training steps, while the
two heads do not agree yet) instead matches the spread and centre of the pose: tz = spread(XY) /
spread(uv), (tx, ty) = mean(uv) tz - mean(XY), with the weighted means and RMS spreads.
Everything runs in float32 (inputs are cast) because the 3x3 normal equations need the precision.
"""
from __future__ import annotations

import tensorflow as tf

from metrabs.model import linalg3x3

# Joints outside the field of view (or invalid) keep this tiny weight (on squared residuals) so
# that the normal equations stay non-singular when fewer than two joints are inside the view,
# while an out-of-view joint with a far-off 2D prediction cannot pull the fit.
_OUTSIDE_WEIGHT = 1e-8


def normalized_image_coords(coords2d_px: tf.Tensor, intrinsics: tf.Tensor) -> tf.Tensor:
    """Crop pixels -> normalised image coordinates (the ray through the pixel at depth 1).

    Args:
        coords2d_px: [N, J, 2] crop image pixels.
        intrinsics: [N, 3, 3] the crop camera's intrinsic matrix (no distortion).
    Returns:
        [N, J, 2] float32 (u, v) with (u, v, 1) = K^-1 (x, y, 1).
    """
    coords2d_px = tf.cast(coords2d_px, tf.float32)
    inv_k = linalg3x3.inverse(tf.cast(intrinsics, tf.float32))
    homogeneous = tf.concat([coords2d_px, tf.ones_like(coords2d_px[..., :1])], axis=-1)
    return tf.einsum('njc,nrc->njr', homogeneous, inv_k)[..., :2]


def project(points3d_mm: tf.Tensor, intrinsics: tf.Tensor) -> tf.Tensor:
    """Camera-frame points -> crop pixels: K (X / max(1 mm, Z)), the inverse of
    `normalized_image_coords` (depths below 1 mm are clamped, as the released project_pose does,
    so points behind the camera stay finite).

    Args:
        points3d_mm: [N, J, 3] crop camera frame, mm. intrinsics: [N, 3, 3].
    Returns:
        [N, J, 2] float32 crop px.
    """
    points = tf.cast(points3d_mm, tf.float32)
    normalized = points / tf.maximum(points[..., 2:], 1.0)
    return tf.einsum('njc,nrc->njr', normalized, tf.cast(intrinsics, tf.float32)[:, :2, :])


def is_within_fov(coords2d_px: tf.Tensor, proc_side: int, stride: int,
                  border_factor: float = 0.75) -> tf.Tensor:
    """Whether each 2D point lies inside the crop, at least border_factor*stride px from its edge
    (a negative factor admits points up to -border_factor*stride px outside it).

    Points near the border are unreliable because the 2D soft-argmax cannot reach beyond the
    outermost cell centres. Returns [N, J] bool.
    """
    coords2d_px = tf.cast(coords2d_px, tf.float32)
    # The crop's pixels cover [-0.5, side - 0.5] under the pixel-centre convention.
    lower = -0.5 + stride * border_factor
    upper = proc_side - 0.5 - stride * border_factor
    return tf.reduce_all((coords2d_px >= lower) & (coords2d_px <= upper), axis=-1)


def reconstruct_translation(normalized2d: tf.Tensor, coords3d_rel: tf.Tensor,
                            weights: tf.Tensor) -> tf.Tensor:
    """Weighted least-squares translation aligning the projected 3D pose with the 2D pose.

    Args:
        normalized2d: [N, J, 2] normalised image coordinates (see normalized_image_coords).
        coords3d_rel: [N, J, 3] relative 3D coordinates, camera-aligned axes, mm.
        weights: [N, J] non-negative weight of each joint's two equations.
    Returns:
        [N, 3] float32 translation t (mm, camera frame) minimising
        sum_j w_j * ||A_j t - b_j||^2 with A_j = [[1, 0, -u], [0, 1, -v]], b_j = (uZ - X, vZ - Y).
    """
    uv = tf.cast(normalized2d, tf.float32)
    rel = tf.cast(coords3d_rel, tf.float32)
    w = tf.cast(weights, tf.float32)
    u, v = uv[..., 0], uv[..., 1]
    zeros, ones = tf.zeros_like(u), tf.ones_like(u)
    # A: [N, J, 2 equations, 3 unknowns]; b: [N, J, 2].
    a = tf.stack([tf.stack([ones, zeros, -u], axis=-1),
                  tf.stack([zeros, ones, -v], axis=-1)], axis=-2)
    b = uv * rel[..., 2:] - rel[..., :2]
    ata = tf.einsum('nj,njer,njec->nrc', w, a, a)
    atb = tf.einsum('nj,njer,nje->nr', w, a, b)
    # Jacobi scaling: the tz column has entries ~|u| << 1, the others 1; equalising the diagonal
    # keeps float32 accurate to well below a millimetre.
    scale = tf.math.rsqrt(tf.maximum(linalg3x3.diagonal(ata), 1e-12))
    scaled = ata * scale[:, :, None] * scale[:, None, :]
    # The ridge keeps degenerate inputs (e.g. all joints at one 2D point, as from an untrained
    # net) solvable; on the unit-diagonal system it shifts a typical fit by << 1 mm.
    scaled += 1e-5 * tf.eye(3)
    # Closed-form Cholesky (A^T W A + ridge is SPD): the crop model must convert to TFLite / ONNX,
    # which have no general matrix solve.
    y = linalg3x3.solve_spd(scaled, atb * scale)
    return y * scale


def reconstruct_translation_weak(normalized2d: tf.Tensor, coords3d_rel: tf.Tensor,
                                 weights: tf.Tensor) -> tf.Tensor:
    """Weak-perspective translation: the pose's weighted centre and RMS spread matched in 2D.

    Args/Returns as `reconstruct_translation`: tz = s3 / s2 with s3, s2 the weighted RMS
    distances of the relative XY and of the (u, v) from their weighted means; (tx, ty) =
    mean(uv) * tz - mean(XY); the mean relative Z is subtracted from tz as well, so that the
    pose's mean depth is tz (as the released code does).
    """
    uv = tf.cast(normalized2d, tf.float32)
    rel = tf.cast(coords3d_rel, tf.float32)
    w = tf.cast(weights, tf.float32)[..., None]
    total = tf.maximum(tf.reduce_sum(w, axis=1, keepdims=True), 1e-12)
    mean_uv = tf.reduce_sum(w * uv, axis=1, keepdims=True) / total
    mean_rel = tf.reduce_sum(w * rel, axis=1, keepdims=True) / total

    def spread(points, mean):
        return tf.sqrt(tf.reduce_sum(w * tf.square(points - mean), axis=[1, 2]) / total[:, 0, 0]
                       + 1e-10)

    spread_uv = tf.maximum(spread(uv, mean_uv), 1e-5)
    spread_xy = tf.maximum(spread(rel[..., :2], mean_rel[..., :2]), 1e-5)
    depth = spread_xy / spread_uv
    centre = tf.concat([mean_uv[:, 0] * depth[:, None], depth[:, None]], axis=-1)
    return centre - mean_rel[:, 0]


def reconstruct_absolute(coords2d_px: tf.Tensor, coords3d_rel_mm: tf.Tensor,
                         intrinsics: tf.Tensor, proc_side: int, stride: int,
                         mix_3d_inside_fov=0.5,
                         border_factor: float = 0.75,
                         point_validity: tf.Tensor | None = None,
                         weak_perspective=False) -> tf.Tensor:
    """Absolute camera-space 3D pose from the 2D and the metric relative 3D predictions.

    The translation is fitted on the joints whose 2D prediction is inside the field of view (all
    valid joints when mixing is off). Then, if `mix_3d_inside_fov` is set, each in-view joint with
    positive depth becomes mix * (metric + t) + (1 - mix) * (its 2D ray at the depth of metric + t);
    joints outside the view keep metric + t.

    Args:
        coords2d_px: [N, J, 2] crop image pixels.
        coords3d_rel_mm: [N, J, 3] mm, camera-aligned axes, relative to an unknown reference.
        intrinsics: [N, 3, 3] crop camera intrinsic matrix.
        proc_side, stride: crop side and heatmap stride in pixels (for the field-of-view test).
        mix_3d_inside_fov: weight of the metric estimate for in-view joints: a float, a tensor
            [N] (one weight per example, as training draws them), or None.
        border_factor: in-view margin in units of stride (see is_within_fov).
        point_validity: optional [N, J] bool, joints allowed to drive the fit.
        weak_perspective: fit the translation with `reconstruct_translation_weak` instead of the
            full-perspective least squares: a Python bool or a scalar bool tensor (then tf.cond
            runs only the chosen fit, so the other one's gradient cannot be NaN).
    Returns:
        [N, J, 3] float32 camera-frame coordinates, mm.
    """
    rel = tf.cast(coords3d_rel_mm, tf.float32)
    uv = normalized_image_coords(coords2d_px, intrinsics)
    valid = (tf.ones_like(rel[..., 0], tf.bool) if point_validity is None
             else tf.cast(point_validity, tf.bool))
    if mix_3d_inside_fov is not None:
        in_fov = is_within_fov(coords2d_px, proc_side, stride, border_factor) & valid
        fit_mask = in_fov
    else:
        fit_mask = valid
    weights = tf.where(fit_mask, 1.0, _OUTSIDE_WEIGHT)
    if isinstance(weak_perspective, bool):
        fit = reconstruct_translation_weak if weak_perspective else reconstruct_translation
        translation = fit(uv, rel, weights)
    else:
        translation = tf.cond(
            tf.cast(weak_perspective, tf.bool),
            lambda: reconstruct_translation_weak(uv, rel, weights),
            lambda: reconstruct_translation(uv, rel, weights))
    abs_3d_based = rel + translation[:, None, :]
    if mix_3d_inside_fov is None:
        return abs_3d_based

    depth = abs_3d_based[..., 2:]
    abs_2d_based = tf.concat([uv * depth, depth], axis=-1)
    mix = tf.cast(mix_3d_inside_fov, tf.float32)
    if mix.shape.rank:
        mix = tf.reshape(mix, [-1, 1, 1])
    mixed = mix * abs_3d_based + (1.0 - mix) * abs_2d_based
    use_mix = in_fov & (depth[..., 0] > 1e-3)
    return tf.where(use_mix[..., None], mixed, abs_3d_based)
