"""ACAE: constraints, exact equivariances, reconstruction on a synthetic affine world, exports.

The synthetic world: K hidden points per pose (a mirror-symmetric body-like cloud, randomly
deformed, rotated and placed ~4 m in front of the camera); every joint is a fixed affine
combination of 3 hidden points, with left/right joints using mirrored combinations. With L >= K
latents an ACAE can reconstruct it exactly; with fewer, it cannot.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from acae import convert, export, train
from acae import model as acae_model
from posepile.joints.joint_info import JointInfo

N_PAIRS_HIDDEN, N_CENTRE_HIDDEN = 4, 2
N_HIDDEN = 2 * N_PAIRS_HIDDEN + N_CENTRE_HIDDEN
SAVED_MODEL_CLI = Path(sys.executable).with_name('saved_model_cli')


def make_world(n_poses, max_yaw_deg, max_tilt_deg, seed, n_joint_pairs=14, n_joint_centre=8):
    """Returns (poses [N, J, 3] float32 mm camera frame, joint names, true weights [J, K])."""
    wrng = np.random.default_rng(1234)  # the world's structure is the same for every seed
    kp, kc, k = N_PAIRS_HIDDEN, N_CENTRE_HIDDEN, N_HIDDEN
    hidden_perm = np.concatenate([np.arange(kp, 2 * kp), np.arange(kp), np.arange(2 * kp, k)])
    left = np.stack([wrng.uniform(80, 250, kp), wrng.uniform(-800, 800, kp),
                     wrng.uniform(-100, 100, kp)], -1)
    centre = np.stack([np.zeros(kc), wrng.uniform(-800, 800, kc), wrng.uniform(-100, 100, kc)], -1)
    template = np.concatenate([left, left * [-1, 1, 1], centre])
    jp, jc = n_joint_pairs, n_joint_centre
    true_w = np.zeros((2 * jp + jc, k))
    for i in range(jp + jc):
        pick = wrng.choice(k, 3, replace=False)
        vals = wrng.uniform(-0.3, 1.0, 3)
        vals[-1] = 1 - vals[:-1].sum()
        row = np.zeros(k)
        row[pick] = vals
        if i < jp:
            true_w[i] = row
            true_w[jp + i] = row[hidden_perm]
        else:
            true_w[jp + i] = 0.5 * (row + row[hidden_perm])
    names = ([f'lj{i:02d}' for i in range(jp)] + [f'rj{i:02d}' for i in range(jp)]
             + [f'cj{i:02d}' for i in range(jc)])
    rng = np.random.default_rng(seed)
    hidden = template + rng.normal(0, 60, (n_poses, k, 3))
    angles = np.stack([rng.uniform(-max_tilt_deg, max_tilt_deg, n_poses),
                       rng.uniform(-max_tilt_deg, max_tilt_deg, n_poses),
                       rng.uniform(-max_yaw_deg, max_yaw_deg, n_poses)], -1)
    rot = Rotation.from_euler('ZXY', angles, degrees=True).as_matrix()
    shift = rng.normal([0, 0, 4000], [300, 300, 500], (n_poses, 1, 3))
    hidden = np.einsum('nij,nkj->nki', rot, hidden) + shift
    return np.einsum('jk,nkc->njc', true_w, hidden).astype(np.float32), names, true_w


def fast_config(n_latents, n_centre=2, **kwargs):
    # No rotation augmentation: equivariance, not augmentation, must carry the rotated tests.
    base = dict(n_latents=n_latents, n_centre_latents=n_centre, steps=2000, learning_rate=3e-3,
                sparsity_weight=1e-5, max_yaw_deg=0.0, max_tilt_deg=0.0, init_sample=3000)
    base.update(kwargs)
    return train.TrainConfig(**base)


def reconstruction_error_mm(w_enc, w_dec, poses):
    poses = np.asarray(poses, np.float64)
    recon = np.einsum('jl,lk,nkc->njc', w_dec, w_enc, poses)
    return float(np.linalg.norm(recon - poses, axis=-1).mean())


@pytest.fixture(scope='module')
def world():
    train_poses, names, true_w = make_world(3000, max_yaw_deg=15, max_tilt_deg=5, seed=0)
    rotated_test, _, _ = make_world(800, max_yaw_deg=180, max_tilt_deg=90, seed=1)
    upright_test, _, _ = make_world(800, max_yaw_deg=15, max_tilt_deg=5, seed=1)
    return dict(train=train_poses, names=names, true_w=true_w, rotated=rotated_test,
                upright=upright_test)


@pytest.fixture(scope='module')
def models(world):
    """Trained ACAEs by latent count (K = 10 hidden points)."""
    return {n: train.train_acae(world['train'], world['names'], fast_config(n),
                                show_progress=False)
            for n in (10, 8, 6, 4)}


@pytest.fixture(scope='module')
def full_model(models):
    return models[10]


FORMAT_A = [f'{s}j{i:02d}' for s in 'lr' for i in range(6)] + [f'cj{i:02d}' for i in range(4)]
FORMAT_B = [f'{s}j{i:02d}' for s in 'lr' for i in range(6, 14)] + [f'cj{i:02d}' for i in
                                                                    range(4, 8)]


@pytest.fixture(scope='module')
def converter(world, full_model):
    return convert.SkeletonConverter.fit(full_model, world['train'],
                                         {'fmt_a': FORMAT_A, 'fmt_b': FORMAT_B})


def test_rows_sum_to_one_by_construction():
    names = [f'l{i}' for i in range(200)] + [f'r{i}' for i in range(200)] + [
        f'c{i}' for i in range(155)]
    model = acae_model.AffineCombiningAutoencoder(names, 32, seed=3)
    w_enc, w_dec = model.weights_numpy()
    assert w_enc.shape == (32, 555) and w_dec.shape == (555, 32)
    assert np.abs(w_enc.astype(np.float64).sum(1) - 1).max() < 1e-6
    assert np.abs(w_dec.astype(np.float64).sum(1) - 1).max() < 1e-6
    assert (w_enc < 0).any() and (w_dec < 0).any()  # negative weights are representable


def test_affine_projection_is_orthogonal_projection():
    # Closed form: the nearest matrix with unit row sums shifts each row by (1 - sum) / n.
    w = np.random.default_rng(0).normal(size=(5, 7))
    expected = w + (1 - w.sum(1, keepdims=True)) / 7
    np.testing.assert_allclose(acae_model.affine_rows(w).numpy(), expected, atol=1e-12)


def test_fit_affine_weights_recovers_exact_combination():
    rng = np.random.default_rng(0)
    src = rng.normal(0, 300, (200, 6, 3)) + [0, 0, 3000]
    true = rng.normal(size=(4, 6))
    true += (1 - true.sum(1, keepdims=True)) / 6
    fitted = acae_model.fit_affine_weights(src, np.einsum('ba,nac->nbc', true, src), ridge=1e-12)
    np.testing.assert_allclose(fitted, true, atol=1e-6)
    np.testing.assert_allclose(fitted.sum(1), 1, atol=1e-12)


def test_loss_weights_depth_separately():
    pred = np.zeros((1, 2, 3), np.float32)
    true = np.array([[[1, -2, 4], [0, 3, -8]]], np.float32)
    # Hand-computed: ((1 + 2 + 0.5 * 4) + (0 + 3 + 0.5 * 8)) / 2 joints / 3 coordinates = 2.
    assert float(train.reconstruction_loss(pred, true, depth_weight=0.5)) == pytest.approx(2.0)


def test_projected_loss_by_hand():
    # True pose: two joints at depths 4 and 6 (mean 5); the prediction moves the second one
    # 2 further away along z and 0.5 to the right.
    true = np.array([[[1.0, 2.0, 4.0], [3.0, -1.0, 6.0]]], np.float32)
    pred = np.array([[[1.0, 2.0, 4.0], [3.5, -1.0, 8.0]]], np.float32)
    # Image plane at the mean true depth 5: joint 2 is at (3/6, -1/6) * 5 vs (3.5/8, -1/8) * 5.
    dx, dy = abs(3 / 6 - 3.5 / 8) * 5, abs(-1 / 6 + 1 / 8) * 5
    expected = (0 + 0 + dx + dy) / 4  # mean over 2 joints x 2 coordinates
    assert float(train.projected_loss(pred, true)) == pytest.approx(expected, rel=1e-6)
    # Moving a joint along its viewing ray costs nothing: depth enters only through x/z, y/z.
    along_ray = true.copy()
    along_ray[0, 1] *= 1.4
    assert float(train.projected_loss(along_ray, true)) == pytest.approx(0.0, abs=1e-7)


def test_sparsity_penalty_is_mean_absolute_weight():
    w_enc = np.array([[0.5, 0.7, -0.2], [1.0, 0.0, 0.0]], np.float32)
    w_dec = np.array([[1.5, -0.5], [0.5, 0.5], [0.0, 1.0]], np.float32)
    # (0.5 + 0.7 + 0.2 + 1) / 6 + (1.5 + 0.5 + 0.5 + 0.5 + 1) / 6
    assert float(train.sparsity_penalty(w_enc, w_dec)) == pytest.approx(2.4 / 6 + 4 / 6)


def test_random_rotations_are_proper_and_bounded():
    import tensorflow as tf
    rot = train.random_rotations(tf.random.Generator.from_seed(0), 64, 180.0, 20.0).numpy()
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape),
                               atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(rot), 1, atol=1e-6)
    # Tilts of at most 20 deg about x and z keep the camera's vertical within ~28 deg of itself.
    assert np.degrees(np.arccos(rot[:, 1, 1])).max() < 29
    still = train.random_rotations(tf.random.Generator.from_seed(0), 4, 0.0, 0.0).numpy()
    np.testing.assert_allclose(still, np.broadcast_to(np.eye(3), still.shape), atol=1e-7)


def test_reconstruction_below_1mm_with_enough_latents(world, full_model):
    w_enc, w_dec = full_model.weights_numpy()
    assert reconstruction_error_mm(w_enc, w_dec, world['rotated']) < 1.0
    assert reconstruction_error_mm(w_enc, w_dec, world['upright']) < 1.0


def test_reconstruction_errors_against_numpy(world, models):
    model = models[6]  # inexact: every error part is non-zero
    poses = world['rotated'][:300]
    w_enc, w_dec = (w.astype(np.float64) for w in model.weights_numpy())
    recon = np.einsum('jl,lk,nkc->njc', w_dec, w_enc, poses.astype(np.float64))
    depth = poses[..., 2:].mean(axis=1, keepdims=True)
    plane = (recon[..., :2] / recon[..., 2:] - poses[..., :2] / poses[..., 2:]) * depth
    got = train.reconstruction_errors_mm(model, poses, batch_size=128)
    assert got['mean_3d'] == pytest.approx(np.linalg.norm(recon - poses, axis=-1).mean(), rel=1e-3)
    assert got['depth'] == pytest.approx(np.abs(recon - poses)[..., 2].mean(), rel=1e-3)
    assert got['image_plane'] == pytest.approx(np.linalg.norm(plane, axis=-1).mean(), rel=1e-3)
    assert np.isnan(train.reconstruction_errors_mm(model, poses - poses.mean(1, keepdims=True))[
        'image_plane'])


def test_error_grows_as_latents_shrink(world, models):
    errors = [reconstruction_error_mm(*models[n].weights_numpy(), world['rotated'])
              for n in (10, 8, 6, 4)]
    assert errors[0] < 1.0
    assert all(a < b for a, b in zip(errors, errors[1:])), errors
    assert errors[1] > 5.0  # fewer latents than hidden points cannot be exact


def test_rotation_translation_equivariance(world, full_model):
    poses = world['rotated'][:50]
    rot = Rotation.from_euler('xyz', [40, -75, 130], degrees=True).as_matrix()
    shift = np.array([350.0, -120.0, 900.0])
    moved = poses @ rot.T + shift
    # Float64: the stored float32 weights have row sums of 1 +- 1e-7, which at 4 m is 4e-4 mm;
    # re-imposing the row sums in float64 shows the property itself holds to rounding.
    w_enc, w_dec = (w + (1 - w.sum(1, keepdims=True)) / w.shape[1]
                    for w in (w.astype(np.float64) for w in full_model.weights_numpy()))
    auto = lambda p: np.einsum('jl,lk,nkc->njc', w_dec, w_enc, np.asarray(p, np.float64))
    np.testing.assert_allclose(auto(moved), auto(poses) @ rot.T + shift, atol=1e-8)
    # Also any affine map (shear + scale), the defining property of affine combinations.
    affine = np.array([[1.3, 0.2, 0.0], [-0.1, 0.8, 0.4], [0.05, 0.0, 1.1]])
    np.testing.assert_allclose(auto(poses @ affine.T + shift), auto(poses) @ affine.T + shift,
                               atol=1e-8)
    # The float32 TF model at ~4 m: float32 rounding only.
    got = full_model(moved.astype(np.float32)).numpy()
    want = full_model(poses).numpy() @ rot.T + shift
    np.testing.assert_allclose(got, want, atol=5e-3)


def test_chirality_weights_and_outputs(world, full_model):
    w_enc, w_dec = full_model.weights_numpy()
    jperm, lperm = full_model.joint_perm, full_model.latent_perm
    assert not np.array_equal(jperm, np.arange(len(jperm)))  # the world has left/right pairs
    # Equal up to the last bit of the row-mean shift (summation order differs between rows).
    np.testing.assert_allclose(w_enc[lperm][:, jperm], w_enc, rtol=0, atol=1e-7)
    np.testing.assert_allclose(w_dec[jperm][:, lperm], w_dec, rtol=0, atol=1e-7)
    poses = world['rotated'][:20]
    mirrored = poses[:, jperm] * np.array([-1, 1, 1], np.float32)
    latents = full_model.encode(poses).numpy()
    np.testing.assert_allclose(full_model.encode(mirrored).numpy(),
                               latents[:, lperm] * [-1, 1, 1], atol=2e-3)
    np.testing.assert_allclose(full_model(mirrored).numpy(),
                               full_model(poses).numpy()[:, jperm] * [-1, 1, 1], atol=2e-3)
    assert full_model.latent_names[:2] == ['l_lat00', 'l_lat01']
    assert JointInfo(full_model.latent_names).mirror_perm.tolist() == lperm.tolist()


def test_union_style_names_pair_up():
    names = ['lhip_h36m', 'rhip_h36m', 'pelv_h36m', 'lsho', 'rsho', 'neck']
    model = acae_model.AffineCombiningAutoencoder(names, 4)
    assert model.joint_perm.tolist() == [1, 0, 2, 4, 3, 5]
    assert sum(n.startswith('c_') for n in model.latent_names) == 2


def test_acae_beats_pca_on_rotated_poses(world, models):
    n_latents = 6
    flat = lambda p: (p - p.mean(1, keepdims=True)).reshape(len(p), -1).astype(np.float64)
    train_flat = flat(world['train'])
    mean = train_flat.mean(0)
    _, _, vt = np.linalg.svd(train_flat - mean, full_matrices=False)
    basis = vt[:3 * n_latents]

    def pca_error(poses):
        x = flat(poses)
        recon = (x - mean) @ basis.T @ basis + mean
        return float(np.linalg.norm((recon - x).reshape(len(x), -1, 3), axis=-1).mean())

    w_enc, w_dec = models[n_latents].weights_numpy()
    acae_rotated = reconstruction_error_mm(w_enc, w_dec, world['rotated'])
    acae_upright = reconstruction_error_mm(w_enc, w_dec, world['upright'])
    pca_rotated, pca_upright = pca_error(world['rotated']), pca_error(world['upright'])
    assert pca_upright < pca_rotated / 3  # PCA fits its training rotations, not others
    assert acae_rotated < 0.5 * pca_rotated
    assert acae_rotated < 1.5 * acae_upright


def test_weights_npz_round_trip(tmp_path, full_model, world):
    path = tmp_path / 'weights.npz'
    export.save_weights(path, full_model)
    arrays = export.load_weights(path)
    w_enc, w_dec = full_model.weights_numpy()
    np.testing.assert_array_equal(arrays['W_enc'], w_enc)
    np.testing.assert_array_equal(arrays['W_dec'], w_dec)
    assert arrays['joint_names'].tolist() == world['names']
    reloaded = export.model_from_weights(arrays)
    # The parameterisation re-projects loaded weights: unchanged up to float32 rounding.
    np.testing.assert_allclose(reloaded.weights_numpy()[0], w_enc, rtol=0, atol=1e-6)
    np.testing.assert_allclose(reloaded.weights_numpy()[1], w_dec, rtol=0, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ['weights.npz']  # no temporary left over


def test_non_chiral_weights_round_trip(tmp_path):
    names = ['lhip', 'rhip', 'pelv', 'lkne', 'rkne']
    model = acae_model.AffineCombiningAutoencoder(names, 3, chiral=False, seed=2)
    export.save_weights(tmp_path / 'w.npz', model)
    reloaded = export.model_from_weights(export.load_weights(tmp_path / 'w.npz'))
    assert not reloaded.chiral
    for got, want in zip(reloaded.weights_numpy(), model.weights_numpy()):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_bad_inputs_name_file_and_key(tmp_path, world, capsys):
    poses = world['train'][:10].copy()
    poses[3, 2, 1] = np.nan
    path = tmp_path / 'poses.npz'
    np.savez(path, poses=poses, joint_names=np.array(world['names']))
    with pytest.raises(ValueError, match=r'poses\.npz.*poses.*NaN'):
        train.load_poses_npz(path)
    np.savez(path, poses=world['train'][:10])
    with pytest.raises(KeyError, match=r"poses\.npz.*joint_names"):
        train.load_poses_npz(path)
    np.savez(path, poses=world['train'][:10], joint_names=np.array(world['names'], object))
    with pytest.raises(ValueError, match=r'poses\.npz'):
        train.load_poses_npz(path)
    np.save(tmp_path / 'single.npy', world['train'][:10])
    with pytest.raises(ValueError, match=r'single\.npy.*single \.npy array'):
        train.load_poses_npz(tmp_path / 'single.npy')
    # Root-relative poses cannot be projected: the CLI names the file and the fix.
    centred = world['train'][:10] - world['train'][:10].mean(axis=1, keepdims=True)
    np.savez(path, poses=centred, joint_names=np.array(world['names']))
    assert train.main([f'--poses={path}', f'--out={tmp_path / "out"}', '--latents=10',
                       '--centre-latents=2', '--steps=1']) == 2
    assert re.search(r"poses\.npz.*z <= 0.*loss='3d'", capsys.readouterr().err)
    bad = tmp_path / 'weights.npz'
    np.savez(bad, W_enc=np.ones((2, 3)), W_dec=np.ones((3, 2)), joint_names=np.array(list('abc')),
             latent_names=np.array(['c_lat00', 'c_lat01']))
    with pytest.raises(ValueError, match=r'weights\.npz.*W_enc.*sum to one'):
        export.load_weights(bad)


def test_partial_skeleton_conversion(world, converter):
    idx_a = converter.indices('fmt_a')
    idx_b = converter.indices('fmt_b')
    poses = world['rotated'].astype(np.float64)
    pred_b = converter.convert(poses[:, idx_a], 'fmt_a', 'fmt_b')
    assert pred_b.shape == (len(poses), len(FORMAT_B), 3)
    # 16 joints of A determine the 10 hidden points, so B follows to ACAE accuracy.
    assert np.linalg.norm(pred_b - poses[:, idx_b], axis=-1).mean() < 2.0
    for name in ('fmt_a', 'fmt_b'):
        np.testing.assert_allclose(converter.encoders[name].sum(1), 1, atol=1e-9)
    # From the full set, convert equals decode(encode(.)) of the ACAE.
    full = converter.convert(poses, 'full', 'fmt_b')
    np.testing.assert_allclose(full, np.einsum('jl,lk,nkc->njc', converter.w_dec[idx_b],
                                               converter.w_enc, poses), atol=1e-9)


def test_partial_conversion_equivariance(world, converter, full_model):
    idx_a = converter.indices('fmt_a')
    points = world['rotated'][:30, idx_a].astype(np.float64)
    rot = Rotation.from_euler('zyx', [-20, 170, 65], degrees=True).as_matrix()
    shift = np.array([-500.0, 200.0, 1500.0])
    np.testing.assert_allclose(converter.convert(points @ rot.T + shift, 'fmt_a', 'fmt_b'),
                               converter.convert(points, 'fmt_a', 'fmt_b') @ rot.T + shift,
                               atol=1e-8)
    # Chirality: the mirrored A joints (relabelled within A) give mirrored latents.
    sub_perm = JointInfo(FORMAT_A).mirror_perm
    mirrored = points[:, sub_perm] * [-1, 1, 1]
    latents = converter.encode(points, 'fmt_a')
    np.testing.assert_allclose(converter.encode(mirrored, 'fmt_a'),
                               latents[:, full_model.latent_perm] * [-1, 1, 1], atol=1e-6)


def test_skeleton_table_from_registry():
    joints = pytest.importorskip('posepile.joints')
    names = joints.skeleton_names('real')[:2]
    union = [n for s in names for n in joints.union_names(s)]
    union = list(dict.fromkeys(union))
    table = convert.skeleton_table(union, ','.join(names))
    assert list(table) == ['full'] + names
    assert table[names[0]] == joints.union_names(names[0])
    with pytest.raises(KeyError, match='not in the ACAE joint set'):
        convert.skeleton_table(union[:1], names[:1])


@pytest.fixture(scope='module')
def saved_model_dir(tmp_path_factory, converter):
    path = tmp_path_factory.mktemp('acae_export') / 'saved_model'
    export.export_savedmodel(path, converter)
    return path


def test_savedmodel_matches_in_memory(world, converter, saved_model_dir, full_model):
    import tensorflow as tf
    loaded = tf.saved_model.load(str(saved_model_dir))
    poses = world['rotated'][:40]
    latents = loaded.signatures['encode'](points=tf.constant(poses))['latents'].numpy()
    np.testing.assert_allclose(latents, full_model.encode(poses).numpy(), atol=2e-3)
    decoded = loaded.signatures['decode'](latents=tf.constant(latents))['points'].numpy()
    np.testing.assert_allclose(decoded, full_model.decode(latents).numpy(), atol=2e-3)
    src = poses[:, converter.indices('fmt_a')]
    got = loaded.signatures['convert'](points=tf.constant(src), from_skeleton=tf.constant('fmt_a'),
                                       to_skeleton=tf.constant('fmt_b'))['points'].numpy()
    np.testing.assert_allclose(got, converter.convert(src, 'fmt_a', 'fmt_b'), atol=5e-3)
    names = loaded.signatures['joint_names'](skeleton=tf.constant('fmt_b'))['joint_names']
    assert [n.decode() for n in names.numpy()] == FORMAT_B
    with pytest.raises(tf.errors.InvalidArgumentError, match='unknown skeleton'):
        loaded.signatures['convert'](points=tf.constant(src), from_skeleton=tf.constant('nope'),
                                     to_skeleton=tf.constant('fmt_b'))


def test_saved_model_cli_run(tmp_path, world, converter, saved_model_dir):
    src = world['rotated'][:5, converter.indices('fmt_a')]
    np.save(tmp_path / 'points.npy', src)
    np.save(tmp_path / 'from.npy', np.array(b'fmt_a'))
    np.save(tmp_path / 'to.npy', np.array(b'full'))
    out = tmp_path / 'out'
    result = subprocess.run(
        [str(SAVED_MODEL_CLI), 'run', '--dir', str(saved_model_dir), '--tag_set', 'serve',
         '--signature_def', 'convert', '--inputs',
         f'points={tmp_path}/points.npy;from_skeleton={tmp_path}/from.npy;'
         f'to_skeleton={tmp_path}/to.npy', '--outdir', str(out)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(out / 'points.npy')
    np.testing.assert_allclose(got, converter.convert(src, 'fmt_a', 'full'), atol=5e-3)


def test_cli_trains_and_exports(tmp_path, world):
    path = tmp_path / 'poses.npz'
    np.savez(path, poses=world['train'][:500], joint_names=np.array(world['names']))
    out = tmp_path / 'run'
    train.main([f'--poses={path}', '--latents=10', '--centre-latents=2', f'--out={out}',
                '--steps=200', '--skeletons=none'])
    arrays = export.load_weights(out / 'weights.npz')
    assert arrays['W_enc'].shape == (10, len(world['names']))
    assert (out / 'saved_model' / 'saved_model.pb').exists()
    assert list((out / 'logs').glob('events.out.tfevents.*'))
    report = json.loads((out / 'fit_report.json').read_text())
    assert report['config']['steps'] == 200 and report['n_latents'] == 10
    assert set(report['weights']) == {'encoder', 'decoder'}
    w_enc, w_dec = arrays['W_enc'].astype(np.float64), arrays['W_dec'].astype(np.float64)
    assert report['weights']['decoder']['row_l1_mean'] == pytest.approx(
        np.abs(w_dec).sum(1).mean(), rel=1e-5)
    conv = export.load_converter(out / 'converter.npz')
    assert conv.skeleton_names == ['full']
    # The converter keeps float64 weights with row sums re-imposed: float32 rounding apart.
    np.testing.assert_allclose(conv.w_enc, arrays['W_enc'], rtol=0, atol=1e-7)
