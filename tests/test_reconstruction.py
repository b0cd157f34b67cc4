"""Absolute reconstruction against known poses, numpy least squares and hand-checked mixing."""
import numpy as np
import tensorflow as tf

from metrabs.model import reconstruction

SIDE, STRIDE = 256, 32
K = np.array([[500.0, 0, 128], [0, 500.0, 128], [0, 0, 1]], np.float32)


def _project(points_cam, k=K):
    p = points_cam @ k.T
    return p[..., :2] / p[..., 2:]


def _pose(rng, n=2, j=17):
    return rng.normal(scale=300.0, size=(n, j, 3)).astype(np.float32)


def test_known_pose_recovers_translation_below_1mm():
    rng = np.random.default_rng(1)
    rel = _pose(rng)
    t = np.array([[150.0, -80.0, 4500.0], [-300.0, 200.0, 2500.0]], np.float32)
    coords2d = _project(rel + t[:, None]).astype(np.float32)
    intr = np.stack([K, K])
    uv = reconstruction.normalized_image_coords(coords2d, intr)
    t_hat = reconstruction.reconstruct_translation(uv, rel, tf.ones(rel.shape[:2])).numpy()
    np.testing.assert_allclose(t_hat, t, atol=1.0)
    abs_none = reconstruction.reconstruct_absolute(
        coords2d, rel, intr, SIDE, STRIDE, mix_3d_inside_fov=None).numpy()
    np.testing.assert_allclose(abs_none, rel + t[:, None], atol=1.0)
    # Exact data: the 2D-based and 3D-based estimates agree, so mixing changes nothing.
    abs_mix = reconstruction.reconstruct_absolute(
        coords2d, rel, intr, SIDE, STRIDE, mix_3d_inside_fov=0.5).numpy()
    np.testing.assert_allclose(abs_mix, rel + t[:, None], atol=1.0)


def _numpy_lstsq_translation(uv, rel):
    u, v = uv[:, 0], uv[:, 1]
    a = np.concatenate([np.stack([np.ones_like(u), np.zeros_like(u), -u], 1),
                        np.stack([np.zeros_like(u), np.ones_like(u), -v], 1)])
    b = np.concatenate([u * rel[:, 2] - rel[:, 0], v * rel[:, 2] - rel[:, 1]])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def test_noisy_2d_matches_numpy_lstsq():
    rng = np.random.default_rng(2)
    rel = _pose(rng, n=3)
    t = np.array([[0, 0, 3000], [500, 100, 6000], [-100, -400, 3500]], np.float32)
    coords2d = (_project(rel + t[:, None]) + rng.normal(scale=3.0, size=(3, 17, 2))
                ).astype(np.float32)
    uv64 = (np.concatenate([coords2d, np.ones((3, 17, 1))], -1) @ np.linalg.inv(K).T)[..., :2]
    expected = np.stack([_numpy_lstsq_translation(uv64[i], rel[i].astype(np.float64))
                         for i in range(3)])
    uv = reconstruction.normalized_image_coords(coords2d, np.stack([K] * 3))
    t_hat = reconstruction.reconstruct_translation(uv, rel, tf.ones([3, 17])).numpy()
    np.testing.assert_allclose(t_hat, expected, atol=0.5)
    assert np.abs(expected - t).max() > 5.0  # the noise really moved the solution


def test_is_within_fov_border():
    # Pixels span [-0.5, 255.5]; a 24 px margin leaves [23.5, 231.5].
    pts = np.array([[[23.5, 23.5], [23.4, 100], [231.5, 231.5], [231.6, 50], [128, 128]]],
                   np.float32)
    inside = reconstruction.is_within_fov(pts, SIDE, STRIDE, border_factor=0.75).numpy()
    np.testing.assert_array_equal(inside, [[True, False, True, False, True]])


