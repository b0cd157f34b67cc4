"""Soft-argmax and heatmap geometry against closed forms and a numpy reference."""
import numpy as np
import pytest
import tensorflow as tf

from metrabs.model import heatmaps

STRIDE, SIDE, DEPTH, BOX = 32, 256, 8, 2200.0


def _delta_logits(shape, index, peak=60.0):
    logits = np.zeros(shape, np.float32)
    logits[index] = peak
    return logits


def test_delta_2d_heatmap_gives_centred_stride_pixel():
    # [N=1, H=8, W=8, J=2]; joint 0 peaks at row 2, col 5; joint 1 at row 7, col 0.
    logits = _delta_logits((1, 8, 8, 2), (0, 2, 5, 0))
    logits[0, 7, 0, 1] = 60.0
    cells = heatmaps.soft_argmax_2d(tf.constant(logits)).numpy()
    np.testing.assert_allclose(cells[0], [[5, 2], [0, 7]], atol=1e-4)
    pixels = heatmaps.cells_to_pixels(cells, STRIDE, centered_stride=True).numpy()
    # Cell centres of an 8x8 map at stride 32 are 15.5, 47.5, ..., 239.5 (pixel-centre convention).
    np.testing.assert_allclose(pixels[0], [[5 * 32 + 15.5, 2 * 32 + 15.5], [15.5, 239.5]], atol=1e-2)
    np.testing.assert_allclose(
        heatmaps.cells_to_pixels(cells, STRIDE, centered_stride=False).numpy()[0],
        [[160, 64], [0, 224]], atol=1e-2)


def test_uniform_heatmaps_give_the_centre():
    cells2d = heatmaps.soft_argmax_2d(tf.zeros([2, 8, 8, 3])).numpy()
    np.testing.assert_allclose(heatmaps.cells_to_pixels(cells2d, STRIDE).numpy(), 127.5, atol=1e-4)
    cells3d = heatmaps.soft_argmax_3d(tf.zeros([2, 8, 8, DEPTH, 3])).numpy()
    np.testing.assert_allclose(cells3d, 3.5, atol=1e-5)
    metric = heatmaps.cells_to_metric(cells3d, SIDE, STRIDE, DEPTH, BOX).numpy()
    np.testing.assert_allclose(metric, 0.0, atol=1e-3)


def test_delta_3d_heatmap_gives_metric_cell_centre():
    # Peak at row y=1, col x=6, depth bin 0 for the only joint.
    logits = _delta_logits((1, 8, 8, DEPTH, 1), (0, 1, 6, 0, 0))
    cells = heatmaps.soft_argmax_3d(tf.constant(logits)).numpy()
    np.testing.assert_allclose(cells[0, 0], [6, 1, 0], atol=1e-4)
    metric = heatmaps.cells_to_metric(cells, SIDE, STRIDE, DEPTH, BOX).numpy()[0, 0]
    # Cell (6, 1) is at pixels (207.5, 47.5); the crop centre is pixel 127.5.
    # Depth bins span the whole box (released: linspace(0, 1, D) * box): bin 0 at -1100 mm.
    expected = [(207.5 - 127.5) / 256 * BOX, (47.5 - 127.5) / 256 * BOX, (0 / 7 - 0.5) * BOX]
    np.testing.assert_allclose(metric, expected, atol=0.05)
    assert expected[2] == pytest.approx(-1100.0)
    last = heatmaps.cells_to_metric(np.array([[[0, 0, DEPTH - 1]]], np.float32), SIDE, STRIDE,
                                    DEPTH, BOX).numpy()[0, 0, 2]
    assert last - expected[2] == pytest.approx(BOX, abs=0.05)  # 2200 mm span, 314 mm per bin


def test_soft_argmax_matches_numpy_expectation_and_is_float32():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 5, 6, 2)).astype(np.float32) * 3
    flat = logits.reshape(3, -1, 2)
    probs = np.exp(flat - flat.max(1, keepdims=True))
    probs = (probs / probs.sum(1, keepdims=True)).reshape(logits.shape)
    yy, xx, zz = np.meshgrid(np.arange(4), np.arange(5), np.arange(6), indexing='ij')
    expected = np.stack([np.einsum('nhwdj,hwd->nj', probs, g) for g in (xx, yy, zz)], -1)
    result = heatmaps.soft_argmax_3d(tf.constant(logits, tf.bfloat16))
    assert result.dtype == tf.float32
    np.testing.assert_allclose(heatmaps.soft_argmax_3d(tf.constant(logits)).numpy(), expected,
                               atol=1e-5)
    # bfloat16 inputs are rounded once, then everything runs in float32.
    np.testing.assert_allclose(result.numpy(), expected, atol=0.05)
