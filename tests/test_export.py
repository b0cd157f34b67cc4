"""Export a tiny MetrabsModel checkpoint with the CLI (a separate process; the session fixture
`exported` of conftest.py), reload the SavedModel here and compare it with the in-memory model
and with a numpy/OpenCV re-implementation of the pipeline (posepile.camera + image_warp); run
`saved_model_cli`; every skeleton; bad inputs."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from metrabs.model import description, restore
from metrabs.serving import inference_module, tta
from metrabs.serving.inference_module import PoseEstimatorModule
from posepile import joints as joint_registry
from posepile.camera import Camera, make_crop_camera
from posepile.image_warp import reproject_image

from fixture_tiny_model import IMAGE_SHAPE, SIDE, FixedBoxDetector, joint_names

pytestmark = pytest.mark.slow
K = np.array([[150.0, 0.0, 66.0], [0.0, 155.0, 45.0], [0.0, 0.0, 1.0]], np.float32)
DIST = np.array([-0.15, 0.03, 0.002, -0.001, 0.0], np.float32)
BOXES = np.array([[20.0, 10.0, 50.0, 70.0], [70.0, 30.0, 40.0, 50.0]], np.float32)


@pytest.fixture(scope='module')
def image():
    rng = np.random.default_rng(1)
    coarse = rng.uniform(0, 255, (12, 16, 3)).astype(np.float32)
    return tf.image.resize(coarse[None], IMAGE_SHAPE[:2], 'bicubic')[0].numpy().clip(
        0, 255).astype(np.uint8)


def _crop_inputs(n=3):
    rng = np.random.default_rng(2)
    crops = rng.integers(0, 256, (n, SIDE, SIDE, 3)).astype(np.uint8)
    intr = np.tile(np.array([[80.0, 0, 31.5], [0, 80, 31.5], [0, 0, 1]], np.float32), (n, 1, 1))
    intr[:, 0, 0] += np.arange(n) * 10
    return crops, intr


def test_predict_crops_matches_in_memory_model(exported):
    model, loaded, _ = exported
    crops, intr = _crop_inputs()
    got = loaded.predict_crops(crops, intr)
    want = model(crops, intr, training=False)
    for key, ref in (('poses3d', 'coords3d_abs_mm'), ('poses2d', 'coords2d_px')):
        w = want[ref].numpy()
        np.testing.assert_allclose(got[key].numpy(), w, rtol=1e-4, atol=1e-4 * np.abs(w).max())
    assert np.ptp(want['coords2d_px'].numpy(), axis=1).max() > 1.0  # not a degenerate model


def _numpy_pipeline(model, image, box, camera, world_up, num_aug=1):
    """Reference for estimate_poses with numpy/OpenCV crops: [J, 3] world mm, [J, 2] px."""
    roll_aug, flip_aug, bright_aug = (x.numpy() for x in tta.augmentation_params(num_aug))
    info = joint_registry.JointInfo(model.joint_names)
    world, image2d = [], []
    for roll_a, flip, bright in zip(roll_aug, flip_aug, bright_aug):
        turned = camera.copy().turn_towards(target_image_point=box[:2] + box[2:] / 2)
        up = turned.R @ world_up
        roll = np.arctan2(up[0], -up[1]) + roll_a
        crop_cam = make_crop_camera(camera, box, SIDE, scale=inference_module.DEFAULT_BOX_SCALE,
                                    rotation_rad=roll, flip=flip)
        # Exact maps: the reference for the in-graph warp (tf_camera), which is exact per pixel.
        crop = reproject_image(image.astype(np.float32), camera, crop_cam, (SIDE, SIDE),
                               max_map_error_px=0)
        crop = np.clip(crop / 255.0 * bright, 0, 1)
        pred = model(crop[None], crop_cam.intrinsic_matrix[None].astype(np.float32))
        pose_crop = pred['coords3d_abs_mm'].numpy()[0].astype(np.float64)
        if flip:
            pose_crop = info.mirror(pose_crop)
        w = crop_cam.camera_to_world(pose_crop)
        world.append(w)
        image2d.append(camera.world_to_image(w))
    return np.mean(world, 0), np.mean(image2d, 0)


@pytest.mark.parametrize('with_camera', [False, True])
def test_estimate_poses_matches_numpy_camera_pipeline(exported, image, with_camera):
    model, loaded, _ = exported
    if with_camera:
        rot = Camera().rotate(yaw=0.2, pitch=-0.3, roll=0.1).R
        center = np.array([100.0, -1500.0, 200.0])
        extr = np.eye(4, dtype=np.float32)
        extr[:3, :3], extr[:3, 3] = rot, -rot @ center
        camera = Camera(center, rot, K, DIST, world_up=(0, 0, 1))
        up = np.array([0.0, 0.0, 1.0])
        kwargs = dict(intrinsic_matrix=K, distortion_coeffs=DIST, extrinsic_matrix=extr,
                      world_up_vector=up.astype(np.float32))
    else:
        h, w = IMAGE_SHAPE[:2]
        f = max(h, w) / 2 / np.tan(np.deg2rad(40.0) / 2)
        camera = Camera(intrinsic_matrix=[[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
        up = np.array([0.0, -1.0, 0.0])
        kwargs = dict(default_fov_degrees=40.0)
    num_aug = 3 if with_camera else 1
    pred = loaded.estimate_poses(image, BOXES, num_aug=num_aug, **kwargs)
    for i, box in enumerate(BOXES):
        want3d, want2d = _numpy_pipeline(model, image, box.astype(np.float64), camera, up,
                                         num_aug)
        scale = np.abs(want3d).max()
        np.testing.assert_allclose(pred['poses3d'].numpy()[i], want3d, atol=2e-3 * scale)
        # Joints of the random net far outside the view (|px| >> image) amplify float32
        # round-off through the distortion polynomial; compare the ones near the image.
        size = np.array(IMAGE_SHAPE[1::-1], np.float64)
        near = np.all(np.abs(want2d - size / 2) < size, axis=-1)
        assert near.sum() >= 5
        np.testing.assert_allclose(pred['poses2d'].numpy()[i][near], want2d[near], rtol=1e-4,
                                   atol=0.05)


def test_every_skeleton_selects_its_joints(exported, image):
    _, loaded, _ = exported
    all_joints = loaded.estimate_poses(image, BOXES[:1], num_aug=1)['poses3d'].numpy()[0]
    names = [n.decode() for n in loaded.joint_names.numpy()]
    expected_skeletons = {s for s in joint_registry.skeleton_names('all')
                          if set(joint_registry.union_names(s)) <= set(names)}
    assert set(loaded.per_skeleton_joint_names) == expected_skeletons
    assert {'h36m', 'h36m_17', 'coco'} <= expected_skeletons
    for skeleton in sorted(expected_skeletons):
        info = joint_registry.get_skeleton(skeleton)
        got_names = [n.decode() for n in loaded.per_skeleton_joint_names[skeleton].numpy()]
        assert got_names == list(info.names)
        np.testing.assert_array_equal(loaded.per_skeleton_joint_edges[skeleton].numpy(),
                                      info.edges)
        np.testing.assert_array_equal(loaded.per_skeleton_edges[skeleton].numpy(), info.edges)
        pose = loaded.estimate_poses(image, BOXES[:1], num_aug=1,
                                     skeleton=skeleton)['poses3d'].numpy()[0]
        idx = [names.index(n) for n in joint_registry.union_names(skeleton)]
        np.testing.assert_allclose(pose, all_joints[idx], rtol=1e-5, atol=1e-3)


def test_augmentations_batched_and_detector_fallback_agree(exported, image):
    _, loaded, _ = exported
    single = loaded.estimate_poses(image, BOXES, num_aug=2, average_aug=False)
    assert single['poses3d'].shape[:2] == (2, 2)
    averaged = loaded.estimate_poses(image, BOXES, num_aug=2)
    np.testing.assert_allclose(averaged['poses3d'].numpy(),
                               single['poses3d'].numpy().mean(1), rtol=1e-5, atol=1e-3)
    images = np.stack([image, image[:, ::-1]])
    ragged = tf.RaggedTensor.from_row_lengths(np.concatenate([BOXES, BOXES[:1]]), [2, 1])
    batched = loaded.estimate_poses_batched(images, ragged, num_aug=2)
    np.testing.assert_allclose(batched['poses3d'][0].numpy(), averaged['poses3d'].numpy(),
                               rtol=1e-4, atol=1e-2)
    flipped = loaded.estimate_poses(image[:, ::-1], BOXES[:1], num_aug=2)
    np.testing.assert_allclose(batched['poses3d'][1].numpy(), flipped['poses3d'].numpy(),
                               rtol=1e-4, atol=1e-2)

    h, w = IMAGE_SHAPE[:2]
    detected = loaded.detect_poses(image, num_aug=1, suppress_implausible_poses=False)
    np.testing.assert_allclose(detected['boxes'].numpy(), [[0, 0, w, h, 1]])
    whole = loaded.estimate_poses(image, np.array([[0, 0, w, h]], np.float32), num_aug=1)
    np.testing.assert_allclose(detected['poses3d'].numpy(), whole['poses3d'].numpy(),
                               rtol=1e-5, atol=1e-3)
    filtered = loaded.detect_poses(image, num_aug=2)  # a random net: whatever passes is valid
    assert filtered['poses3d'].shape[0] == filtered['boxes'].shape[0] <= 1
    det_batched = loaded.detect_poses_batched(images, num_aug=1,
                                              suppress_implausible_poses=False, skeleton='coco')
    assert det_batched['poses3d'].shape[2:] == (19, 3)
    np.testing.assert_allclose(det_batched['boxes'][0].numpy(), [[0, 0, w, h, 1]])


def test_saved_model_cli_runs_the_serving_signatures(exported, tmp_path):
    model, loaded, out = exported
    crops, intr = _crop_inputs(2)
    np.savez(tmp_path / 'inputs.npz', images=crops, intrinsics=intr)
    cli = pathlib.Path(sys.executable).parent / 'saved_model_cli'
    result = subprocess.run(
        [str(cli), 'run', '--dir', str(out), '--tag_set', 'serve', '--signature_def',
         'serving_default', '--inputs',
         f'images={tmp_path}/inputs.npz[images];intrinsics={tmp_path}/inputs.npz[intrinsics]',
         '--outdir', str(tmp_path / 'outputs')],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'), capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    want = model(crops, intr)['coords3d_abs_mm'].numpy()
    got = np.load(tmp_path / 'outputs' / 'poses3d.npy')
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())

    image = np.random.default_rng(5).integers(0, 256, IMAGE_SHAPE).astype(np.uint8)
    args = dict(image=image, boxes=BOXES, intrinsic_matrix=K, distortion_coeffs=DIST,
                extrinsic_matrix=np.eye(4, dtype=np.float32),
                world_up_vector=np.array([0, -1, 0], np.float32),
                default_fov_degrees=np.float32(55), internal_batch_size=np.int32(8),
                antialias_factor=np.int32(1), num_aug=np.int32(2), skeleton=np.array(b'h36m_17'),
                suppress_implausible_poses=np.array(False))
    np.savez(tmp_path / 'estimate.npz', **args)
    result = subprocess.run(
        [str(cli), 'run', '--dir', str(out), '--tag_set', 'serve', '--signature_def',
         'estimate_poses', '--inputs',
         ';'.join(f'{k}={tmp_path}/estimate.npz[{k}]' for k in args),
         '--outdir', str(tmp_path / 'estimate_out')],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'), capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    want = loaded.estimate_poses(**{k: v for k, v in args.items() if k not in (
        'skeleton', 'suppress_implausible_poses')}, skeleton='h36m_17')['poses3d'].numpy()
    np.testing.assert_allclose(np.load(tmp_path / 'estimate_out' / 'poses3d.npy'), want,
                               rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_bad_inputs_fail_clearly(exported, image):
    _, loaded, _ = exported
    # (A numpy float array is cast to the signature's uint8 by TF's argument binding; a float
    # tensor is refused.)
    with pytest.raises(TypeError, match='image'):
        loaded.estimate_poses(tf.constant(image, tf.float32), BOXES)
    # Grey, RGBA and [P, 5] boxes are taken (tests/test_model_inputs.py); other layouts not.
    with pytest.raises(tf.errors.InvalidArgumentError, match=r'image must be \[H, W\]'):
        loaded.estimate_poses(image[None], BOXES)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r'boxes must be \[P, 4\]'):
        loaded.estimate_poses(image, BOXES[:, :3])
    with pytest.raises((TypeError, ValueError)):
        loaded.estimate_poses(image, BOXES, intrinsic_matrix=np.eye(4, dtype=np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match='unknown skeleton'):
        loaded.estimate_poses(image, BOXES, skeleton='no_such_skeleton')
    with pytest.raises(tf.errors.InvalidArgumentError, match='width and height'):
        loaded.estimate_poses(image, np.array([[1, 1, 0, 5]], np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match='antialias_factor'):
        loaded.estimate_poses(image, BOXES, antialias_factor=9)
    crops, intr = _crop_inputs(1)
    with pytest.raises((TypeError, ValueError), match='images'):
        loaded.predict_crops(crops[:, :32, :32], intr)
    with pytest.raises(tf.errors.InvalidArgumentError, match='differ in N'):
        loaded.predict_crops(crops, np.concatenate([intr, intr]))
    assert int(loaded.input_resolution.numpy()) == SIDE


def test_export_cli_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        restore.resolve_checkpoint(str(tmp_path))
    (tmp_path / 'bad.json').write_text('{"model": {"backbone": "tiny", "colour": 3}}')
    with pytest.raises(KeyError, match='colour'):
        description.load_model_config(tmp_path / 'bad.json')
    assert description.joint_names_of_set('h36m_17') == joint_registry.union_names('h36m_17')


def test_acae_outputs_are_the_affine_reconstruction(exported):
    model, _, _ = exported
    names = list(model.joint_names)
    acae_names = joint_registry.union_names('h36m_17')
    rng = np.random.default_rng(3)
    w_enc = rng.uniform(0, 1, (6, len(acae_names)))
    w_dec = rng.uniform(0, 1, (len(acae_names), 6))
    arrays = {'W_enc': w_enc / w_enc.sum(1, keepdims=True),
              'W_dec': w_dec / w_dec.sum(1, keepdims=True), 'joint_names': np.array(acae_names),
              'latent_names': np.array([f'c_lat{i:02d}' for i in range(6)])}
    module = PoseEstimatorModule(model, acae_arrays=arrays)
    crops, intr = _crop_inputs(2)
    got = module.predict_crops(crops, intr)['poses3d'].numpy()
    plain = model(crops, intr)['coords3d_abs_mm'].numpy()
    idx = [names.index(n) for n in acae_names]
    expected = plain.copy()
    expected[:, idx] = np.einsum('jl,lk,nkc->njc', arrays['W_dec'], arrays['W_enc'], plain[:, idx])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match='my_acae.npz'):
        inference_module.acae_projection(names, dict(arrays, joint_names=np.array(['nope'] * 17)),
                               'my_acae.npz')


def test_pluggable_detector(exported, image, tmp_path):
    model, loaded, _ = exported
    tf.saved_model.save(FixedBoxDetector(), str(tmp_path / 'detector'))
    module = PoseEstimatorModule(model, detector=tf.saved_model.load(str(tmp_path / 'detector')))
    pred = module.detect_poses(image, num_aug=1, suppress_implausible_poses=False)
    np.testing.assert_allclose(pred['boxes'].numpy(), [[10, 5, 40, 60, 0.9], [60, 20, 30, 50,
                                                                               0.6]])
    want = loaded.estimate_poses(image, pred['boxes'][:, :4], num_aug=1)
    np.testing.assert_allclose(pred['poses3d'].numpy(), want['poses3d'].numpy(), rtol=1e-4,
                               atol=1e-2)
    assert module.detect_poses(image, num_aug=1, max_detections=1,
                               suppress_implausible_poses=False)['boxes'].shape[0] == 1
    flipped = module.detect_poses(image, num_aug=1, detector_flip_aug=True,
                                  suppress_implausible_poses=False)['boxes'].numpy()
    w = IMAGE_SHAPE[1]
    mirrored = [[w - 10 - 40, 5, 40, 60, 0.9], [w - 60 - 30, 20, 30, 50, 0.6]]
    expected = [[10, 5, 40, 60, 0.9], [60, 20, 30, 50, 0.6]] + mirrored
    assert sorted(map(tuple, np.round(flipped, 3))) == sorted(map(tuple, expected))


def test_demo_draws_the_detected_poses(exported, image, tmp_path, capsys):
    import imageio.v3 as iio

    from metrabs import demo
    _, _, out = exported
    iio.imwrite(tmp_path / 'in.png', image)
    assert demo.main([f'--model={out}', f'--image={tmp_path / "in.png"}',
                      f'--out={tmp_path / "out.png"}', '--skeleton=h36m_17']) == 0
    printed = capsys.readouterr().out
    assert printed.startswith('1 pose(s) drawn to') and 'skeleton h36m_17' in printed
    assert 'no ground truth for this image' in printed
    figure = iio.imread(tmp_path / 'out.png')
    assert figure.shape[:2] == (550, 1200) and figure.std() > 1
    assert demo.main([f'--model={out}', f'--image={tmp_path / "nothere.png"}',
                      f'--out={tmp_path / "out.png"}']) == 2
    assert 'nothere.png: no such file' in capsys.readouterr().err


def test_chunking_zero_boxes_and_antialiasing(exported, image):
    _, loaded, _ = exported
    n_joints = len(joint_names())
    empty = loaded.estimate_poses(image, np.zeros((0, 4), np.float32), num_aug=3)
    assert empty['poses3d'].shape == (0, n_joints, 3)
    whole = loaded.estimate_poses(image, BOXES, num_aug=3)['poses3d'].numpy()
    chunked = loaded.estimate_poses(image, BOXES, num_aug=3, internal_batch_size=4)
    np.testing.assert_allclose(chunked['poses3d'].numpy(), whole, rtol=1e-5, atol=1e-3)
    # 2x supersampling changes the crop only by resampling: the pose stays close.
    smooth = loaded.estimate_poses(image, BOXES, num_aug=3, antialias_factor=2)['poses3d']
    assert np.median(np.abs(smooth.numpy() - whole)) < 0.05 * np.median(np.abs(whole))


def test_bone_stats_must_name_model_bones(exported):
    model, _, _ = exported
    with pytest.raises(KeyError, match='nope-nada'):
        PoseEstimatorModule(model, bone_stats={'nope-nada': 300.0})
    module = PoseEstimatorModule(model, bone_stats={'lkne_h36m-lhip_h36m': 420.0})
    mean = module._mean_bone_mm.numpy()
    assert np.sum(np.isfinite(mean)) == 1 and np.nanmax(mean) == 420.0
