"""Absolute camera-space pose from a root-relative metric 3D pose and a 2D pose (MeTRAbs).

The metric 3D head knows the pose's shape up to an unknown translation t (camera frame, mm); the
2D head knows where the joints appear in the crop. t is the solution of the linear least-squares
problem that makes the perspective projection of (coords3d_rel + t) match the 2D prediction:
for each joint with normalised image coordinates (u, v) = K^-1 (x, y, 1) and relative coordinates
(X, Y, Z):   tx - u tz = u Z - X   and   ty - v tz = v Z - Y.
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


def is_within_fov(coords2d_px: tf.Tensor, proc_side: int, stride: int,
                  border_factor: float = 0.75) -> tf.Tensor:
    """Whether each 2D point lies inside the crop, at least border_factor*stride px from its edge.

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


def reconstruct_absolute(coords2d_px: tf.Tensor, coords3d_rel_mm: tf.Tensor,
                         intrinsics: tf.Tensor, proc_side: int, stride: int,
                         mix_3d_inside_fov: float | None = 0.5,
                         border_factor: float = 0.75,
                         point_validity: tf.Tensor | None = None) -> tf.Tensor:
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
        mix_3d_inside_fov: weight of the metric estimate for in-view joints, or None.
        border_factor: in-view margin in units of stride (see is_within_fov).
        point_validity: optional [N, J] bool, joints allowed to drive the fit.
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
    translation = reconstruct_translation(uv, rel, weights)
    abs_3d_based = rel + translation[:, None, :]
    if mix_3d_inside_fov is None:
        return abs_3d_based

    depth = abs_3d_based[..., 2:]
    abs_2d_based = tf.concat([uv * depth, depth], axis=-1)
    mixed = mix_3d_inside_fov * abs_3d_based + (1.0 - mix_3d_inside_fov) * abs_2d_based
    use_mix = in_fov & (depth[..., 0] > 1e-3)
    return tf.where(use_mix[..., None], mixed, abs_3d_based)
