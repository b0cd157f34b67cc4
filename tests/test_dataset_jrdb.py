"""JRDB-Pose converter on a tiny fixture in the release format: calibration/cameras.yaml (K, D,
R, T as strings, ten sensors), per-camera labels_2d_pose_coco/<seq>_image0.json whose frames are
two behind their images (the reference's finding), and a labels_2d_pose_stitched_coco file."""
import json

import numpy as np
import pytest

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import build, joints
from posepile.datasets import common, jrdb
from posepile.datasets.skip_counts import recording_skips

IMSHAPE = (120, 160)
SEQUENCE = 'gates-basement-2019-01-17_0'
LABEL_FRAMES = [0, 1, 2, 3]  # label frame 1 repeats frame 0's pose -> the motion rule drops it
OFFSET = 2


def yaml_sensor(cam, name):
    def numbers(values):
        return ' '.join(f'{v:.10g}' for v in np.ravel(values))
    K, R = cam.intrinsic_matrix, cam.R
    return (f'  {name}:\n    width: {IMSHAPE[1]}\n    height: {IMSHAPE[0]}\n'
            f'    D: {numbers(cam.distortion_coeffs)}\n'
            f'    K: >\n      {numbers(K[0])}\n      {numbers(K[1])}\n      {numbers(K[2])}\n'
            f'    R: >\n      {numbers(R[0])}\n      {numbers(R[1])}\n      {numbers(R[2])}\n'
            f'    T: {numbers(-R @ cam.t)}\n')


def keypoint_list(points, visibility):
    return np.concatenate([points, np.asarray(visibility)[:, None]], axis=1).reshape(-1).tolist()


def category():
    return [{'id': 1, 'name': 'person', 'keypoints': list(jrdb.KEYPOINT_NAMES[0]),
             'skeleton': [[1, 2], [0, 4], [3, 4]]}]


def write_dataset(root):
    """Writes the fixture; returns (camera, per label frame (points [17, 2], mask), visibility)."""
    cams = [default_camera(IMSHAPE, distance_mm=3000, yaw_deg=72 * k) for k in range(10)]
    for k, cam in enumerate(cams):
        cam.distortion_coeffs = np.array([-0.3 + 0.01 * k, 0.15, 1e-4, -7e-5, -0.04])
    (root / 'calibration').mkdir(parents=True)
    (root / 'calibration' / 'cameras.yaml').write_text(
        'stitching:\n  radius: 3360000\n  rotation: 0\n  scalewidth: 1831\n  crop: 1\n'
        'cameras:\n  # camera order matters!\n'
        + ''.join(yaml_sensor(cam, f'sensor_{k}') for k, cam in enumerate(cams)))
    cam = cams[0]  # image_0
    people = make_people_sequence([cam], IMSHAPE, n_frames=3, n_joints=17, seed=4,
                                  step_mm_per_frame=300.0)[0]
    render_of_label = {0: 0, 1: 0, 2: 1, 3: 2}
    visibility = np.full(17, 2)
    visibility[[7, 8]] = [1, 0]  # an occluded and an invisible (still positioned) keypoint
    images, annotations, truth = [], [], {}
    for f in LABEL_FRAMES:
        r = render_of_label[f]
        write_jpeg(root / 'images' / 'image_0' / SEQUENCE / f'{f + OFFSET:06d}.jpg',
                   people.images[r])
        images.append({'id': f + 1, 'width': IMSHAPE[1], 'height': IMSHAPE[0],
                       'file_name': f'image_0/{SEQUENCE}/{f:06d}.jpg', 'license': 0})
        points = np.round(cam.world_to_image(people.joints[r]) * 2) / 2  # half-pixel clicks
        truth[f] = (points, people.masks[r])
        annotations.append({'id': 100 + f, 'track_id': 3, 'image_id': f + 1, 'category_id': 1,
                            'is_crowd': 0, 'num_keypoints': 17,
                            'keypoints': keypoint_list(points, visibility)})
        annotations.append({**annotations[-1], 'id': 200 + f, 'track_id': 4, 'is_crowd': 1})
    few = np.full(17, 2)
    few[6:] = 0  # two limb joints (the shoulders)
    annotations.append({'id': 300, 'track_id': 5, 'image_id': 3, 'category_id': 1, 'is_crowd': 0,
                        'num_keypoints': 17, 'keypoints': keypoint_list(truth[2][0], few)})
    labels = root / 'labels' / 'labels_2d_pose_coco'
    labels.mkdir(parents=True)
    (labels / f'{SEQUENCE}_image0.json').write_text(json.dumps({
        'info': {'description': 'JRDB-Pose'}, 'licenses': [], 'categories': category(),
        'images': images, 'annotations': annotations}))

    # The panorama: one frame, labels in its own pixels (the release's width field says 752).
    panorama = np.concatenate([people.images[0]] * 4, axis=1)  # 640 px wide
    write_jpeg(root / 'images' / 'image_stitched' / SEQUENCE / '000000.jpg', panorama)
    stitched = root / 'labels' / 'labels_2d_pose_stitched_coco'
    stitched.mkdir(parents=True)
    shifted = truth[0][0] + [320, 0]
    (stitched / f'{SEQUENCE}.json').write_text(json.dumps({
        'categories': category(),
        'images': [{'id': 1, 'width': 752, 'height': 480,
                    'file_name': f'image_stitched/{SEQUENCE}/000000.jpg'}],
        'annotations': [{'id': 1, 'track_id': 3, 'image_id': 1, 'category_id': 1,
                         'is_crowd': 0, 'keypoints': keypoint_list(shifted, visibility)}]}))
    return cams, truth, visibility, shifted


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('jrdb')
    cams, truth, visibility, shifted = write_dataset(root)
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
    write_dataset(root)
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