def test_inside_fov_mixing_hand_checked():
    # f = 100 px, principal point (128, 128). Reference at t = (0, 0, 1000) mm.
    k = np.array([[100.0, 0, 128], [0, 100.0, 128], [0, 0, 1]], np.float32)
    rel = np.array([[[0, 0, 0], [100, 0, 0], [0, 100, 0], [0, 0, 100], [-100, -100, 0]]],
                   np.float32)
    # Joints 0-3 project consistently with t; joint 4 should land at (118, 118) but its 2D
    # prediction says (5, 5): outside the view (border 24 px), so it neither drives the fit
    # (weight 1e-8) nor gets mixed.
    coords2d = np.array([[[128, 128], [138, 128], [128, 138], [128, 128], [5, 5]]], np.float32)
    out = reconstruction.reconstruct_absolute(
        coords2d, rel, k[None], SIDE, STRIDE, mix_3d_inside_fov=0.5).numpy()[0]
    expected = [[0, 0, 1000], [100, 0, 1000], [0, 100, 1000], [0, 0, 1100], [-100, -100, 1000]]
    np.testing.assert_allclose(out, expected, atol=0.5)

    # Now joint 1's 2D says x = 148 px (u = 0.2) instead of 138 (u = 0.1). The fit uses joints
    # 0-3; with t_hat from an independent lstsq, joint 1 (in view) must be
    # 0.5 * (rel + t_hat) + 0.5 * (u * z, v * z, z) with z the depth of rel + t_hat.
    coords2d[0, 1] = [148, 128]
    out = reconstruction.reconstruct_absolute(
        coords2d, rel, k[None], SIDE, STRIDE, mix_3d_inside_fov=0.5).numpy()[0]
    uv = (coords2d[0] - 128.0) / 100.0
    t_hat = _numpy_lstsq_translation(uv[:4].astype(np.float64), rel[0, :4].astype(np.float64))
    abs3d = rel[0] + t_hat
    z = abs3d[:, 2:]
    abs2d = np.concatenate([uv * z, z], -1)
    expected = 0.5 * abs3d + 0.5 * abs2d
    expected[4] = abs3d[4]
    # The 1e-8 weight of joint 4 shifts t by well under a millimetre.
    np.testing.assert_allclose(out, expected, atol=0.5)
    assert abs(out[1, 0] - abs3d[1, 0]) > 5.0  # mixing visibly moved joint 1 toward its ray


def test_float16_inputs_give_float32_output_under_unknown_batch():
    rng = np.random.default_rng(3)
    rel = _pose(rng, n=2, j=5)
    t = np.array([[10, 20, 3000]] * 2, np.float32)
    coords2d = _project(rel + t[:, None]).astype(np.float32)
    fn = tf.function(
        lambda c2, c3, k: reconstruction.reconstruct_absolute(c2, c3, k, SIDE, STRIDE, 0.5),
        input_signature=[tf.TensorSpec([None, 5, 2], tf.float16),
                         tf.TensorSpec([None, 5, 3], tf.float16),
                         tf.TensorSpec([None, 3, 3], tf.float32)])
    out = fn(coords2d.astype(np.float16), rel.astype(np.float16), np.stack([K, K]))
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), rel + t[:, None], rtol=0.01, atol=30.0)


def test_degenerate_2d_gives_finite_output_and_gradients():
    # An untrained net may put every joint at the crop centre: the translation is then
    # under-determined, but the ridge must keep the result and its gradient finite.
    rel = tf.Variable(np.random.default_rng(4).normal(scale=100, size=(2, 6, 3)).astype(np.float32))
    coords2d = tf.fill([2, 6, 2], 128.0)
    with tf.GradientTape() as tape:
        out = reconstruction.reconstruct_absolute(coords2d, rel, np.stack([K, K]), SIDE, STRIDE)
        total = tf.reduce_sum(out)
    assert np.all(np.isfinite(out.numpy()))
    assert np.all(np.isfinite(tape.gradient(total, rel).numpy()))


