"""MeTRAbs losses against hand-computed numbers, with NaN joints and gradient checks."""
import numpy as np
import pytest
import tensorflow as tf

from metrabs.training import losses
from metrabs.training.config import LossConfig

NAN = np.nan


def _case():
    # One example, three joints; joint 2 is unlabelled.
    true3d = np.array([[[0, 0, 0], [1000, 0, 0], [NAN, NAN, NAN]]], np.float32)
    pred_rel = np.array([[[100, 0, 0], [1300, 0, 0], [5000, 5000, 5000]]], np.float32)
    pred_abs = np.array([[[0, 0, 1000], [1000, 0, 0], [7, 7, 7]]], np.float32)
    true2d = np.array([[[64, 128], [0, 0], [NAN, NAN]]], np.float32)
    pred2d = np.array([[[128, 128], [0, 0], [99, 99]]], np.float32)
    return true3d, pred_rel, pred_abs, true2d, pred2d


def test_mean_relative_loss_hand_computed():
    true3d, pred_rel, *_ = _case()
    # Labelled means: truth (500, 0, 0), prediction (700, 0, 0). Centred: truth -500 / +500,
    # prediction -600 / +600 in x -> |diff| 0.1 m twice over 6 labelled entries.
    loss = losses.mean_relative_loss(pred_rel, true3d).numpy()
    assert loss == pytest.approx(0.2 / 6, abs=1e-6)


def test_projection_and_absolute_losses_hand_computed():
    true3d, _, pred_abs, true2d, pred2d = _case()
    # |128 - 64| / 256 = 0.25 over 4 labelled entries.
    assert losses.projection_loss(pred2d, true2d, 256).numpy() == pytest.approx(0.0625, abs=1e-7)
    # |1000 - 0| mm = 1 m over 6 labelled entries.
    assert losses.absolute_loss(pred_abs, true3d).numpy() == pytest.approx(1 / 6, abs=1e-6)


def test_combined_loss_switches_on_abs_at_start_step():
    true3d, pred_rel, pred_abs, true2d, pred2d = _case()
    preds = {'coords3d_rel_mm': pred_rel, 'coords2d_px': pred2d, 'coords3d_abs_mm': pred_abs}
    cfg = LossConfig(lambda_proj=0.2, lambda_abs=0.1, abs_loss_start_step=5000)
    before = losses.combined_loss(preds, true3d, true2d, 256, step=4999, config=cfg)
    after = losses.combined_loss(preds, true3d, true2d, 256, step=tf.constant(5000), config=cfg)
    assert before['loss'].numpy() == pytest.approx(0.2 / 6 + 0.2 * 0.0625, abs=1e-6)
    assert after['loss'].numpy() == pytest.approx(0.2 / 6 + 0.2 * 0.0625 + 0.1 / 6, abs=1e-6)
    assert after['abs'].numpy() == pytest.approx(1 / 6, abs=1e-6)


def test_gradients_finite_and_zero_for_unlabelled_joints():
    true3d, pred_rel, pred_abs, true2d, pred2d = _case()
    # A 2D-only example (all 3D NaN) and a fully unlabelled one join the batch.
    true3d = np.concatenate([true3d, np.full((2, 3, 3), NAN, np.float32)])
    true2d = np.concatenate([true2d, [[[10, 10], [NAN, NAN], [NAN, NAN]]],
                             np.full((1, 3, 2), NAN, np.float32)])
    variables = [tf.Variable(np.concatenate([x] * 3)) for x in (pred_rel, pred2d, pred_abs)]
    with tf.GradientTape() as tape:
        preds = dict(zip(['coords3d_rel_mm', 'coords2d_px', 'coords3d_abs_mm'], variables))
        out = losses.combined_loss(preds, true3d, true2d, 256, step=10_000)
    grads = tape.gradient(out['loss'], variables)
    for g in grads:
        assert np.all(np.isfinite(g.numpy()))
    g_rel, g_2d, g_abs = (g.numpy() for g in grads)
    assert np.all(g_rel[:, 2] == 0) and np.all(g_rel[1:] == 0) and np.any(g_rel[0] != 0)
    assert np.all(g_abs[:, 2] == 0) and np.all(g_abs[1:] == 0)
    # The 2D-only example contributes through L_proj only (its labelled joint 0).
    assert np.any(g_2d[1, 0] != 0) and np.all(g_2d[1, 1:] == 0) and np.all(g_2d[2] == 0)
    # 2D loss now averages over 4 + 2 labelled entries: |64| / 256 + |118| / 256 * 2.
    assert out['proj'].numpy() == pytest.approx((64 + 2 * 118) / 256 / 6, abs=1e-6)


def test_all_unlabelled_batch_gives_zero_and_finite_gradients():
    pred = tf.Variable(tf.ones([2, 4, 3]))
    true = tf.fill([2, 4, 3], float('nan'))
    with tf.GradientTape() as tape:
        loss = losses.mean_relative_loss(pred, true) + losses.absolute_loss(pred, true)
    assert loss.numpy() == 0.0
    assert np.all(tape.gradient(loss, pred).numpy() == 0)


def test_loss_gradient_matches_hand_derivative():
    # L_abs = mean |p - t| / 1000 over 6 entries -> dL/dp = sign(p - t) / 6000 per entry.
    true3d, _, pred_abs, *_ = _case()
    p = tf.Variable(pred_abs)
    with tf.GradientTape() as tape:
        loss = losses.absolute_loss(p, true3d)
    g = tape.gradient(loss, p).numpy()[0]
    np.testing.assert_allclose(g[0], [0, 0, 1 / 6000], atol=1e-9)
    np.testing.assert_allclose(g[2], 0.0)
