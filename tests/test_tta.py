"""metrabs.serving.tf_camera against posepile.camera / image_warp, TTA parameters and flip symmetry,
plausibility filtering and pose NMS against hand-computed cases."""
import numpy as np
import pytest
import tensorflow as tf

from metrabs.serving import pose_filtering, tf_camera, tta
from posepile.camera import (Camera, distort_normalized, make_crop_camera, rotation_x,
                             rotation_y, undistort_normalized)
from posepile.image_warp import reproject_image
from posepile.joints import JointInfo

K = np.array([[500.0, 0.0, 160.0], [0.0, 510.0, 118.0], [0.0, 0.0, 1.0]])
DIST = np.array([-0.2, 0.05, 0.001, -0.002, 0.01])
SIDE = 48
CASES = [  # box xywh, roll, flip, distortion
    ((60.0, 40.0, 100.0, 150.0), 0.0, False, None),
    ((10.0, 150.0, 60.0, 80.0), 0.3, True, None),
    ((200.0, 5.0, 90.0, 70.0), -0.4, False, DIST),
    ((60.0, 40.0, 100.0, 150.0), 0.2, True, DIST),
]


def _tf_crop(box, roll, flip, dist):
    d = np.zeros(5) if dist is None else dist
    rot, crop_k = tf_camera.crop_cameras(
        tf.constant(K[None], tf.float32), tf.constant(d[None], tf.float32),
        tf.constant([box], tf.float32), SIDE, 1.25, tf.constant([roll], tf.float32),
        tf.constant([flip]))
    return rot.numpy()[0], crop_k.numpy()[0], d


@pytest.fixture(scope='module')
def smooth_image():
    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (30, 40, 3)).astype(np.float32)
    return tf.image.resize(coarse[None], (240, 320), method='bicubic')[0].numpy().clip(0, 255)


@pytest.mark.parametrize('box,roll,flip,dist', CASES)
def test_crop_camera_matches_numpy_make_crop_camera(box, roll, flip, dist):
    cam = Camera(intrinsic_matrix=K, distortion_coeffs=dist)
    ref = make_crop_camera(cam, box, SIDE, scale=1.25, rotation_rad=roll, flip=flip)
    rot, crop_k, _ = _tf_crop(box, roll, flip, dist)
    np.testing.assert_allclose(rot, ref.R, atol=1e-6)
    np.testing.assert_allclose(crop_k, ref.intrinsic_matrix, rtol=1e-6, atol=1e-4)
    points = np.random.default_rng(1).normal([0, 0, 3000], [800, 800, 300], (50, 3))
    projected = (points @ rot.T) @ crop_k.T
    np.testing.assert_allclose(projected[:, :2] / projected[:, 2:], ref.world_to_image(points),
                               atol=1e-3)


def test_distortion_and_undistortion_match_numpy():
    xy = np.random.default_rng(2).uniform(-0.5, 0.5, (1, 200, 2))
    coeffs = tf.constant(DIST[None], tf.float32)
    distorted = tf_camera.distort_normalized(tf.constant(xy, tf.float32), coeffs).numpy()
    np.testing.assert_allclose(distorted, distort_normalized(xy, DIST), atol=1e-6)
    undistorted = tf_camera.undistort_normalized(tf.constant(distorted), coeffs).numpy()
    np.testing.assert_allclose(undistorted, undistort_normalized(distorted, DIST), atol=2e-6)
    cam = Camera(intrinsic_matrix=K, distortion_coeffs=DIST)
    points = np.random.default_rng(3).normal([0, 0, 3000], [700, 700, 100], (1, 40, 3))
    px = tf_camera.camera_to_image(tf.constant(points, tf.float32), tf.constant(K[None],
                                   tf.float32), coeffs).numpy()
    np.testing.assert_allclose(px, cam.camera_to_image(points), atol=1e-3)


