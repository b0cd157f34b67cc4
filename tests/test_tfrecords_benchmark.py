"""`eval.run --benchmark=tfrecords`: any built split (posepile.build TFRecords, one's own data
included) evaluated in the formats its records label, checked against the synthetic world's own
ground truth and against hand-computed errors; and the --model path against direct calls."""
import json

import numpy as np
import pytest
from pytest import approx

from eval import run
from eval.benchmarks import formats as format_eval
from eval.benchmarks import get_benchmark
from eval.benchmarks import synthetic as synthetic_bench
from eval.benchmarks import tfrecords as bench
from eval.predictions import Predictions, save_predictions
from posepile import build, joints
from posepile.camera import Camera
from posepile.example import Pose3DExample
from posepile.synthetic.format_weights import FORMAT_NAMES

SIDE = 64


@pytest.fixture(scope='module')
def world(synthetic_world):
    return synthetic_world


@pytest.fixture(scope='module')
def built(world, tmp_path_factory):
    out = tmp_path_factory.mktemp('built')
    assert build.main(['--dataset=synthetic', f'--root={world}', f'--out={out}',
                       f'--crop-size={SIDE}', '--num-shards=2', '--dedup-threshold-mm=0']) == 0
    return out


@pytest.fixture(scope='module')
def gt(built):
    return bench.load_ground_truth(built)


def _predictions(gt, per_format, order=None):
    order = np.arange(len(gt)) if order is None else order
    names = [n for f in gt.coords for n in gt.joint_names[f]]
    poses = np.concatenate([per_format[f] for f in gt.coords], axis=1)
    return Predictions(poses=poses[order], joint_names=tuple(names), sequence=gt.sequence[order],
                       frame=gt.frame[order], person=gt.person[order])


def test_ground_truth_is_the_worlds_in_the_crop_cameras(world, gt):
    assert get_benchmark('tfrecords') is bench
    truth = synthetic_bench.load_ground_truth(world)
    # Keys are the synthetic benchmark's (the converter's sequence is '<split>/<name>').
    assert sorted(gt.sequence.tolist()) == sorted(truth.sequence.tolist())
    assert list(gt.coords) == list(FORMAT_NAMES)  # test frames label all six formats
    row_of = {(s, f): i for i, (s, f) in enumerate(zip(truth.sequence, truth.frame))}
    rows = [row_of[(s, f)] for s, f in zip(gt.sequence, gt.frame)]
    for fmt in FORMAT_NAMES:
        ours, theirs = gt.coords[fmt], truth.coords[fmt][rows]
        # The crop camera turns about the original camera's centre: distances from the camera
        # and between joints are the same in both frames.
        np.testing.assert_allclose(np.linalg.norm(ours, axis=-1),
                                   np.linalg.norm(theirs, axis=-1), atol=0.05)
        np.testing.assert_allclose(np.linalg.norm(ours[:, :1] - ours, axis=-1),
                                   np.linalg.norm(theirs[:, :1] - theirs, axis=-1), atol=0.05)
    assert gt.boxes.shape == (len(gt), 4) and np.all(gt.boxes[:, 2:] > 0)
    image = gt.images[0]()
    assert image.shape == (SIDE, SIDE, 3) and image.dtype == np.uint8


def test_similarity_transformed_predictions_give_hand_computed_errors(gt):
    rng = np.random.default_rng(0)
    n = len(gt)
    shift = rng.normal(0, 80, (n, 1, 3))
    angle = 0.3
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    pred = {}
    for fmt, coords in gt.coords.items():
        if fmt == 'synmocap':  # a similarity transform: PA-MPJPE 0, MPJPE by hand below
            centre = coords.mean(axis=1, keepdims=True)
            pred[fmt] = 1.1 * (coords - centre) @ rot.T + centre + shift
        else:  # a translation: every aligned error is 0, the absolute one |shift|
            pred[fmt] = coords + shift
    # Rows in another order than the ground truth's: matched on (sequence, frame, person).
    result = bench.evaluate(gt, _predictions(gt, pred, order=np.arange(n)[::-1]))
    table = {row: dict(zip(format_eval.METRIC_COLUMNS, values))
             for row, values in result.tables[0].rows.items()}
    for fmt in FORMAT_NAMES[1:]:
        assert table[fmt]['MPJPE'] == approx(0, abs=1e-6)
        assert table[fmt]['PA-MPJPE'] == approx(0, abs=1e-6)
        assert table[fmt]['MPJPE-abs'] == approx(np.linalg.norm(shift, axis=-1).mean(), rel=1e-9)
        assert table[fmt]['PCK'] == 100 and table[fmt]['AUC'] == approx(100 * 30 / 31)
    coords = gt.coords['synmocap']
    centred = coords - coords.mean(axis=1, keepdims=True)
    hand = np.mean([np.linalg.norm(1.1 * c @ rot.T - c, axis=-1) for c in centred])
    assert table['synmocap']['MPJPE'] == approx(hand, rel=1e-9)
    assert table['synmocap']['PA-MPJPE'] == approx(0, abs=1e-6)
    assert result.summary['synmocap_mpjpe'] == approx(hand, rel=1e-9)
    # The per-dataset table has the five synthetic datasets, and the baseline column.
    per_dataset = result.tables[2]
    assert sorted(per_dataset.columns[:-1]) == sorted(set(gt.dataset.tolist()))
    assert 'Baseline MPJPE' in per_dataset.rows
    assert result.counts['n_poses'] == n and result.counts['n_formats_missing'] == 0


