"""The closed-form 3x3 inverse and SPD solve against numpy's LAPACK (float64 reference)."""
import numpy as np
import tensorflow as tf

from metrabs.model import linalg3x3


def test_inverse_matches_numpy_for_intrinsics_and_general_matrices():
    rng = np.random.default_rng(0)
    general = rng.normal(0, 1, (200, 3, 3))
    intrinsics = np.tile(np.eye(3), (50, 1, 1))
    intrinsics[:, 0, 0] = rng.uniform(50, 3000, 50)
    intrinsics[:, 1, 1] = intrinsics[:, 0, 0] * rng.uniform(0.9, 1.1, 50)
    intrinsics[:, :2, 2] = rng.uniform(0, 2000, (50, 2))
    intrinsics[:, 0, 1] = rng.uniform(-2, 2, 50)  # skew
    for m in (general, intrinsics):
        got = linalg3x3.inverse(tf.constant(m, tf.float32)).numpy()
        want = np.linalg.inv(m)
        # float32 round-off grows with the condition number (relative to the inverse's size).
        cond = np.linalg.cond(m)
        err = np.abs(got - want).max(axis=(1, 2)) / np.abs(want).max(axis=(1, 2))
        assert np.all(err <= 1e-6 * cond + 1e-6), err.max()
    np.testing.assert_allclose(linalg3x3.diagonal(tf.constant(general)).numpy(),
                               np.diagonal(general, axis1=1, axis2=2))


def test_solve_spd_matches_numpy_and_has_finite_gradients():
    rng = np.random.default_rng(1)
    # SPD matrices with condition numbers from 1 to 1e5 (the reconstruction's unit-diagonal
    # normal equations with a 1e-5 ridge are at most ~1e5).
    q, _ = np.linalg.qr(rng.normal(0, 1, (300, 3, 3)))
    eig = 10.0 ** rng.uniform(-5, 0, (300, 3))
    eig[:, 0] = 1.0
    a = np.einsum('nij,nj,nkj->nik', q, eig, q)
    b = rng.normal(0, 1, (300, 3))
    want = np.linalg.solve(a, b[..., None])[..., 0]
    a_t, b_t = tf.constant(a, tf.float32), tf.constant(b, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([a_t, b_t])
        got = linalg3x3.solve_spd(a_t, b_t)
        total = tf.reduce_sum(got)
    grads = tape.gradient(total, [a_t, b_t])
    cond = eig.max(1) / eig.min(1)
    err = np.linalg.norm(got.numpy() - want, axis=-1) / np.linalg.norm(want, axis=-1)
    assert np.all(err <= 2e-7 * cond + 1e-6), (err / cond).max()
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    # Only the lower triangle is read: garbage above the diagonal changes nothing.
    upper = np.triu(rng.normal(0, 5, (300, 3, 3)), 1)
    np.testing.assert_array_equal(linalg3x3.solve_spd(tf.constant(a + upper, tf.float32),
                                                      b_t).numpy(), got.numpy())