@pytest.mark.parametrize('box,roll,flip,dist', CASES)
@pytest.mark.parametrize('antialias', [1, 2])
def test_warp_matches_opencv_reprojection(smooth_image, box, roll, flip, dist, antialias):
    cam = Camera(intrinsic_matrix=K, distortion_coeffs=dist)
    ref_cam = make_crop_camera(cam, box, SIDE, scale=1.25, rotation_rad=roll, flip=flip)
    expected = reproject_image(smooth_image, cam, ref_cam, (SIDE, SIDE),
                               antialias_factor=antialias)
    rot, crop_k, d = _tf_crop(box, roll, flip, dist)
    crops = tf_camera.warp_crops(
        tf.constant(smooth_image[None]), tf.constant([0]), tf.constant(K[None], tf.float32),
        tf.constant(d[None], tf.float32), tf.constant(rot[None]), tf.constant(crop_k[None]),
        SIDE, antialias).numpy()[0]
    # Bilinear weights in float32 (TF) vs OpenCV's 5-bit fixed-point weights on 0..255 values.
    np.testing.assert_allclose(crops, expected, atol=2.0)
    assert np.abs(crops - expected).mean() < 0.3


def test_flipped_crop_is_the_mirrored_crop(smooth_image):
    outs = []
    for flip in (False, True):
        rot, crop_k, d = _tf_crop(CASES[2][0], 0.1, flip, DIST)
        outs.append(tf_camera.warp_crops(
            tf.constant(smooth_image[None]), tf.constant([0]), tf.constant(K[None], tf.float32),
            tf.constant(d[None], tf.float32), tf.constant(rot[None]), tf.constant(crop_k[None]),
            SIDE).numpy()[0])
    np.testing.assert_allclose(outs[1], outs[0][:, ::-1], atol=1e-2)


def test_intrinsics_from_fov_closed_form():
    k = tf_camera.intrinsics_from_fov(90.0, 100, 200).numpy()
    np.testing.assert_allclose(k, [[100, 0, 99.5], [0, 100, 49.5], [0, 0, 1]], rtol=1e-6)


def test_upright_roll_makes_world_up_point_up_in_the_crop():
    rng = np.random.default_rng(4)
    rot_cam = rotation_x(0.4) @ rotation_y(-0.3)  # camera pitched and yawed: up is tilted
    up_cam = rot_cam @ np.array([0.0, -1.0, 0.0])
    boxes = rng.uniform([0, 0, 30, 30], [250, 180, 80, 80], (6, 4))
    ks = np.repeat(K[None], 6, 0)
    turned = tf_camera.turn_towards_boxes(tf.constant(ks, tf.float32), tf.zeros([6, 5]),
                                          tf.constant(boxes, tf.float32))
    roll = tf_camera.upright_roll(turned, tf.constant(np.repeat(up_cam[None], 6, 0), tf.float32))
    rot, _ = tf_camera.crop_cameras(ks, tf.zeros([6, 5]), boxes, SIDE, 1.0, roll,
                                    tf.zeros([6], tf.bool))
    up_crop = np.einsum('nij,j->ni', rot.numpy(), up_cam)
    np.testing.assert_allclose(up_crop[:, 0], 0, atol=1e-6)
    assert np.all(up_crop[:, 1] < 0)
    # An upright camera aimed at the image centre needs no roll.
    centre = tf.constant([[160.0 - 20, 118.0 - 30, 40, 60]])
    turned = tf_camera.turn_towards_boxes(tf.constant(K[None], tf.float32), tf.zeros([1, 5]),
                                          centre)
    assert abs(float(tf_camera.upright_roll(turned, tf.constant([[0.0, -1, 0]]))[0])) < 1e-6


def test_augmentation_params():
    roll, flip, brightness = (x.numpy() for x in tta.augmentation_params(1))
    np.testing.assert_array_equal(roll, [0])
    np.testing.assert_array_equal(flip, [False])
    np.testing.assert_array_equal(brightness, [1])
    roll, flip, brightness = (x.numpy() for x in tta.augmentation_params(5))
    np.testing.assert_allclose(np.rad2deg(roll), [0, 10, -10, 20, -20], atol=1e-4)
    np.testing.assert_array_equal(flip, [False, True, False, True, False])
    np.testing.assert_allclose(brightness, [1, 1.1, 0.9, 1, 1.1])