def test_weak_perspective_fit_hand_computed():
    # Two joints at relative x = -/+100 mm (spread 100 mm) seen at u = -/+0.05 around
    # u = 0.1 (spread 0.05): tz = 100 / 0.05 = 2000 mm; tx = 0.1 * 2000 - 0 = 200 mm; the
    # mean relative z (50 mm) comes off tz.
    rel = np.array([[[-100, 0, 0], [100, 0, 100]]], np.float32)
    uv = np.array([[[0.05, 0.0], [0.15, 0.0]]], np.float32)
    t = reconstruction.reconstruct_translation_weak(uv, rel, tf.ones([1, 2])).numpy()[0]
    np.testing.assert_allclose(t, [200, 0, 1950], atol=1e-3)
    # On exact orthographic-like data (a flat pose far away) it agrees with the full fit.
    rng = np.random.default_rng(5)
    flat = rng.normal(scale=300, size=(1, 12, 3)).astype(np.float32)
    flat[..., 2] *= 0.01
    coords2d = _project(flat + np.array([30, -20, 20000], np.float32)).astype(np.float32)
    uv = reconstruction.normalized_image_coords(coords2d, K[None])
    weak = reconstruction.reconstruct_translation_weak(uv, flat, tf.ones([1, 12])).numpy()
    full = reconstruction.reconstruct_translation(uv, flat, tf.ones([1, 12])).numpy()
    np.testing.assert_allclose(weak, full, rtol=0.01)


def test_per_example_mix_and_tensor_switch_of_the_fit():
    k = np.array([[100.0, 0, 128], [0, 100.0, 128], [0, 0, 1]], np.float32)
    rel = np.array([[[0, 0, 0], [100, 0, 0], [0, 100, 0], [0, 0, 100]]] * 2, np.float32)
    coords2d = np.array([[[128, 128], [148, 128], [128, 138], [128, 128]]] * 2, np.float32)
    intr = np.stack([k, k])
    pure3d = reconstruction.reconstruct_absolute(coords2d, rel, intr, SIDE, STRIDE, 1.0).numpy()
    pure2d = reconstruction.reconstruct_absolute(coords2d, rel, intr, SIDE, STRIDE, 0.0).numpy()
    mixed = reconstruction.reconstruct_absolute(coords2d, rel, intr, SIDE, STRIDE,
                                                tf.constant([0.25, 1.0])).numpy()
    np.testing.assert_allclose(mixed[0], 0.25 * pure3d[0] + 0.75 * pure2d[0], atol=1e-3)
    np.testing.assert_allclose(mixed[1], pure3d[1], atol=1e-3)
    # A scalar bool tensor picks the fit in-graph, like the Python bool.
    for flag in (True, False):
        direct = reconstruction.reconstruct_absolute(coords2d, rel, intr, SIDE, STRIDE, 0.5,
                                                     weak_perspective=flag).numpy()
        switched = reconstruction.reconstruct_absolute(coords2d, rel, intr, SIDE, STRIDE, 0.5,
                                                       weak_perspective=tf.constant(flag)).numpy()
        np.testing.assert_allclose(switched, direct, atol=1e-4)


def test_project_is_the_inverse_of_normalized_coords_and_clamps_depth():
    points = np.array([[[100, -50, 2000], [0, 0, 0.25]]], np.float32)
    px = reconstruction.project(points, K[None]).numpy()[0]
    np.testing.assert_allclose(px[0], [128 + 500 * 0.05, 128 - 500 * 0.025], atol=1e-4)
    # Depth clamped to 1 mm: K (0, 0, 0.25) / 1 = 0.25 x the principal point, finite (as released).
    np.testing.assert_allclose(px[1], [32, 32])
    uv = reconstruction.normalized_image_coords(px[None, :1], K[None]).numpy()
    np.testing.assert_allclose(uv[0, 0], [0.05, -0.025], atol=1e-6)
