"""Softmax and soft-argmax of heatmaps, and the map from heatmap cells to pixels and millimetres.

Layouts (channels last, as the 1x1 conv emits them):
    2D heatmap logits: [N, H, W, J]        (H rows = y, W columns = x)
    3D heatmap logits: [N, H, W, D, J]     (D depth bins, nearest first)
Everything here runs in float32 whatever the input dtype, because a softmax over a few hundred
cells in float16/bfloat16 loses the precision the soft-argmax needs.
"""
from __future__ import annotations

import tensorflow as tf


def _expected_index(probs: tf.Tensor, axis: int) -> tf.Tensor:
    """Expectation of the index along `axis` after summing out the other spatial axes."""
    n = tf.shape(probs)[axis]
    indices = tf.cast(tf.range(n), tf.float32)
    shape = [1] * len(probs.shape)
    shape[axis] = -1
    return tf.reduce_sum(probs * tf.reshape(indices, shape), axis=[
        a for a in range(1, len(probs.shape) - 1)])


def spatial_softmax(logits: tf.Tensor) -> tf.Tensor:
    """Softmax over all axes between batch and joint ([N, ..., J]), float32 result."""
    logits = tf.cast(logits, tf.float32)
    spatial_axes = list(range(1, len(logits.shape) - 1))
    shifted = logits - tf.stop_gradient(tf.reduce_max(logits, axis=spatial_axes, keepdims=True))
    exp = tf.exp(shifted)
    return exp / tf.reduce_sum(exp, axis=spatial_axes, keepdims=True)


def soft_argmax_2d(logits: tf.Tensor) -> tf.Tensor:
    """Soft-argmax of 2D heatmap logits.

    Args:
        logits: [N, H, W, J] any float dtype.
    Returns:
        [N, J, 2] float32 (x, y) in heatmap cell-index units (0 = first cell, W-1 = last).
    """
    probs = spatial_softmax(logits)
    x = _expected_index(probs, axis=2)
    y = _expected_index(probs, axis=1)
    return tf.stack([x, y], axis=-1)


def soft_argmax_3d(logits: tf.Tensor) -> tf.Tensor:
    """Soft-argmax of 3D heatmap logits.

    Args:
        logits: [N, H, W, D, J] any float dtype.
    Returns:
        [N, J, 3] float32 (x, y, z) in cell-index units (z: depth bin index).
    """
    probs = spatial_softmax(logits)
    x = _expected_index(probs, axis=2)
    y = _expected_index(probs, axis=1)
    z = _expected_index(probs, axis=3)
    return tf.stack([x, y, z], axis=-1)


def cells_to_pixels(cell_coords: tf.Tensor, stride: int, centered_stride: bool = True) -> tf.Tensor:
    """Heatmap cell-index coordinates -> crop image pixels.

    With the centred stride, cell i sits at the middle of the stride-wide block of pixels it
    summarises. Pixel coordinates follow the camera module's convention (integer = pixel centre),
    so block i spans pixel centres stride*i .. stride*i + stride - 1 and its middle is
    stride*i + (stride - 1)/2 (15.5, 47.5, ... for stride 32): a uniform heatmap then lands
    exactly on a crop camera's principal point, (side - 1)/2. Otherwise cell i is at stride*i.
    """
    offset = (stride - 1) / 2 if centered_stride else 0.0
    return tf.cast(cell_coords, tf.float32) * float(stride) + offset


def cells_to_metric(cell_coords3d: tf.Tensor, proc_side: int, stride: int, depth: int,
                    box_size_mm: float, centered_stride: bool = True) -> tf.Tensor:
    """3D heatmap cell-index coordinates -> millimetres in the cube around the crop centre.

    The cube is aligned with the camera axes. x and y scale with the crop: the whole crop width
    spans box_size_mm, so the cell centres span (W - 1) * stride * box_size_mm / proc_side
    (1925 mm at 256 px). The D depth bins span the full box_size_mm, bin d at
    (d / (D - 1) - 0.5) * box_size_mm (2200 mm at 314 mm per bin), as the released code's
    linspace(0, 1, D) * box_size does (its offset differs, which only the unknown reference point
    absorbs). The cube centre (crop centre, mid depth) is 0 mm, so the result is relative to an
    unknown reference point that the absolute reconstruction later recovers.

    Args:
        cell_coords3d: [..., 3] (x, y, z) cell indices.
    Returns:
        [..., 3] float32 millimetres, camera-aligned axes, relative to the cube centre.
    """
    cell_coords3d = tf.cast(cell_coords3d, tf.float32)
    xy_px = cells_to_pixels(cell_coords3d[..., :2], stride, centered_stride)
    # Relative to the crop centre, pixel (side - 1)/2 under the pixel-centre convention.
    xy_mm = (xy_px - (proc_side - 1) / 2) / float(proc_side) * box_size_mm
    z_mm = (cell_coords3d[..., 2:] / float(max(depth - 1, 1)) - 0.5) * box_size_mm
    return tf.concat([xy_mm, z_mm], axis=-1)
