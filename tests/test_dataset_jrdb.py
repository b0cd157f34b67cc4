"""JRDB-Pose converter on a tiny fixture in the release format: calibration/cameras.yaml (K, D,
R, T as strings, ten sensors), per-camera labels_2d_pose_coco/<seq>_image0.json whose frames are
two behind their images (the reference's finding), and a labels_2d_pose_stitched_coco file."""
import json

import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import jrdb as writer
from posepile.dataset_writers.jrdb import IMSHAPE, OFFSET, SEQUENCE
from posepile.datasets import common, jrdb
from posepile.datasets.skip_counts import recording_skips


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('jrdb')
    cams, truth, visibility, shifted = writer.write(root)
    with recording_skips() as skips:
        examples = list(jrdb.convert(root))
    return root, cams, truth, visibility, shifted, examples, dict(skips)


def test_individual_views(dataset):
    root, cams, truth, visibility, _, examples, skips = dataset
    assert [(e.frame, e.person) for e in examples] == [(2, 3), (4, 3), (5, 3)]
    assert skips == {
        ('jrdb', 'crowd annotation'): 4,
        ('jrdb', 'fewer labelled limb joints than min_limb_joints'): 1,
        ('jrdb', 'moved less than motion_fraction of its box since the last kept frame of its '
                 'track (2D motion rule)'): 1}
    for e, label_frame in zip(examples, (0, 2, 3)):
        points, mask = truth[label_frame]
        assert e.is_2d_only and np.all(np.isnan(e.world_coords))
        assert e.joint_names == tuple(joints.union_names('jrdb'))
        assert e.image.endswith(f'images/image_0/{SEQUENCE}/{label_frame + OFFSET:06d}.jpg')
        assert (e.sequence, e.camera_id, e.split) == (SEQUENCE, 'image_0', 'train')
        np.testing.assert_allclose(e.coords2d[visibility > 0], points[visibility > 0])
        assert np.isnan(e.coords2d[8]).all()  # v = 0: dropped by default
        # The labels land on the person rendered in the image they point to.
        x, y = np.round(e.coords2d[0]).astype(int)
        assert mask[y, x]
        # No bbox in these files: the labelled keypoints' box grown 1.15 x, inside the image.
        labelled = points[visibility > 0]
        lo, hi = labelled.min(0), labelled.max(0)
        lo, hi = lo - 0.075 * (hi - lo), hi + 0.075 * (hi - lo)
        lo = np.maximum(lo, -0.5)
        hi = np.minimum(hi, [IMSHAPE[1] - 0.5, IMSHAPE[0] - 0.5])
        np.testing.assert_allclose(e.box, [*lo, *(hi - lo)], atol=1e-4)
    cam = examples[0].camera
    np.testing.assert_allclose(cam.R, cams[0].R, atol=1e-8)
    np.testing.assert_allclose(cam.t, cams[0].t, atol=1e-5)
    np.testing.assert_allclose(cam.intrinsic_matrix, cams[0].intrinsic_matrix, atol=1e-6)
    np.testing.assert_allclose(cam.distortion_coeffs, cams[0].distortion_coeffs)


def test_cameras_yaml_maps_image_2k_to_sensor_k(dataset):
    root, cams = dataset[0], dataset[1]
    cameras = jrdb.load_cameras(root / 'calibration' / 'cameras.yaml')
    assert sorted(cameras) == ['image_0', 'image_2', 'image_4', 'image_6', 'image_8']
    for k in range(5):
        np.testing.assert_allclose(cameras[f'image_{2 * k}'].R, cams[k].R, atol=1e-8)
        np.testing.assert_allclose(cameras[f'image_{2 * k}'].distortion_coeffs,
                                   cams[k].distortion_coeffs)


def test_options(dataset):
    root, _, truth, visibility = dataset[:4]
    invisible = list(jrdb.convert(root, keep_invisible=True))
    np.testing.assert_allclose(invisible[0].coords2d[8], truth[0][0][8])
    moved = list(jrdb.convert(root, frame_offset=0, validation_sequences=[SEQUENCE],
                              min_limb_joints=2))
    # Offset 0 points at images that do not exist for label frames 0 and 1.
    assert [(e.frame, e.person, e.split) for e in moved] == \
        [(2, 3, 'validation'), (2, 5, 'validation'), (3, 3, 'validation')]


def test_stitched_view(dataset):
    root, _, _, visibility, shifted = dataset[:5]
    (e,) = list(jrdb.convert(root, views='stitched'))
    assert (e.camera_id, e.frame) == ('image_stitched', 0)
    np.testing.assert_allclose(e.coords2d[visibility > 0], shifted[visibility > 0])
    K = e.camera.intrinsic_matrix
    width, height = 640, IMSHAPE[0]  # from the image, not the file's 752 x 480
    assert K[0, 0] == K[1, 1] == pytest.approx(width / (2 * np.pi))
    assert K[0, 2] == pytest.approx(e.box[0] + e.box[2] / 2)
    assert K[1, 2] == pytest.approx((height - 1) / 2)
    # A pinhole tangent to the cylinder: a ray 10 degrees off the centre column lands within
    # 1 % of where the cylinder puts it (f * angle).
    off = e.camera.camera_to_image(np.array([[np.tan(np.deg2rad(10)), 0, 1.0]]))[0, 0] - K[0, 2]
    assert off == pytest.approx(K[0, 0] * np.deg2rad(10), rel=0.011)


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=jrdb', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['jrdb']
    assert info['before_dedup'] == {'train': 3} and info['num_after_dedup'] == 3
    assert info['num_skipped'] == 6


def test_bad_inputs(dataset, tmp_path):
    root = tmp_path / 'bad'
    writer.write(root)
    labels = root / 'labels' / 'labels_2d_pose_coco' / f'{SEQUENCE}_image0.json'
    data = json.loads(labels.read_text())
    data['categories'][0]['keypoints'] = data['categories'][0]['keypoints'][::-1]
    labels.write_text(json.dumps(data))
    with pytest.raises(common.DatasetFormatError, match='person keypoints are'):
        list(jrdb.convert(root))
    (root / 'calibration' / 'cameras.yaml').unlink()
    with pytest.raises(common.DatasetFormatError, match='cameras.yaml'):
        list(jrdb.convert(root))
    with pytest.raises(ValueError, match='views'):
        list(jrdb.convert(root, views='panorama'))
