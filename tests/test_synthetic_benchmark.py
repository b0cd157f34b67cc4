"""The synthetic-world benchmark and `eval.run --model`: a tiny written world, ground truth in
the camera frame checked against OpenCV's projection, hand-computed metric values for known
offsets, the mean-pose baseline against a direct numpy computation, the CLI with --predictions,
and a tiny exported MetrabsModel run through --model and compared with calling it directly."""
import contextlib
import json
import pathlib

import cv2
import numpy as np
import pytest
from pytest import approx

from eval import model_predictions, run
from eval.benchmarks import get_benchmark
from eval.benchmarks import formats
from eval.benchmarks import synthetic as bench
from eval.predictions import Predictions, load_predictions, save_predictions
from posepile.camera import Camera
from posepile.synthetic.format_weights import FORMAT_NAMES
from posepile.synthetic.ground_truth import load_test_ground_truth

SIDE = 64  # the tiny model's crop side


@pytest.fixture(scope='module')
def world(synthetic_world):
    return synthetic_world


@pytest.fixture(scope='module')
def gt(world):
    return bench.load_ground_truth(world)


def _all_joint_names(gt):
    return [n for f in FORMAT_NAMES for n in gt.joint_names[f]]


def _stack(per_format):
    return np.concatenate([per_format[f] for f in FORMAT_NAMES], axis=1)


def _predictions(gt, per_format, order=None, names=None):
    order = np.arange(len(gt)) if order is None else order
    names = names or _all_joint_names(gt)
    poses = _stack(per_format) if isinstance(per_format, dict) else per_format
    return Predictions(poses=poses[order], joint_names=tuple(names),
                       sequence=gt.sequence[order], frame=gt.frame[order])


def test_registered_and_ground_truth_in_camera_frame(world, gt):
    assert get_benchmark('synthetic') is bench
    test = load_test_ground_truth(world)
    assert len(gt) == len(test) > 5
    assert set(gt.coords) == set(FORMAT_NAMES)
    assert gt.sequence[0] == f'{test.dataset[0]}/{test.sequence[0]}/{test.camera_id[0]}'
    assert gt.sequence[0].count('/') == 3 and gt.sequence[0].split('/')[1] == 'test'
    assert len(set(zip(gt.sequence.tolist(), gt.frame.tolist()))) == len(gt)
    distorted = 0
    for i, cam in enumerate(test.cameras):
        dist = np.zeros(5) if cam.distortion_coeffs is None else cam.distortion_coeffs
        distorted += bool(np.any(dist != 0))
        for fmt in FORMAT_NAMES:
            # OpenCV's projection of the camera-frame joints (identity pose) = the camera's own
            # world -> image mapping of the world joints.
            projected, _ = cv2.projectPoints(gt.coords[fmt][i].reshape(-1, 1, 3), np.zeros(3),
                                             np.zeros(3), cam.intrinsic_matrix, dist)
            np.testing.assert_allclose(projected[:, 0], cam.world_to_image(test.coords[fmt][i]),
                                       atol=1e-6)
            assert gt.joint_names[fmt][0].endswith('_' + fmt)
    assert distorted > 0  # synwide's barrel distortion is exercised


