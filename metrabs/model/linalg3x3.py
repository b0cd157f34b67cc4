"""3x3 linear algebra in closed form, from elementwise TF ops only.

The crop model must convert to TFLite (builtin ops) and ONNX: `tf.linalg.inv`, `tf.linalg.solve`
and `tf.linalg.diag_part` have no TFLite builtin (they need the Flex delegate, or fail) and
tf2onnx has no ONNX equivalent for MatrixInverse / MatrixSolve. Closed forms for 3x3 systems use
only multiply, add, divide and sqrt, which every converter and runtime (TF-TRT included) runs.
"""
from __future__ import annotations

import tensorflow as tf

# Floor of the Cholesky pivots: a pivot this small means the system was singular to float32
# precision anyway; the floor keeps sqrt and the divisions finite (also their gradients).
_MIN_PIVOT = 1e-20


def diagonal(m: tf.Tensor) -> tf.Tensor:
    """[..., 3, 3] -> [..., 3], the main diagonal."""
    return tf.stack([m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], axis=-1)


def inverse(m: tf.Tensor) -> tf.Tensor:
    """[..., 3, 3] -> [..., 3, 3] inverse by the adjugate over the determinant.

    Exact up to round-off for well-conditioned matrices such as camera intrinsics (any invertible
    3x3, no structure assumed); a singular matrix gives inf/NaN, as tf.linalg.inv would fail.
    """
    a, b, c = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    d, e, f = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    g, h, i = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Cofactors of the first row give the determinant and the first column of the adjugate.
    co_a, co_b, co_c = e * i - f * h, f * g - d * i, d * h - e * g
    det = a * co_a + b * co_b + c * co_c
    adjugate = tf.stack([
        tf.stack([co_a, c * h - b * i, b * f - c * e], axis=-1),
        tf.stack([co_b, a * i - c * g, c * d - a * f], axis=-1),
        tf.stack([co_c, b * g - a * h, a * e - b * d], axis=-1)], axis=-2)
    return adjugate / det[..., None, None]


def solve_spd(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """x with a @ x = b for symmetric positive definite a [..., 3, 3], b [..., 3] -> [..., 3].

    Unrolled Cholesky (a = L L^T) and two triangular solves: backward stable for SPD matrices
    without pivoting, like LAPACK's potrs. Only the lower triangle of a is read.
    """
    a00, a10, a11 = a[..., 0, 0], a[..., 1, 0], a[..., 1, 1]
    a20, a21, a22 = a[..., 2, 0], a[..., 2, 1], a[..., 2, 2]
    l00 = tf.sqrt(tf.maximum(a00, _MIN_PIVOT))
    l10, l20 = a10 / l00, a20 / l00
    l11 = tf.sqrt(tf.maximum(a11 - l10 * l10, _MIN_PIVOT))
    l21 = (a21 - l20 * l10) / l11
    l22 = tf.sqrt(tf.maximum(a22 - l20 * l20 - l21 * l21, _MIN_PIVOT))
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    y0 = b0 / l00
    y1 = (b1 - l10 * y0) / l11
    y2 = (b2 - l20 * y0 - l21 * y1) / l22
    x2 = y2 / l22
    x1 = (y1 - l21 * x2) / l11
    x0 = (y0 - l10 * x1 - l20 * x2) / l00
    return tf.stack([x0, x1, x2], axis=-1)