def test_flip_round_trip_recovers_the_camera_frame_pose():
    """A perfect network on a flipped crop sees the mirrored person (left/right labels swapped,
    coordinates in the mirrored crop frame); unmirroring and mapping back must give the truth."""
    info = JointInfo(['pelvis', 'lhip', 'rhip', 'lknee', 'rknee', 'neck'],
                     'pelvis-lhip-lknee,pelvis-rhip-rknee,pelvis-neck')
    pose = np.random.default_rng(5).normal([0, 0, 4000], 300, (1, 6, 3)).astype(np.float32)
    cam = Camera(intrinsic_matrix=K)
    flipped = make_crop_camera(cam, (60, 40, 100, 150), SIDE, rotation_rad=0.2, flip=True)
    seen = flipped.world_to_camera(pose)  # what the flipped crop's camera frame holds
    predicted = info.mirror(seen)  # the image's left side shows the person's right
    back = tta.crop_to_camera(
        tta.unmirror_labels(tf.constant(predicted), tf.constant([True]),
                            tf.constant(info.mirror_perm)), tf.constant(flipped.R[None],
                                                                        tf.float32))
    np.testing.assert_allclose(back.numpy(), pose, atol=1e-2)


def test_average_and_spread():
    poses = np.zeros((1, 2, 3, 3), np.float32)
    poses[0, 1] += [30.0, 40.0, 0.0]  # the second augmentation is 50 mm off
    np.testing.assert_allclose(tta.average(poses).numpy()[0], np.full((3, 3), [15, 20, 0]))
    np.testing.assert_allclose(tta.spread_mm(poses).numpy(), [25.0], rtol=1e-6)


@pytest.fixture(scope='module')
def body():
    info = JointInfo(['pelvis', 'lhip', 'rhip', 'lknee', 'rknee', 'neck'],
                     'pelvis-lhip-lknee,pelvis-rhip-rknee,pelvis-neck')
    pose = np.array([[0, 0, 3000], [100, 0, 3000], [-100, 0, 3000], [100, 450, 3000],
                     [-100, 450, 3000], [0, -500, 3000]], np.float32)
    return info, pose


def test_bone_lengths_and_symmetric_pairs(body):
    info, pose = body
    lengths = pose_filtering.bone_lengths(tf.constant(pose), tf.constant(info.edges)).numpy()
    expected = [np.linalg.norm(pose[a] - pose[b]) for a, b in info.edges]
    np.testing.assert_allclose(lengths, expected, rtol=1e-6)
    pairs = pose_filtering.mirror_edge_pairs(info.edges, info.mirror_perm)
    names = {(info.edge_names[i], info.edge_names[j]) for i, j in pairs}
    assert names == {(('pelvis', 'lhip'), ('pelvis', 'rhip')),
                     (('lhip', 'lknee'), ('rhip', 'rknee'))}


def test_plausibility(body):
    info, pose = body
    poses = np.stack([pose, pose, pose, pose])
    poses[1, 3, 1] = 1800.0  # left shin 4x the right one
    poses[2] = poses[2] * [0.001, 0.001, 1]  # collapsed to a point
    pairs = pose_filtering.mirror_edge_pairs(info.edges, info.mirror_perm)
    no_stats = tf.fill([len(info.edges)], np.nan)
    spread = tf.constant([0.0, 0.0, 0.0, 400.0])
    ok = pose_filtering.is_plausible(tf.constant(poses), info.edges, pairs, no_stats,
                                     spread).numpy()
    np.testing.assert_array_equal(ok, [True, False, False, False])
    # With dataset statistics: twice the mean size everywhere is outside size_range (0.4..1.8).
    true_lengths = pose_filtering.bone_lengths(tf.constant(pose), info.edges)
    ok = pose_filtering.is_plausible(tf.constant(np.stack([pose, pose * [2, 2, 1]])), info.edges,
                                     pairs, true_lengths, tf.zeros([2])).numpy()
    np.testing.assert_array_equal(ok, [True, False])


def test_pose_nms_keeps_distinct_poses_by_score(body):
    _, pose = body
    poses2d = np.stack([pose[:, :2], pose[:, :2] + 3.0, pose[:, :2] + 500.0])
    boxes = np.tile([[0.0, 0.0, 200.0, 1000.0]], (3, 1))
    kept = pose_filtering.pose_nms(tf.constant(poses2d), tf.constant(boxes),
                                   tf.constant([0.5, 0.9, 0.7])).numpy()
    np.testing.assert_array_equal(kept, [1, 2])