def test_known_offsets_give_hand_computed_errors(gt):
    """Per format f: a constant camera-frame shift (0, 0, z_f) plus a shift (a, 0, 0) of its first
    joint only. Mean-aligned, joint 0 is off by a(J-1)/J and every other joint by a/J; absolute,
    joint 0 by sqrt(a^2 + z^2) and the others by z."""
    a = 300.0
    z = {f: 10.0 * (k + 1) for k, f in enumerate(FORMAT_NAMES)}
    pred = {}
    for f in FORMAT_NAMES:
        p = gt.coords[f].copy()
        p[..., 2] += z[f]
        p[:, 0, 0] += a
        pred[f] = p
    order = np.random.default_rng(0).permutation(len(gt))  # rows are matched by key
    result = bench.evaluate(gt, _predictions(gt, pred, order))
    table = result.tables[0]
    assert table.columns == ['MPJPE', 'PA-MPJPE', 'MPJPE-abs', 'PCK', 'AUC']
    total = dict(mpjpe=0.0, abs=0.0, n=0)
    for f in FORMAT_NAMES:
        n_joints = len(gt.joint_names[f])
        near, far = a / n_joints, a * (n_joints - 1) / n_joints
        mpjpe = (far + (n_joints - 1) * near) / n_joints
        mpjpe_abs = (np.hypot(a, z[f]) + (n_joints - 1) * z[f]) / n_joints
        pck = 100.0 * (n_joints - 1) / n_joints  # far > 150 mm > near
        # AUC: thresholds 0, 5, ..., 150 strictly above the error, out of 31.
        auc = 100.0 * (np.sum(np.arange(0, 151, 5) > far) + (n_joints - 1) *
                       np.sum(np.arange(0, 151, 5) > near)) / (31 * n_joints)
        row = dict(zip(table.columns, table.rows[f]))
        assert row['MPJPE'] == approx(mpjpe, abs=1e-6)
        assert row['MPJPE-abs'] == approx(mpjpe_abs, abs=1e-6)
        assert row['PCK'] == approx(pck)
        assert row['AUC'] == approx(auc)
        # Procrustes minimises the squared error, so its mean distance may exceed MPJPE's.
        assert 0 < row['PA-MPJPE'] < a
        total['mpjpe'] += n_joints * mpjpe
        total['abs'] += n_joints * mpjpe_abs
        total['n'] += n_joints
    assert result.summary['mpjpe'] == approx(total['mpjpe'] / total['n'], abs=1e-6)
    assert result.summary['mpjpe_abs'] == approx(total['abs'] / total['n'], abs=1e-6)
    assert table.rows[formats.ALL_FORMATS_LABEL][0] == approx(result.summary['mpjpe'])
    by_dataset = result.tables[2]
    assert by_dataset.columns[-1] == 'Avg' and set(by_dataset.columns[:-1]) == set(gt.dataset)
    assert by_dataset.rows['MPJPE'][-1] == approx(result.summary['mpjpe'])
    assert result.counts['n_poses'] == len(gt) and result.counts['n_formats_missing'] == 0
    assert result.counts['n_unused_predictions'] == 0
    # Every format is predicted, so the consistency of eval.consistency is reported.
    assert 'consistency_mm' in result.summary and len(result.tables) == 4


def test_similarity_transform_has_zero_pa_mpjpe(gt):
    rng = np.random.default_rng(1)
    angle = 0.4
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    pred = {f: 1.1 * gt.coords[f] @ rot.T + rng.normal(0, 100, 3) for f in FORMAT_NAMES}
    row = dict(zip(formats.METRIC_COLUMNS, bench.evaluate(gt, _predictions(gt, pred)
                                                        ).tables[0].rows['synsmpl']))
    assert row['PA-MPJPE'] == approx(0.0, abs=1e-6)
    assert row['MPJPE'] > 10.0


def test_mean_pose_baseline_matches_numpy(gt):
    result = bench.evaluate(gt, _predictions(gt, gt.coords))
    assert result.summary['mpjpe'] == approx(0.0, abs=1e-9)
    errors, abs_errors = [], []
    for f in FORMAT_NAMES:
        coords = gt.coords[f]
        centroids = coords.mean(axis=1, keepdims=True)
        centred = coords - centroids
        mean_pose = centred.mean(axis=0)
        format_errors = np.linalg.norm(centred - mean_pose, axis=-1)
        format_abs = np.linalg.norm(mean_pose + centroids.mean(axis=0) - coords, axis=-1)
        row = dict(zip(formats.METRIC_COLUMNS, result.tables[1].rows[f]))
        assert row['MPJPE'] == approx(format_errors.mean())
        assert row['MPJPE-abs'] == approx(format_abs.mean())
        errors.append(format_errors)
        abs_errors.append(format_abs)
    errors = np.concatenate(errors, axis=1)
    assert result.summary['baseline_mpjpe'] == approx(errors.mean())
    assert result.summary['baseline_mpjpe_abs'] == approx(np.concatenate(abs_errors, 1).mean())
    assert result.summary['baseline_pck'] == approx(100.0 * np.mean(errors < 150.0))
    assert result.summary['baseline_mpjpe'] > 100.0  # a real baseline, far from the truth


