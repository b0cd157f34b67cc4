"""Cross-skeleton consistency metric: exact maps give 0 on GT, a known offset gives its closed-form
error, rotation invariance, the real synthetic world's GT floor, and the npz CLI."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eval import consistency
from posepile import joints as joint_registry
from posepile.atomic_io import write_npz_atomic


def _rows_sum_one(rng, shape):
    w = rng.normal(0, 0.5, shape)
    return w + (1 - w.sum(axis=1, keepdims=True)) / shape[1]


@pytest.fixture(scope='module')
def toy_world():
    """Three formats that are full-rank affine combinations of 5 hidden points, so every format
    is exactly an affine function of the others (the maps are exact)."""
    rng = np.random.default_rng(0)
    weights = {'fa': _rows_sum_one(rng, (6, 5)), 'fb': _rows_sum_one(rng, (7, 5)),
               'fc': _rows_sum_one(rng, (5, 5))}

    def poses(n, seed):
        r = np.random.default_rng(seed)
        hidden = r.normal(0, 300, (n, 5, 3)) + [0, 0, 4000]
        return {f: np.einsum('jp,npc->njc', w, hidden) for f, w in weights.items()}

    return poses(60, 1), consistency.fit_implied_maps(poses(60, 1)), poses(20, 2)


def test_ground_truth_is_consistent(toy_world):
    _, maps, test = toy_world
    for f, a in maps.items():
        np.testing.assert_allclose(a.sum(axis=1), 1, atol=1e-9)
    result = consistency.consistency(test, maps)
    assert result.mean_mm < 1e-3 and result.n_examples == 20


def test_known_offset_gives_closed_form_error(toy_world):
    _, maps, test = toy_world
    offset = np.array([0.0, 0.0, 30.0])  # depth only
    moved = dict(test, fb=test['fb'] + offset)
    result = consistency.consistency(moved, maps)
    # fb's own error is the offset (its implied pose does not use fb).
    np.testing.assert_allclose(result.per_format['fb']['mean_mm'], 30, atol=1e-3)
    np.testing.assert_allclose(result.per_format['fb']['depth_mm'], 30, atol=1e-3)
    np.testing.assert_allclose(result.per_format['fb']['plane_mm'], 0, atol=1e-3)
    # For another format g, joint j's implied pose moves by (sum of its map's fb columns) * offset.
    order = list(maps)
    expected = {}
    for g in ('fa', 'fc'):
        others = [h for h in order if h != g]
        start = sum(test[h].shape[1] for h in others[:others.index('fb')])
        share = maps[g][:, start:start + test['fb'].shape[1]].sum(axis=1)
        expected[g] = np.abs(share) * 30
        np.testing.assert_allclose(result.per_format[g]['mean_mm'], expected[g].mean(),
                                   rtol=1e-6, atol=1e-4)
    counts = {f: test[f].shape[1] for f in order}
    overall = (30 * counts['fb'] + expected['fa'].sum() + expected['fc'].sum()) / sum(
        counts.values())
    np.testing.assert_allclose(result.mean_mm, overall, rtol=1e-6)
    np.testing.assert_allclose(result.depth_mm, overall, rtol=1e-6)


def test_image_plane_offset_and_rotation_invariance(toy_world):
    _, maps, test = toy_world
    rng = np.random.default_rng(7)
    noisy = {f: p + rng.normal(0, 20, p.shape) for f, p in test.items()}
    base = consistency.consistency(noisy, maps)
    assert base.mean_mm > 5
    rot = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    rotated = {f: p @ rot.T + [100, -50, 300] for f, p in noisy.items()}
    moved = consistency.consistency(rotated, maps)
    np.testing.assert_allclose(moved.mean_mm, base.mean_mm, rtol=1e-9)
    for f in maps:
        np.testing.assert_allclose(moved.per_format[f]['mean_mm'], base.per_format[f]['mean_mm'],
                                   rtol=1e-9)
    # About the optical axis, the depth / image-plane split is preserved as well.
    roll = Rotation.from_rotvec([0, 0, 0.9]).as_matrix()
    rolled = consistency.consistency({f: p @ roll.T for f, p in noisy.items()}, maps)
    np.testing.assert_allclose([rolled.depth_mm, rolled.plane_mm],
                               [base.depth_mm, base.plane_mm], rtol=1e-9)


def test_lateral_offset_is_image_plane(toy_world):
    _, maps, test = toy_world
    result = consistency.consistency(dict(test, fa=test['fa'] + [3.0, 4.0, 0.0]), maps)
    np.testing.assert_allclose(result.per_format['fa']['plane_mm'], 5, atol=1e-3)
    np.testing.assert_allclose(result.per_format['fa']['depth_mm'], 0, atol=1e-3)


def test_synthetic_world_ground_truth_floor_is_small():
    formats = consistency.synthetic_formats()
    maps = consistency.fit_implied_maps(consistency.hidden_world_poses(400, seed=0))
    held_out = consistency.hidden_world_poses(200, seed=5)
    floor = consistency.consistency(held_out, maps)
    assert set(floor.per_format) == set(formats)
    assert floor.mean_mm < 5  # affine maps between formats of one hidden body are near exact
    shifted = dict(held_out, syncoco=held_out['syncoco'] + [0, 0, 50.0])
    assert consistency.consistency(shifted, maps).per_format['syncoco']['depth_mm'] > 45


def test_npz_cli_and_errors(tmp_path, capsys):
    formats = consistency.synthetic_formats()
    gt = consistency.hidden_world_poses(120, seed=3)
    names = [n for f in formats for n in joint_registry.union_names(f)]
    poses = np.concatenate([gt[f] for f in formats], axis=1).astype(np.float32)
    # Camera-like frame: people ~4 m in front of the camera.
    poses = poses - poses.mean(axis=(0, 1)) + [0, 0, 4000]
    path = tmp_path / 'pred.npz'
    write_npz_atomic(path, poses=poses, joint_names=np.array(names), true3d_cam=poses)
    result, floor = consistency.evaluate_file(str(path), fit_on='gt')
    assert result.mean_mm < 0.5 and floor.mean_mm < 0.5
    consistency.main(['--predictions', f'truth={path}', '--json', str(tmp_path / 'out.json')])
    out = capsys.readouterr().out
    assert '| truth |' in out and 'syncoco' in out and (tmp_path / 'out.json').exists()

    write_npz_atomic(tmp_path / 'bad.npz', poses=poses[:, :10], joint_names=np.array(names[:10]))
    with pytest.raises(KeyError, match='bad.npz.*synhead|bad.npz.*synmocap'):
        consistency.evaluate_file(str(tmp_path / 'bad.npz'))


def test_acae_reconstruction_replaces_only_the_acae_joints(tmp_path):
    # A hand-made ACAE over joints b and c (of a, b, c, d): one latent, their midpoint, decoded
    # to both; joints a and d are not the ACAE's and stay as they are.
    path = tmp_path / 'weights.npz'
    write_npz_atomic(path, W_enc=np.array([[0.5, 0.5]], np.float32),
                     W_dec=np.array([[1.0], [1.0]], np.float32),
                     joint_names=np.array(['c', 'b']), latent_names=np.array(['c_lat00']))
    poses = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3) + [0, 0, 4000]
    got = consistency.acae_reconstruction(poses, ['a', 'b', 'c', 'd'], str(path))
    midpoint = (poses[:, 1] + poses[:, 2]) / 2
    np.testing.assert_allclose(got[:, 1], midpoint, atol=1e-3)
    np.testing.assert_allclose(got[:, 2], midpoint, atol=1e-3)
    np.testing.assert_array_equal(got[:, [0, 3]], poses[:, [0, 3]])
    with pytest.raises(KeyError, match='weights.npz.*not predicted'):
        consistency.acae_reconstruction(poses, ['a', 'b', 'x', 'd'], str(path))
