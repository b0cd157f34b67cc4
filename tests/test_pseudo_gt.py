"""Pseudo-GT: the mirrored camera's intrinsics, flip averaging in closed form (a symmetric crop's
averaged prediction equals its own mirror), and the CLI from a checkpoint over TFRecord shards
to an npz with joint names."""
import json

import numpy as np
import pytest
import tensorflow as tf

from metrabs import pseudo_gt
from metrabs.model.config import ModelConfig
from metrabs.model.metrabs_model import MetrabsModel
from posepile import tfrecord_schema
from posepile.camera import Camera, make_crop_camera
from posepile.cropping import CroppedExample, box_to_crop, encode_jpeg
from posepile.joints.joint_info import JointInfo
from posepile.shards import ShardWriter

SIDE = 64
JOINTS = ('head_h36m', 'lsho_h36m', 'rsho_h36m', 'lhip_h36m', 'rhip_h36m', 'lank_h36m',
          'rank_h36m')
OFFSETS = np.array([[0, -750, 0], [180, -500, 30], [-180, -500, -30], [110, 0, 20],
                    [-110, 0, -20], [120, 800, 60], [-120, 790, -50]], np.float64)
MIRROR = np.diag([-1.0, 1.0, 1.0])


@pytest.fixture(scope='module')
def model():
    tf.random.set_seed(1)
    m = MetrabsModel(ModelConfig(backbone='tiny', proc_side=SIDE, ghost_bn_group_size=0),
                     JOINTS)
    m(tf.zeros([1, SIDE, SIDE, 3]), tf.eye(3, batch_shape=[1]), training=False)
    return m


def _intrinsics(n, cx=(SIDE - 1) / 2, skew=0.0):
    k = np.array([[70.0, skew, cx], [0, 72.0, (SIDE - 1) / 2 + 1.5], [0, 0, 1]], np.float32)
    return np.repeat(k[None], n, axis=0)


def test_flipped_intrinsics_see_the_mirrored_scene():
    rng = np.random.default_rng(0)
    k = _intrinsics(1, cx=25.0, skew=0.8)
    points = rng.normal(0, 300, (1, 5, 3)) + [0, 0, 3000]
    images = np.zeros([1, SIDE, SIDE, 3], np.float32)
    _, k_flipped = pseudo_gt.flip_crops(images, k)
    projected = Camera(intrinsic_matrix=k[0]).camera_to_image(points[0])
    projected_mirror = Camera(intrinsic_matrix=k_flipped[0].numpy()).camera_to_image(
        points[0] @ MIRROR)
    np.testing.assert_allclose(projected_mirror[:, 0], SIDE - 1 - projected[:, 0], atol=1e-3)
    np.testing.assert_allclose(projected_mirror[:, 1], projected[:, 1], atol=1e-3)


def test_flip_average_of_symmetric_crop_equals_its_mirror(model):
    rng = np.random.default_rng(2)
    half = rng.uniform(0, 1, [2, SIDE, SIDE, 3]).astype(np.float32)
    symmetric = (half + half[:, :, ::-1]) / 2
    k = _intrinsics(2)
    perm = JointInfo(JOINTS).mirror_perm
    plain = pseudo_gt.make_predict_fn(model, JOINTS, flip_average=False)
    averaged = pseudo_gt.make_predict_fn(model, JOINTS, flip_average=True)
    poses, poses2d = (x.numpy() for x in averaged(symmetric, k))
    mirrored = poses[:, perm] @ MIRROR
    mirrored2d = poses2d[:, perm] * [-1, 1] + [SIDE - 1, 0]
    np.testing.assert_allclose(mirrored, poses, atol=0.05)
    np.testing.assert_allclose(mirrored2d, poses2d, atol=1e-3)
    # Without averaging the random net is not symmetric, so the check above is not vacuous.
    raw = plain(symmetric, k)[0].numpy()
    assert np.abs(raw[:, perm] @ MIRROR - raw).max() > 1.0


def test_flip_average_commutes_with_mirroring_any_crop(model):
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 1, [2, SIDE, SIDE, 3]).astype(np.float32)
    k = _intrinsics(2, cx=29.0)
    averaged = pseudo_gt.make_predict_fn(model, JOINTS, flip_average=True)
    flipped_images, flipped_k = pseudo_gt.flip_crops(images, k)
    direct = averaged(images, k)
    via_mirror = pseudo_gt.unflip_predictions(*averaged(flipped_images, flipped_k), SIDE,
                                              JointInfo(JOINTS).mirror_perm)
    np.testing.assert_allclose(via_mirror[0], direct[0], atol=0.05)
    np.testing.assert_allclose(via_mirror[1], direct[1], atol=1e-3)