def test_missing_format_is_skipped_and_named(gt):
    present = [f for f in FORMAT_NAMES if f != 'syncoco']
    names = [n for f in present for n in gt.joint_names[f]]
    poses = np.concatenate([gt.coords[f] for f in present], axis=1)
    result = bench.evaluate(gt, _predictions(gt, poses, names=names))
    assert result.counts['n_formats_missing'] == 1
    assert result.protocol['missing_formats'] == ['syncoco']
    assert 'syncoco' not in result.tables[0].rows and 'consistency_mm' not in result.summary
    with pytest.raises(KeyError, match='no complete format'):
        bench.evaluate(gt, _predictions(gt, poses[:, :3], names=names[:3]))
    with pytest.raises(KeyError, match='no prediction for 1 of'):
        bench.evaluate(gt, _predictions(gt, _stack(gt.coords), order=np.arange(1, len(gt))))


def test_cli_with_predictions_prints_tables_and_writes_json(world, gt, tmp_path, capsys):
    pred_path = tmp_path / 'pred.npz'
    poses = _stack(gt.coords) + np.array([0.0, 0.0, 25.0])
    save_predictions(pred_path, poses, _all_joint_names(gt), gt.sequence, gt.frame)
    out = tmp_path / 'report.json'
    assert run.main(['--benchmark=synthetic', f'--root={world}', f'--predictions={pred_path}',
                     f'--out={out}']) == 0
    printed = capsys.readouterr().out
    assert 'mean-pose baseline' in printed and 'synmarker' in printed and 'PA-MPJPE' in printed
    assert 'Cross-skeleton consistency' in printed
    data = json.loads(out.read_text())
    assert data['summary']['mpjpe'] == approx(0.0, abs=1e-3)
    assert data['summary']['mpjpe_abs'] == approx(25.0, abs=1e-3)
    assert data['counts']['n_poses'] == len(gt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['pred.npz', 'report.json']


def test_distortion_for_the_model_api():
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    assert np.all(model_predictions.opencv5_distortion(Camera(intrinsic_matrix=K)) == 0)
    four = Camera(intrinsic_matrix=K, distortion_coeffs=[-0.1, 0.01, 0.001, 0.002])
    np.testing.assert_allclose(model_predictions.opencv5_distortion(four),
                               [-0.1, 0.01, 0.001, 0.002, 0.0], rtol=1e-6)
    eight_zero_tail = Camera(intrinsic_matrix=K, distortion_coeffs=[-0.1, 0.01, 0, 0, 0.003,
                                                                    0, 0, 0])
    np.testing.assert_allclose(model_predictions.opencv5_distortion(eight_zero_tail),
                               [-0.1, 0.01, 0, 0, 0.003], rtol=1e-6)
    rational = Camera(intrinsic_matrix=K, distortion_coeffs=[-0.1, 0.01, 0, 0, 0, 0.2, 0, 0])
    with pytest.raises(ValueError, match='distortion_coeffs.*beyond the 5th'):
        model_predictions.opencv5_distortion(rational, where='cam7')


# ------------------------------------------------------------------------- --model -------------
@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """Directory of a tiny MetrabsModel over the synthetic union's joints, exported with
    metrabs.serving.saved_model.export, with random weights of a visible scale."""
    import tensorflow as tf

    from metrabs.model.description import joint_names_of_set
    from metrabs.serving.saved_model import export
    from metrabs.model.config import ModelConfig
    from metrabs.model.metrabs_model import MetrabsModel

    names = joint_names_of_set('synthetic')
    model = MetrabsModel(ModelConfig(backbone='tiny', proc_side=SIDE, ghost_bn_group_size=0),
                         names)
    model(tf.zeros([1, SIDE, SIDE, 3]), tf.eye(3, batch_shape=[1]), training=False)
    rng = np.random.default_rng(0)
    for v in model.weights:
        # Untrained heads give near-uniform heatmaps; random weights make the output depend on
        # the image, so a wrong image, box or camera would show.
        if 'moving_variance' in v.path:
            v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))
        else:
            v.assign(rng.normal(0.0, 0.3, v.shape).astype(np.float32))
    out = tmp_path_factory.mktemp('model') / 'savedmodel'
    export(model, out)
    return out


@pytest.fixture(scope='module')
def loaded(exported):
    import tensorflow as tf
    return tf.saved_model.load(str(exported))


@contextlib.contextmanager
def _load_once(exported, loaded):
    """eval.run still calls tf.saved_model.load; loading (~8 s) is done only once per module."""
    import tensorflow as tf

    real_load = tf.saved_model.load

    def load(path, *args, **kwargs):
        if pathlib.Path(path) == exported and not args and not kwargs:
            return loaded
        return real_load(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf.saved_model, 'load', load)
        yield


