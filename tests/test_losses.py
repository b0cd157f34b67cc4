"""MeTRAbs losses (on the absolute output, with the released gates) against hand-computed numbers,
with NaN joints and gradient checks."""
import numpy as np
import pytest
import tensorflow as tf

from metrabs.data import labels2d
from metrabs.training import losses
from metrabs.training.config import LossConfig

NAN = np.nan
SIDE, STRIDE, BOX = 256, 32, 2200.0
SCALE_2D = BOX / SIDE / 1000  # metres per pixel
K = np.array([[[256, 0, 127.5], [0, 256, 127.5], [0, 0, 1]]], np.float32)


def _mean(pair):
    total, count = pair
    return float(total) / float(count) if float(count) else 0.0


def test_mean_relative_term_hand_computed():
    # Joint 2 unlabelled. Labelled means: truth (500, 0, 0), prediction (700, 0, 0). Centred:
    # truth -500 / +500, prediction -600 / +600 in x -> |diff| 0.1 m twice over 6 entries.
    true3d = np.array([[[0, 0, 0], [1000, 0, 0], [NAN, NAN, NAN]]], np.float32)
    pred = np.array([[[100, 0, 0], [1300, 0, 0], [5000, 5000, 5000]]], np.float32)
    total, count = losses.meanrel_term(pred, true3d)
    assert (float(total), float(count)) == pytest.approx((0.2, 6))
    assert losses.mean_relative_loss(pred, true3d).numpy() == pytest.approx(0.2 / 6, abs=1e-6)


def test_absolute_term_gates_near_joints_and_scales_far_depth():
    true3d = np.array([[[0, 0, 2000], [0, 0, 20000], [0, 0, 200], [NAN, NAN, NAN]]], np.float32)
    pred = np.array([[[100, 0, 2300], [0, 200, 22000], [999, 999, 999], [5, 5, 5]]], np.float32)
    total, count = losses.absolute_term(pred, true3d, LossConfig())
    # Joint 0: (0.1, 0, 0.3) m. Joint 1 at 20 m: depth error 2 m x min(1, 10 / 20) = 1 m, so
    # (0, 0.2, 1.0). Joint 2 is nearer than 300 mm, joint 3 unlabelled.
    assert float(count) == 6
    assert float(total) == pytest.approx(0.1 + 0.3 + 0.2 + 1.0, abs=1e-5)
    # The released form (2 |dxy| + s |dz|) / 3 averaged over x and y gives the same mean.
    released = np.mean([(2 * 0.1 + 0.3) / 3, (2 * 0 + 0.3) / 3, (2 * 0 + 1.0) / 3,
                        (2 * 0.2 + 1.0) / 3])
    assert _mean((total, count)) == pytest.approx(released, abs=1e-6)


def test_projection_term_scale_and_gates():
    true3d = np.array([[
        [0, 0, 2000],          # counted: predicted 11.13 px off in x
        [0, 0, 2000],          # prediction 10 px from the border: not in view
        [8000, 0, 2000],       # truth 1024 px right of the centre: beyond 20 strides
        [0, 0, 250],           # truth nearer than 300 mm
        [NAN, NAN, NAN]]], np.float32)
    pred = np.array([[
        [100, 0, 2300],
        [-(127.5 - 10) / 256 * 2000, 0, 2000],
        [0, 0, 2000],
        [0, 0, 2000],
        [0, 0, 2000]]], np.float32)
    total, count = losses.projection_term(pred, true3d, K, SIDE, STRIDE, BOX, LossConfig())
    assert float(count) == 2
    assert float(total) == pytest.approx(256 * 100 / 2300 * SCALE_2D, rel=1e-5)