TOY = {'name': 'toylab', 'joints': ['pelv', 'lhip', 'rhip', 'neck', 'head'],
       'pairs': [['lhip', 'rhip']], 'edges': 'pelv-neck-head,pelv-lhip,pelv-rhip',
       'source': 'test'}


@pytest.fixture()
def toy_build(tmp_path):
    """A one's-own-skeleton build: poses with unlabelled joints, one with too few labelled
    joints, one 2D-only record; all in the test split."""
    joints.clear_user_skeletons()
    joints.register_skeleton(TOY)
    names = tuple(joints.union_names('toylab'))
    camera = Camera(intrinsic_matrix=[[200, 0, 63.5], [0, 200, 47.5], [0, 0, 1]])
    rng = np.random.default_rng(1)
    world = rng.normal([0, 0, 3000], 150, (6, 5, 3))
    world[1, 4] = np.nan            # head unlabelled
    world[2, [0, 3]] = np.nan       # pelvis and neck unlabelled
    world[3, 2:] = np.nan           # only 2 labelled: too few, counted, not evaluated
    examples = [Pose3DExample(image=np.full((96, 128, 3), 90, np.uint8), camera=camera,
                              world_coords=world[i], joint_names=names, box=[20, 10, 80, 80],
                              dataset='toylab', sequence='s', frame=i, split='test')
                for i in range(5)]
    coords2d = rng.uniform(10, 80, (5, 2))
    examples.append(Pose3DExample(image=np.zeros((96, 128, 3), np.uint8), camera=camera,
                                  world_coords=np.full((5, 3), np.nan), joint_names=names,
                                  box=[20, 10, 80, 80], dataset='toylab', sequence='p', frame=0,
                                  split='test', coords2d=coords2d))
    out = tmp_path / 'toylab'
    build.build_dataset(examples, out, build.BuildConfig(crop_size=SIDE, num_shards=1,
                                                         dedup_threshold_mm=0))
    joints.clear_user_skeletons()  # the manifest carries the skeleton: eval registers it
    yield out, world
    joints.clear_user_skeletons()


def test_own_skeleton_with_unlabelled_joints_by_hand(toy_build, tmp_path, capsys):
    out, world = toy_build
    gt = bench.load_ground_truth(out)
    assert list(gt.coords) == ['toylab'] and len(gt) == 5
    assert gt.counts == {'n_2d_only_records_skipped': 1, 'n_poses_too_few_toylab_joints': 1}
    coords = gt.coords['toylab']
    assert np.all(np.isnan(coords[3]))
    offsets = np.array([[0, 0, 0], [30, 0, 0], [0, 200, 0], [0, 0, 60], [10, 10, 10]], float)
    pred = np.nan_to_num(coords) + offsets  # predictions are finite everywhere
    path = tmp_path / 'p.npz'
    save_predictions(path, pred, gt.joint_names['toylab'], gt.sequence, gt.frame, gt.person)
    report = tmp_path / 'r.json'
    assert run.main(['--benchmark=tfrecords', f'--root={out}', f'--predictions={path}',
                     f'--out={report}']) == 0
    assert 'toylab' in capsys.readouterr().out
    summary = json.loads(report.read_text())['summary']
    # By hand: each pose's labelled joints, their mean offset subtracted (mean alignment).
    errors, absolute = [], []
    for i in range(5):
        labelled = [j for j in range(5) if np.all(np.isfinite(world[i, j]))]
        if len(labelled) < 3:
            continue
        mean = offsets[labelled].mean(axis=0)
        errors += [np.linalg.norm(offsets[j] - mean) for j in labelled]
        absolute += [np.linalg.norm(offsets[j]) for j in labelled]
    assert summary['toylab_mpjpe'] == approx(np.mean(errors), abs=1e-3)
    assert summary['mpjpe_abs'] == approx(np.mean(absolute), abs=1e-3)
    assert summary['pck'] == approx(100 * np.mean(np.array(errors) < 150), abs=1e-6)
    assert summary['auc'] == approx(100 * np.mean([np.mean(e < np.arange(0, 151, 5))
                                                   for e in errors]), abs=1e-4)