@pytest.fixture(scope='module')
def model_run(world, exported, loaded, tmp_path_factory):
    out = tmp_path_factory.mktemp('model_report') / 'report.json'
    with _load_once(exported, loaded):
        code = run.main(['--benchmark=synthetic', f'--root={world}', f'--model={exported}',
                         f'--out={out}', '--num-aug=1'])
    assert code == 0
    return out


@pytest.mark.slow
def test_model_predictions_equal_direct_calls(gt, loaded, model_run):
    import tensorflow as tf

    path = model_predictions.predictions_path_for(model_run)
    assert path.name == 'report.predictions.npz' and path.is_file()
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {'poses', 'joint_names', 'sequence', 'frame', 'person',
                                   'poses2d', 'boxes', 'box_source', 'inference'}
        assert str(data['box_source']) == 'gt'
        np.testing.assert_array_equal(data['boxes'][:, :4], gt.boxes)
        assert np.all(np.isnan(data['boxes'][:, 4]))  # given boxes carry no detector score
        n_joints = sum(len(gt.joint_names[f]) for f in FORMAT_NAMES)
        assert data['poses'].shape == (len(gt), n_joints, 3)
        assert data['poses2d'].shape == (len(gt), n_joints, 2)
        np.testing.assert_array_equal(data['sequence'], gt.sequence)
        np.testing.assert_array_equal(data['frame'], gt.frame)
        assert set(_all_joint_names(gt)) <= set(data['joint_names'].tolist())
    predictions = load_predictions(path)
    model = loaded
    assert not model_predictions.has_detector(model)  # exported without --detector
    model_names = [n.decode() for n in model.joint_names.numpy()]
    assert list(predictions.joint_names) == model_names
    # A distorted (synwide) frame and one other, called directly with the raw camera.
    chosen = [int(np.flatnonzero(np.char.startswith(gt.sequence, 'synwide/'))[0]),
              int(np.flatnonzero(~np.char.startswith(gt.sequence, 'synwide/'))[0])]
    for i in chosen:
        cam = gt.cameras[i]
        dist = np.zeros(5, np.float32)
        if cam.distortion_coeffs is not None:
            dist[:len(cam.distortion_coeffs)] = cam.distortion_coeffs
        image = cv2.cvtColor(cv2.imread(str(gt.image_paths[i])), cv2.COLOR_BGR2RGB)
        direct = model.estimate_poses(
            image=tf.constant(image), boxes=tf.constant(gt.boxes[i:i + 1]),
            intrinsic_matrix=tf.constant(cam.intrinsic_matrix, tf.float32),
            distortion_coeffs=tf.constant(dist), extrinsic_matrix=tf.eye(4),
            world_up_vector=tf.constant(cam.R @ cam.world_up, tf.float32),
            default_fov_degrees=tf.constant(55.0), internal_batch_size=tf.constant(64),
            antialias_factor=tf.constant(1), num_aug=tf.constant(1),
            average_aug=tf.constant(True), skeleton=tf.constant(''))
        np.testing.assert_allclose(predictions.poses[i], direct['poses3d'].numpy()[0],
                                   atol=1e-3)
    assert predictions.inference['num_aug'] == 1 and predictions.inference['antialias_factor'] == 1
    report = json.loads(model_run.read_text())
    assert report['counts']['n_poses'] == len(gt)
    assert np.isfinite(report['summary']['mpjpe']) and report['summary']['mpjpe'] > 0


@pytest.mark.slow
def test_model_skeleton_passthrough_and_unsupported_benchmark(world, exported, loaded, tmp_path,
                                                             capsys):
    out = tmp_path / 'mpii.json'
    with _load_once(exported, loaded):
        assert run.main(['--benchmark=synthetic', f'--root={world}', f'--model={exported}',
                         f'--out={out}', '--num-aug=1', '--skeleton=synmpii']) == 0
    data = json.loads(out.read_text())
    assert data['protocol']['evaluated_formats'] == ['synmpii']
    assert data['counts']['n_formats_missing'] == len(FORMAT_NAMES) - 1
    saved = load_predictions(model_predictions.predictions_path_for(out))
    assert list(saved.joint_names)[:2] == ['rank_synmpii', 'rkne_synmpii']
    # (every benchmark has model_inputs now; the refusal of one without is tested in
    # tests/test_benchmarks.py::test_cli_rejects_model_and_inapplicable_flags)
    assert run.main(['--benchmark=synthetic', f'--root={world}', f'--model={exported}']) == 2