def _make_record(index, rng):
    original = Camera(optical_center=rng.uniform(-500, 500, 3) + [0, -1000, -4000],
                      intrinsic_matrix=[[1000, 0, 960], [0, 1000, 540], [0, 0, 1]])
    person = np.array([0, -900, 0]) + rng.uniform(-300, 300, 3)
    original.turn_towards(target_world_point=person)
    world = (person + OFFSETS).astype(np.float32)
    if index == 1:
        world[2] = np.nan
    points = original.world_to_image(world[np.all(np.isfinite(world), 1)].astype(np.float64))
    lo, hi = points.min(0), points.max(0)
    box = np.concatenate([lo - 0.1 * (hi - lo), 1.2 * (hi - lo)])
    camera = make_crop_camera(original, box, SIDE, scale=1.25)
    image = rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
    return tfrecord_schema.encode_example(CroppedExample(
        image_jpeg=encode_jpeg(image, 95), camera=camera, world_coords=world,
        joint_names=JOINTS, box=box_to_crop(box, original, camera), crop_size=SIDE,
        dataset='studio', sequence=f'seq{index}', frame=index))


def test_cli_writes_npz_with_joint_names(model, tmp_path, capsys):
    rng = np.random.default_rng(0)
    ShardWriter(tmp_path / 'studio', 1).write_shard(0, [_make_record(i, rng) for i in range(5)])
    logdir = tmp_path / 'run'
    (logdir / 'checkpoints').mkdir(parents=True)
    prefix = tf.train.Checkpoint(model=model).save(str(logdir / 'checkpoints' / 'ckpt'))
    (logdir / 'config.json').write_text(json.dumps({'model': {
        'backbone': 'tiny', 'proc_side': SIDE, 'ghost_bn_group_size': 0}}))
    (logdir / 'joint_names.json').write_text(json.dumps(list(JOINTS)))
    out = tmp_path / 'poses.npz'
    pseudo_gt.main([f'--model={prefix}', f'--datasets=studio={tmp_path}/studio/*.tfrecord',
                    f'--out={out}', '--batch-size=2', '--no-progress'])  # flip-averaged by default
    with np.load(out, allow_pickle=False) as data:
        assert list(data['joint_names']) == list(JOINTS)
        assert data['poses'].shape == (5, len(JOINTS), 3)
        assert list(data['dataset']) == ['studio'] * 5 and bool(data['flip_average'])
        assert np.isnan(data['true3d_cam'][1, 2]).all() and np.isfinite(data['true3d_cam'][0]).all()
        poses, intrinsics = data['poses'], data['intrinsics']
    # Same numbers as the library on the same batches.
    from metrabs.data import input_pipeline as ip
    config = ip.InputConfig(JOINTS, (ip.DatasetPart('studio', f'{tmp_path}/studio/*.tfrecord', 1),),
                            proc_side=SIDE)
    expected = pseudo_gt.predict_dataset(model, ip.make_eval_dataset(config, 3), JOINTS, True,
                                         show_progress=False)
    np.testing.assert_allclose(poses, expected['poses'], rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(intrinsics, expected['intrinsics'])

    assert pseudo_gt.main([f'--model={prefix}', '--datasets=nonsense', f'--out={out}']) == 2
    assert 'expected NAME=GLOB' in capsys.readouterr().err


def test_released_datasets_are_h36m_and_bmlmovi_splits_that_exist(tmp_path):
    for dataset, split in (('h36m', 'train'), ('h36m', 'test'), ('bmlmovi', 'train'),
                           ('surreal', 'train')):
        (tmp_path / dataset / split).mkdir(parents=True)
    specs = pseudo_gt.released_dataset_specs(tmp_path)
    assert specs == {'h36m_train': f'{tmp_path}/h36m/train/*.tfrecord',
                     'h36m_test': f'{tmp_path}/h36m/test/*.tfrecord',
                     'bmlmovi_train': f'{tmp_path}/bmlmovi/train/*.tfrecord'}
    with pytest.raises(FileNotFoundError, match=r'h36m/train.*bmlmovi/train'):
        pseudo_gt.released_dataset_specs(tmp_path / 'surreal')