def test_split_without_records_and_non_build_are_named(toy_build, tmp_path, capsys):
    out, _ = toy_build
    assert run.main(['--benchmark=tfrecords', f'--root={out}', '--split=train',
                     f'--predictions={tmp_path / "p.npz"}']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "holds no 'train' shards" in err
    assert run.main(['--benchmark=tfrecords', f'--root={tmp_path / "nothing"}',
                     f'--predictions={tmp_path / "p.npz"}']) == 2
    assert 'no such directory' in capsys.readouterr().err


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    import tensorflow as tf

    from metrabs.model.config import ModelConfig
    from metrabs.model.description import joint_names_of_set
    from metrabs.model.metrabs_model import MetrabsModel
    from metrabs.serving.saved_model import export

    model = MetrabsModel(ModelConfig(backbone='tiny', proc_side=SIDE, ghost_bn_group_size=0),
                         joint_names_of_set('synthetic'))
    model(tf.zeros([1, SIDE, SIDE, 3]), tf.eye(3, batch_shape=[1]), training=False)
    rng = np.random.default_rng(0)
    for v in model.weights:
        v.assign(rng.normal(0.0, 0.3, v.shape).astype(np.float32)
                 if 'moving_variance' not in v.path else np.ones(v.shape, np.float32))
    out = tmp_path_factory.mktemp('model') / 'savedmodel'
    export(model, out)
    return out


@pytest.mark.slow
def test_model_run_equals_direct_calls_on_the_crops(built, gt, exported, tmp_path):
    import tensorflow as tf

    report = tmp_path / 'report.json'
    assert run.main(['--benchmark=tfrecords', f'--root={built}', f'--model={exported}',
                     f'--out={report}', '--num-aug=1', '--skeleton=synsmpl']) == 0
    data = json.loads(report.read_text())
    assert data['protocol']['evaluated_formats'] == ['synsmpl']
    assert data['counts']['n_poses'] == len(gt) and np.isfinite(data['summary']['mpjpe'])
    with np.load(tmp_path / 'report.predictions.npz') as saved:
        poses, sequence, frame = saved['poses'], saved['sequence'], saved['frame']
    model = tf.saved_model.load(str(exported))
    for i in (0, len(gt) - 1):
        camera = gt.cameras[i]
        direct = model.estimate_poses(
            gt.images[i](), boxes=gt.boxes[i:i + 1],
            intrinsic_matrix=camera.intrinsic_matrix.astype(np.float32),
            world_up_vector=(camera.R @ camera.world_up).astype(np.float32), num_aug=1,
            skeleton='synsmpl')['poses3d'].numpy()
        row = np.flatnonzero((sequence == gt.sequence[i]) & (frame == gt.frame[i]))
        np.testing.assert_allclose(poses[row], direct, atol=1e-3)


@pytest.mark.slow
def test_demo_shows_the_ground_truth_and_its_error(world, exported, tmp_path, capsys):
    """metrabs.demo on a synthetic test image finds its annotation in the world, estimates in
    the annotated box with the world's camera and prints the error; checked against the
    synthetic benchmark's ground truth and a direct model call."""
    import re

    import imageio.v3 as iio
    import tensorflow as tf

    from eval import metrics
    from eval.model_predictions import opencv5_distortion
    from metrabs import demo

    truth = synthetic_bench.load_ground_truth(world)
    i = 0
    out = tmp_path / 'demo.png'
    assert demo.main([f'--model={exported}', f'--image={truth.image_paths[i]}', f'--out={out}',
                      '--skeleton=synsmpl']) == 0
    printed = capsys.readouterr().out
    assert 'skeleton synsmpl' in printed and 'ground truth dashed' in printed
    assert 'ground truth from the synthetic dataset' in printed
    shown = float(re.search(r'MPJPE (\d+) mm', printed).group(1))
    model = tf.saved_model.load(str(exported))
    cam = truth.cameras[i]
    pred = model.estimate_poses(
        iio.imread(truth.image_paths[i]), truth.boxes[i:i + 1],
        intrinsic_matrix=cam.intrinsic_matrix.astype(np.float32),
        distortion_coeffs=opencv5_distortion(cam),
        world_up_vector=(cam.R @ cam.world_up).astype(np.float32), num_aug=1,
        skeleton='synsmpl')['poses3d'].numpy()
    want = metrics.nan_mean(metrics.joint_errors(pred, truth.coords['synsmpl'][i:i + 1], 'mean'))
    assert shown == pytest.approx(want, abs=0.6)  # printed rounded to 1 mm
    figure = iio.imread(out)
    assert figure.shape[:2] == (550, 1200) and figure.std() > 1