def test_projection_term_2d_supervises_base_name_means():
    names = ['lsho_a', 'lsho_b', 'nose_a', 'lhip_b']
    names_2d = ('lsho', 'nose', 'lhip')
    groups = labels2d.group_matrix(names, names_2d)
    np.testing.assert_allclose(groups, [[0.5, 0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    pred = np.array([[[0, 0, 2000], [200, 0, 2000], [-2000, 0, 2000], [0, 0, 2000]]],
                    np.float32)
    # lsho: mean of 127.5 and 127.5 + 25.6 px = 140.3; label 130 -> 10.3 px.
    # nose: its joint projects to -128.5 px, outside the view: not counted.
    # lhip: label 2000 px away, beyond 20 strides: not counted.
    labels = np.array([[[130, 127.5], [0, 127.5], [2000, 127.5]]], np.float32)
    total, count = losses.projection_term_2d(pred, labels, groups, K, SIDE, STRIDE, BOX,
                                             LossConfig())
    assert float(count) == 2
    assert float(total) == pytest.approx(10.3 * SCALE_2D, rel=1e-4)


def test_combined_loss_weights_and_abs_switch():
    terms = {'meanrel': (tf.constant(0.6), tf.constant(6.0)),
             'proj': (tf.constant(0.4), tf.constant(4.0)),
             'abs': (tf.constant(3.0), tf.constant(6.0)),
             'proj2d': (tf.constant(1.0), tf.constant(2.0))}
    cfg = LossConfig(lambda_abs=0.1, abs_loss_start_step=5000, loss2d_factor=0.2)
    before = losses.combined_loss(terms, 4999, cfg)
    after = losses.combined_loss(terms, tf.constant(5000), cfg)
    assert before['loss'].numpy() == pytest.approx(0.1 + 0.1 + 0.2 * 0.5, abs=1e-6)
    assert after['loss'].numpy() == pytest.approx(0.1 + 0.1 + 0.1 * 0.5 + 0.2 * 0.5, abs=1e-6)
    assert after['abs'].numpy() == pytest.approx(0.5)


def _batch():
    # Row 0: 3D, joints 0-1 labelled. Row 1: 2D-only, 'j0' labelled. Row 2: nothing labelled.
    true3d = np.full((3, 3, 3), NAN, np.float32)
    true3d[0, :2] = [[0, 0, 3000], [300, 0, 3000]]
    labels = np.full((3, 3, 2), NAN, np.float32)
    labels[1, 0] = [120, 120]
    pred = np.tile(np.array([[[20, 10, 3100], [250, 30, 2900], [0, 0, 3000]]], np.float32),
                   (3, 1, 1))
    return true3d, labels, pred


def test_gradients_finite_and_zero_for_unlabelled_joints():
    true3d, labels, pred = _batch()
    groups = labels2d.group_matrix(['j0', 'j1', 'j2'], ('j0', 'j1', 'j2'))
    variable = tf.Variable(pred)
    with tf.GradientTape() as tape:
        terms = losses.loss_terms(variable, np.repeat(K, 3, 0), true3d, labels, groups, SIDE,
                                  STRIDE, BOX)
        loss = losses.combined_loss(terms, step=10_000)['loss']
    grad = tape.gradient(loss, variable).numpy()
    assert np.all(np.isfinite(grad))
    assert np.any(grad[0, :2] != 0) and np.all(grad[0, 2] == 0)
    # The 2D-only row: only its labelled joint, and only through its projection (x, y, z all
    # move the projection).
    assert np.any(grad[1, 0] != 0) and np.all(grad[1, 1:] == 0)
    assert np.all(grad[2] == 0)


def test_all_unlabelled_batch_gives_zero_and_finite_gradients():
    pred = tf.Variable(tf.ones([2, 4, 3]) * 1000)
    true = tf.fill([2, 4, 3], float('nan'))
    labels = tf.fill([2, 2, 2], float('nan'))
    groups = labels2d.group_matrix(['a', 'b', 'c', 'd'], ('a', 'b'))
    with tf.GradientTape() as tape:
        terms = losses.loss_terms(pred, np.repeat(K, 2, 0), true, labels, groups, SIDE, STRIDE,
                                  BOX)
        loss = losses.combined_loss(terms, step=10_000)['loss']
    assert loss.numpy() == 0.0
    assert np.all(tape.gradient(loss, pred).numpy() == 0)


def test_absolute_term_gradient_matches_hand_derivative():
    # mean = sum_j (|dx| + |dy| + s |dz|) / 1000 / (3 n): d/dz of the far joint is s / 6000.
    true3d = np.array([[[0, 0, 2000], [0, 0, 20000]]], np.float32)
    p = tf.Variable(np.array([[[100, -50, 2300], [0, 200, 22000]]], np.float32))
    with tf.GradientTape() as tape:
        loss = losses.combined_loss(
            {'meanrel': (tf.constant(0.0), tf.constant(0.0)),
             'proj': (tf.constant(0.0), tf.constant(0.0)),
             'abs': losses.absolute_term(p, true3d, LossConfig()),
             'proj2d': (tf.constant(0.0), tf.constant(0.0))},
            step=10_000, config=LossConfig(lambda_abs=1.0))['loss']
    g = tape.gradient(loss, p).numpy()[0]
    np.testing.assert_allclose(g[0], [1 / 6000, -1 / 6000, 1 / 6000], rtol=1e-5)
    np.testing.assert_allclose(g[1], [0, 1 / 6000, 0.5 / 6000], rtol=1e-5, atol=1e-12)


def test_loss_config_rejects_bad_values():
    with pytest.raises(ValueError, match='loss2d_factor'):
        LossConfig(loss2d_factor=-1)
    with pytest.raises(ValueError, match='far_depth_mm'):
        LossConfig(far_depth_mm=0)
