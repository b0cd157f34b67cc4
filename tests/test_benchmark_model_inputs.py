"""model_inputs of the real benchmarks (what `eval.run --model` feeds the SavedModel), on tiny
fixtures in the benchmarks' real formats with rendered people.

Checks per benchmark: one input per test image, keys equal to the GT rows that evaluate() joins
on, and the geometry: the GT camera-frame joints projected with the returned intrinsics and
distortion (OpenCV, an independent projection) land inside the returned box, on the stated image
(the rendered body is there), and within 1 px of the benchmark's own annot2 where it has one.
"""
import hashlib
import pathlib

import cv2
import numpy as np
import pytest

from eval.benchmarks import h36m, mpi_inf_3dhp, mupots, pw3d
from eval.model_predictions import load_rgb
from eval.predictions import load_predictions
from posepile.camera import Camera
from posepile.datasets.common import box_around_points
from posepile.dataset_writers import h36m as h36m_writer
from posepile.dataset_writers.h36m import IMSHAPE
from posepile.dataset_writers import mpi_inf_3dhp_test as tdhp_writer
from posepile.dataset_writers import mupots as mupots_writer
from posepile.dataset_writers import tdpw as pw3d_writer
from posepile.dataset_writers.mpi_inf_3dhp_test import VALID as TDHP_VALID
from posepile.dataset_writers.mupots import N_FRAMES as MUPOTS_N_FRAMES
from posepile.dataset_writers.tdpw import N_FRAMES as PW3D_N_FRAMES
from posepile.joints import get_skeleton, union_names


def project_opencv(points_cam, item):
    """[N, J, 3] camera-frame mm -> [N, J, 2] px through cv2.projectPoints with the item's
    intrinsics and distortion (identity extrinsics)."""
    pts = np.asarray(points_cam, np.float64).reshape(-1, 1, 3)
    out, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3),
                               item.intrinsic_matrix.astype(np.float64),
                               item.distortion_coeffs.astype(np.float64))
    return out.reshape(*np.shape(points_cam)[:-1], 2)


def assert_inside_boxes(points2d, boxes):
    """points2d [P, J, 2] px; boxes [P, 4] x, y, w, h."""
    lo, size = boxes[:, np.newaxis, :2], boxes[:, np.newaxis, 2:]
    assert np.all(points2d >= lo - 1e-3) and np.all(points2d <= lo + size + 1e-3)


def assert_keys_match(items, gt):
    sequence = np.concatenate([[it.sequence] * len(it.boxes) for it in items])
    frame = np.concatenate([[it.frame] * len(it.boxes) for it in items])
    person = np.concatenate([it.person for it in items])
    keys = sorted(zip(sequence.tolist(), frame.tolist(), person.tolist()))
    assert keys == sorted(zip(np.asarray(gt.sequence).astype(str).tolist(),
                              np.asarray(gt.frame).tolist(), np.asarray(gt.person).tolist()))


# ------------------------------------------------------------------------------------ H36M ---
H36M_STEMS = ('Directions 1.54138969', 'Walking 1.58860488', 'Greeting.55011271')
H36M_S9_SHIFT = h36m_writer.S9_SHIFT


@pytest.fixture(scope='module')
def h36m_case(tmp_path_factory):
    """S9 with three camera-frame (D3_Positions_mono) files, their videos and cameras.h5;
    'Greeting' of S9 is one of the three sequences whose released GT is 200 mm off in world x."""
    root = tmp_path_factory.mktemp('h36m_model_inputs')
    rendered = h36m_writer.write_test_set(root, {'S9': H36M_STEMS})
    gt = h36m.load_ground_truth(root, frame_step=2, subjects=('S9',))
    return gt, list(h36m.model_inputs(gt)), rendered


def test_h36m_inputs_keys_and_geometry(h36m_case):
    gt, items, rendered = h36m_case
    assert len(items) == len(gt.sequence) == 3 * 3  # frames 0, 2, 4 of three files
    assert_keys_match(items, gt)
    for item, row in zip(items, range(len(gt.sequence))):
        cam, seq = rendered[item.sequence]
        assert (item.sequence, item.frame) == (gt.sequence[row], gt.frame[row])
        np.testing.assert_allclose(item.intrinsic_matrix, cam.intrinsic_matrix, rtol=1e-6)
        np.testing.assert_allclose(item.extrinsic_matrix, np.eye(4))
        # The H36M lens needs thin-prism terms the model API lacks: the image comes undistorted.
        np.testing.assert_array_equal(item.distortion_coeffs, np.zeros(5))
        # The world's up (z) seen from the camera: the model's crops stay upright.
        np.testing.assert_allclose(item.world_up, cam.R @ [0, 0, 1.0], atol=1e-6)
        # The boxes come from the S9-corrected poses, which are where the person is.
        truth = gt.poses[row] - (cam.R @ H36M_S9_SHIFT if 'Greeting.' in item.sequence else 0)
        projected = project_opencv(truth[np.newaxis], item)[0]
        assert_inside_boxes(projected[np.newaxis], item.boxes)
        np.testing.assert_allclose(item.boxes[0], box_around_points(projected, h36m.BOX_MARGIN,
                                                                    imshape=IMSHAPE), atol=0.05)
        # Reference: the rendered joints through the fixture's distorted camera (OpenCV, all 12
        # coefficients), then undistorted by OpenCV onto the same K.
        K, dist = cam.intrinsic_matrix, np.asarray(cam.distortion_coeffs, np.float64)
        world = seq.joints[item.frame][h36m.PROTOCOL_ROWS].astype(np.float64)
        distorted, _ = cv2.projectPoints(cam.world_to_camera(world).reshape(-1, 1, 3),
                                         np.zeros(3), np.zeros(3), K, dist)
        reference = cv2.undistortPoints(distorted, K, dist, P=K,
                                        criteria=(cv2.TERM_CRITERIA_COUNT, 50, 0)).reshape(-1, 2)
        np.testing.assert_allclose(projected, reference, atol=0.05)
        image = load_rgb(item.image, item.where)
        assert image.shape == (*IMSHAPE, 3)
        # The image is the row's video frame, undistorted: closest to OpenCV's undistortion of
        # that rendering among all frames, and close to it in absolute terms (video codec noise).
        references = np.stack([cv2.undistort(im, K, dist) for im in seq.images]).astype(float)
        diffs = np.abs(references - image)[:, 5:-5, 5:-5].mean(axis=(1, 2, 3))
        assert int(np.argmin(diffs)) == item.frame
        assert diffs[item.frame] < 6.0


# ----------------------------------------------------------------------------- MPI-INF-3DHP ---
@pytest.fixture(scope='module')
def tdhp_case(tmp_path_factory):
    """TS1 as MATLAB v7.3 (HDF5, n x 1 x 17 x d), TS2 as an older .mat (d x 17 x 1 x n), with
    JPEG frames; univ_annot3 is annot3 rescaled about the pelvis (does not project onto annot2)."""
    root = tmp_path_factory.mktemp('3dhp_model_inputs')
    truth = tdhp_writer.write_test_set(root, ('TS1', 'TS2'))
    gt = mpi_inf_3dhp.load_ground_truth(root, universal=False, sequences=('TS1', 'TS2'))
    return gt, list(mpi_inf_3dhp.model_inputs(gt)), truth


def test_mpi_inf_3dhp_inputs_keys_and_geometry(tdhp_case):
    gt, items, truth = tdhp_case
    assert len(items) == len(gt.sequence) == 2 * TDHP_VALID.sum()
    assert_keys_match(items, gt)
    assert [it.frame for it in items if it.sequence == 'TS1'] == [0, 1, 3, 4]
    for row, item in enumerate(items):
        cam, annot2, people = truth[item.sequence]
        assert (item.sequence, item.frame) == (gt.sequence[row], gt.frame[row])
        assert str(item.image).endswith(f'{item.sequence}/imageSequence/img_'
                                        f'{item.frame + 1:06d}.jpg')
        np.testing.assert_allclose(item.intrinsic_matrix, cam.intrinsic_matrix, atol=1e-3)
        np.testing.assert_array_equal(item.distortion_coeffs, np.zeros(5))
        np.testing.assert_allclose(item.extrinsic_matrix, np.eye(4))
        projected = project_opencv(gt.poses[row][np.newaxis], item)
        assert np.max(np.abs(projected[0] - annot2[item.frame])) < 1.0
        assert_inside_boxes(projected, item.boxes)
        image = load_rgb(item.image, item.where)
        assert np.mean(np.abs(image.astype(float) - people.images[item.frame])) < 10
        x, y = np.round(projected[0, mpi_inf_3dhp.ROOT_INDEX]).astype(int)
        assert people.masks[item.frame][y, x]  # the pelvis lands on the rendered body


def test_mpi_inf_3dhp_inputs_with_universal_gt(tdhp_case):
    """The universal skeleton (univ_annot3) gives the same images, boxes and cameras."""
    gt, items, _ = tdhp_case
    univ_gt = mpi_inf_3dhp.load_ground_truth(gt.source, universal=True, sequences=('TS1', 'TS2'))
    univ_items = list(mpi_inf_3dhp.model_inputs(univ_gt))
    assert [(a.sequence, a.frame, str(a.image)) for a in items] == \
        [(b.sequence, b.frame, str(b.image)) for b in univ_items]
    np.testing.assert_array_equal(np.stack([a.boxes for a in items]),
                                  np.stack([b.boxes for b in univ_items]))


# ------------------------------------------------------------------------------------ 3DPW ---
@pytest.fixture(scope='module')
def pw3d_case(tmp_path_factory):
    """One test sequence, moving camera, two actors (the second 800 mm aside, not drawn)."""
    root = tmp_path_factory.mktemp('pw3d_model_inputs')
    truth = pw3d_writer.write_test_set(root, ('test',))
    gt = pw3d.load_ground_truth(root, split='test')
    return gt, list(pw3d.model_inputs(gt)), truth['downtown_fixture_00']


def test_pw3d_inputs_keys_and_geometry(pw3d_case):
    from posepile.datasets import tdpw
    gt, items, (cams, actors, images, masks) = pw3d_case
    assert len(gt.sequence) == 7
    assert [(it.frame, it.person.tolist()) for it in items] == \
        [(0, [0, 1]), (1, [0, 1]), (2, [1]), (3, [0, 1])]
    assert_keys_match(items, gt)
    for item in items:
        cam = cams[item.frame]
        assert item.sequence == 'downtown_fixture_00'
        assert str(item.image).endswith(f'imageFiles/downtown_fixture_00/image_'
                                        f'{item.frame:05d}.jpg')
        np.testing.assert_allclose(item.intrinsic_matrix, cam.intrinsic_matrix, rtol=1e-6)
        np.testing.assert_array_equal(item.distortion_coeffs, np.zeros(5))
        np.testing.assert_allclose(item.extrinsic_matrix, np.eye(4))
        np.testing.assert_allclose(item.world_up, cam.R @ tdpw.WORLD_UP, atol=1e-6)
        rows = [np.flatnonzero((gt.frame == item.frame) & (gt.person == p))[0]
                for p in item.person]
        projected = project_opencv(gt.poses[rows], item)
        reference = np.stack([cam.world_to_image(actors[p][item.frame]) for p in item.person])
        assert np.max(np.abs(projected - reference)) < 1.0
        assert_inside_boxes(projected, item.boxes)
        image = load_rgb(item.image, item.where)
        assert np.mean(np.abs(image.astype(float) - images[item.frame])) < 10
        if 0 in item.person:  # actor 0 is the drawn one: its pelvis lands on the body
            x, y = np.round(projected[list(item.person).index(0), 0]).astype(int)
            assert masks[item.frame][y, x]


# -------------------------------------------------------------------------------- MuPoTS-3D ---
@pytest.fixture(scope='module')
def mupots_case(tmp_path_factory):
    """TS1: two people (the second 700 mm aside, not drawn), person 1 unannotated in frame 1."""
    root = tmp_path_factory.mktemp('mupots_model_inputs')
    truth = mupots_writer.write_test_set(root, ('TS1',))
    gt = mupots.load_ground_truth(root, sequences=('TS1',))
    return gt, list(mupots.model_inputs(gt)), truth['TS1']


def test_mupots_inputs_keys_and_geometry(mupots_case):
    gt, items, (cam, people) = mupots_case
    assert len(gt.sequence) == 5
    assert [(it.frame, it.person.tolist()) for it in items] == \
        [(0, [0, 1]), (1, [0]), (2, [0, 1])]
    assert_keys_match(items, gt)
    for item in items:
        assert str(item.image).endswith(f'TS1/img_{item.frame:06d}.jpg')
        np.testing.assert_allclose(item.intrinsic_matrix, cam.intrinsic_matrix, atol=1e-3)
        np.testing.assert_array_equal(item.distortion_coeffs, np.zeros(5))
        np.testing.assert_allclose(item.extrinsic_matrix, np.eye(4))
        rows = [np.flatnonzero((gt.frame == item.frame) & (gt.person == p))[0]
                for p in item.person]
        for key in ('poses3d', 'univ3d'):  # univ3d is scaled about the camera: same image
            projected = project_opencv(getattr(gt, key)[rows], item)
            assert np.max(np.abs(projected - gt.poses2d[rows])) < 1.0
            assert_inside_boxes(projected, item.boxes)
        image = load_rgb(item.image, item.where)
        assert np.mean(np.abs(image.astype(float) - people.images[item.frame])) < 10
        x, y = np.round(projected[0, mupots.ROOT_INDEX]).astype(int)
        assert people.masks[item.frame][y, x]  # person 0 is the drawn one


# --------------------------------------------------------------------- detector-mode inputs ---
def test_detector_mode_inputs(h36m_case, tdhp_case, pw3d_case, mupots_case):
    """boxes='detector': no boxes, no person ids, the same cameras; single-person benchmarks
    one item per GT row, 3DPW and MuPoTS every image of the sequence (the released scripts run
    the detector on every frame; 3DPW's tracker needs them)."""
    for module, (gt, items, _), frames in (
            (h36m, h36m_case, None), (mpi_inf_3dhp, tdhp_case, None),
            (pw3d, pw3d_case, list(range(PW3D_N_FRAMES))),
            (mupots, mupots_case, list(range(MUPOTS_N_FRAMES)))):
        detect = list(module.model_inputs(gt, boxes='detector'))
        assert all(it.boxes is None and it.person is None for it in detect)
        if frames is None:
            assert [(it.sequence, it.frame) for it in detect] == \
                [(it.sequence, it.frame) for it in items]
        else:
            assert [it.frame for it in detect] == frames
        by_key = {(it.sequence, it.frame): it for it in items}
        for it in detect:
            if (it.sequence, it.frame) in by_key:
                same = by_key[it.sequence, it.frame]
                np.testing.assert_array_equal(it.intrinsic_matrix, same.intrinsic_matrix)
                np.testing.assert_array_equal(it.world_up, same.world_up)
                assert str(it.image) == str(same.image) or callable(it.image)


# The official TS1-4 calibration file of the 3DHP test toolkit (test_util/camera_calibration).
TS1_4_CALIB = '''tc camera calibration v0.3
camera	0	cam_8
	frame	0
		sensorSize	10	10	# in mm
		focalLength	7.32506	# in mm
		pixelAspect	1.00044
		centerOffset	-0.0322884	0.0929296	# in mm (positive values move right and down)
		distortionModel	OpenCV
		distortion		0.0 0.0 0.0 0.0 0.0
			origin	3427.28	1387.86	309.42
			up	-0.208215	0.976233	0.06014
			right	0.000575281	0.0616098	-0.9981
'''


def test_official_3dhp_calibration_hand_computed(tmp_path):
    path = tmp_path / 'ts1-4cameras.calib'
    path.write_text(TS1_4_CALIB)
    camera = mpi_inf_3dhp.calibrated_camera(mpi_inf_3dhp.read_calibration(path), (2048, 2048))
    px_per_mm = 2048 / 10
    expected = [[7.32506 * px_per_mm, 0, (5 - 0.0322884) * px_per_mm],
                [0, 7.32506 * px_per_mm * 1.00044, (5 + 0.0929296) * px_per_mm * 1.00044],
                [0, 0, 1]]
    np.testing.assert_allclose(camera.intrinsic_matrix, expected, rtol=1e-12)
    assert camera.distortion_coeffs is None or not np.any(camera.distortion_coeffs)
    up, right = np.array([-0.208215, 0.976233, 0.06014]), np.array([0.000575281, 0.0616098,
                                                                     -0.9981])
    # World +y seen from the camera: rows right, -up, up x right of the world-to-camera rotation.
    seen = np.array([right[1], -up[1], np.cross(up, right)[1]])
    np.testing.assert_allclose(camera.world_up, seen / np.linalg.norm(seen), atol=1e-12)
    path.write_text(TS1_4_CALIB.replace('focalLength\t7.32506', 'focalLength\tabc'))
    with pytest.raises(ValueError, match="ts1-4cameras.calib: field 'focalLength' is not numer"):
        mpi_inf_3dhp.read_calibration(path)


def test_mpi_inf_3dhp_uses_the_official_calibration_file(tdhp_case, tmp_path):
    """A .calib written for TS1's fixture camera: its intrinsics reach the model inputs and the
    GT projects onto annot2; the protocol names the file and the reprojection error."""
    import shutil
    gt, _, truth = tdhp_case
    root = tmp_path / '3dhp'
    shutil.copytree(pathlib.Path(gt.source) / 'TS1', root / 'TS1')
    cam, annot2, _ = truth['TS1']
    K = cam.intrinsic_matrix
    height, width = IMSHAPE
    sensor = (10.0, 10.0 * height / width)
    px_per_mm = width / sensor[0]
    aspect = K[1, 1] / K[0, 0]
    calib = (TS1_4_CALIB.replace('10\t10\t# in mm', f'{sensor[0]}\t{sensor[1]}\t# in mm')
             .replace('7.32506', f'{K[0, 0] / px_per_mm:.12g}')
             .replace('1.00044', f'{aspect:.12g}')
             .replace('-0.0322884\t0.0929296', f'{K[0, 2] / px_per_mm - sensor[0] / 2:.12g}\t'
                                               f'{K[1, 2] / px_per_mm / aspect - sensor[1] / 2:.12g}'))
    (root / mpi_inf_3dhp.CALIBRATION_DIR).mkdir(parents=True)
    (root / mpi_inf_3dhp.CALIBRATION_DIR / 'ts1-4cameras.calib').write_text(calib)
    gt1 = mpi_inf_3dhp.load_ground_truth(root, sequences=('TS1',))
    items = list(mpi_inf_3dhp.model_inputs(gt1))
    assert gt1.protocol['cameras']['TS1'].startswith('official calibration ts1-4cameras.calib')
    for row, item in enumerate(items):
        np.testing.assert_allclose(item.intrinsic_matrix, K, rtol=1e-5)
        projected = project_opencv(gt1.poses[row][np.newaxis], item)[0]
        assert np.max(np.abs(projected - annot2[item.frame])) < 0.05


def test_mupots_uses_camera_intrinsics_json(mupots_case, tmp_path):
    import json
    import shutil
    gt, _, (cam, _) = mupots_case
    root = tmp_path / 'mupots'
    shutil.copytree(pathlib.Path(gt.source) / 'TS1', root / 'TS1')
    K = cam.intrinsic_matrix.copy()
    (root / 'camera_intrinsics.json').write_text(json.dumps({'TS1': K.tolist()}))
    gt1 = mupots.load_ground_truth(root, sequences=('TS1',))
    items = list(mupots.model_inputs(gt1))
    assert gt1.protocol['cameras']['TS1'].startswith('camera_intrinsics.json')
    for item in items:
        np.testing.assert_allclose(item.intrinsic_matrix, K, rtol=1e-6)
    (root / 'camera_intrinsics.json').write_text(json.dumps({'TS2': K.tolist()}))
    with pytest.raises(KeyError, match="camera_intrinsics.json: no intrinsics for 'TS1'"):
        list(mupots.model_inputs(mupots.load_ground_truth(root, sequences=('TS1',))))


# ------------------------------------------------- --model with a stand-in for the SavedModel ---
class _Out:
    """What a SavedModel's output tensors offer: .numpy()."""

    def __init__(self, value):
        self.value = np.asarray(value, np.float32)

    def numpy(self):
        return self.value


def image_key(image) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class FakeModel:
    """Stands in for a loaded SavedModel that has a detector. The people it sees in an image are
    looked up by the image's pixels: people[image_key] = (boxes [P, 4], poses3d [P, J, 3],
    poses2d [P, J, 2]). detect_poses returns them (score 0.9, in reverse order) unless the
    image is in `blind`; estimate_poses returns, per box, the person whose box centre is
    nearest. Every call's keyword arguments are recorded."""

    def __init__(self, joint_names, people, blind=()):
        self.joint_names = np.array(joint_names)
        self.detector = object()
        self.people, self.blind, self.calls = people, set(blind), []

    def _record(self, name, kwargs):
        self.calls.append((name, {k: (v.numpy() if hasattr(v, 'numpy') else v)
                                  for k, v in kwargs.items() if k != 'image'}))

    def detect_poses(self, image, **kwargs):
        self._record('detect_poses', kwargs)
        key = image_key(image.numpy())
        if key in self.blind:
            n = len(self.joint_names)
            return {'boxes': _Out(np.zeros((0, 5))), 'poses3d': _Out(np.zeros((0, n, 3))),
                    'poses2d': _Out(np.zeros((0, n, 2)))}
        boxes, poses3d, poses2d = (x[::-1] for x in self.people[key])
        return {'boxes': _Out(np.concatenate([boxes, np.full((len(boxes), 1), 0.9)], axis=1)),
                'poses3d': _Out(poses3d), 'poses2d': _Out(poses2d)}

    def estimate_poses(self, image, boxes, **kwargs):
        self._record('estimate_poses', dict(kwargs, boxes=boxes))
        known, poses3d, poses2d = self.people[image_key(image.numpy())]
        centre = lambda b: b[..., :2] + b[..., 2:4] / 2  # noqa: E731
        nearest = np.argmin(np.linalg.norm(centre(boxes.numpy())[:, None] -
                                           centre(known)[None], axis=-1), axis=1)
        return {'poses3d': _Out(poses3d[nearest]), 'poses2d': _Out(poses2d[nearest])}


def fake_model_for(items, per_row_3d, per_row_2d, gt_keys, joint_names):
    """A FakeModel whose people in each GT-box item's image are that item's GT rows."""
    row_of = {key: i for i, key in enumerate(gt_keys)}
    people = {}
    for item in items:
        rows = [row_of[item.sequence, item.frame, int(p)] for p in item.person]
        people[image_key(load_rgb(item.image, item.where))] = (
            item.boxes, per_row_3d[rows], per_row_2d[rows])
    return FakeModel(joint_names, people)


def run_with(model, arguments, tmp_path, monkeypatch, sequences=None):
    """eval.run.main with --model = `model` (tf.saved_model.load patched); the benchmark's
    loader limited to the fixture's `sequences`. Returns the report JSON."""
    import functools
    import json

    import tensorflow as tf

    from eval import run
    from eval.benchmarks import get_benchmark
    model_dir = tmp_path / 'savedmodel'
    model_dir.mkdir(exist_ok=True)
    monkeypatch.setattr(tf.saved_model, 'load', lambda path: model)
    if sequences is not None:
        module = get_benchmark(arguments[0].partition('=')[2])
        monkeypatch.setattr(module, 'load_ground_truth',
                            functools.partial(module.load_ground_truth, sequences=sequences))
    out = tmp_path / 'report.json'
    assert run.main([*arguments, f'--model={model_dir}', f'--out={out}']) == 0
    return json.loads(out.read_text())


def _keys(gt):
    return list(zip(np.asarray(gt.sequence).astype(str).tolist(),
                    np.asarray(gt.frame).tolist(), np.asarray(gt.person).tolist()))


def test_model_run_mupots_with_the_detector(mupots_case, tmp_path, monkeypatch):
    gt, items, _ = mupots_case
    fake = fake_model_for(items, gt.univ3d, gt.poses2d, _keys(gt), union_names('mupots_17'))
    # Frame 2's second person goes undetected: recall 4 / 5, "all" below "matched".
    frame2 = next(it for it in items if it.frame == 2)
    key = image_key(load_rgb(frame2.image))
    fake.people[key] = tuple(x[:1] for x in fake.people[key])
    data = run_with(fake, ['--benchmark=mupots', f'--root={gt.source}'], tmp_path, monkeypatch,
                    ('TS1',))
    assert data['summary']['pck_matched'] == pytest.approx(100.0)
    assert data['summary']['recall'] == pytest.approx(80.0)
    assert data['summary']['pck_all'] == pytest.approx(80.0)
    assert data['conventions']['boxes'].startswith("the model's detector")
    inference = data['protocol']['inference']
    assert (inference['num_aug'], inference['antialias_factor']) == (1, 2)
    assert inference['detector'] == dict(threshold=0.2, nms_iou_threshold=0.7, max_detections=-1,
                                         flip_aug=True, suppress_implausible_poses=False,
                                         fallback_whole_image=False)
    names = [name for name, _ in fake.calls]
    assert names == ['detect_poses'] * MUPOTS_N_FRAMES  # every image, no fallback
    call = fake.calls[0][1]
    assert call['detector_threshold'] == pytest.approx(0.2) and call['detector_flip_aug']
    assert call['num_aug'] == 1 and call['antialias_factor'] == 2
    np.testing.assert_allclose(call['intrinsic_matrix'], items[0].intrinsic_matrix)
    saved = load_predictions(tmp_path / 'report.predictions.npz')
    assert saved.box_source == 'detector' and saved.boxes.shape == (4, 5)


def test_model_run_3dhp_detector_fallback_and_gt_boxes(tdhp_case, tmp_path, monkeypatch):
    gt, items, _ = tdhp_case
    fake = fake_model_for(items, gt.poses, gt.poses[..., :2], _keys(gt),
                          union_names('mpi_inf_3dhp_17'))
    fake.blind.add(image_key(load_rgb(items[1].image)))  # the detector misses this frame
    args = ['--benchmark=mpi_inf_3dhp', f'--root={gt.source}']
    data = run_with(fake, args, tmp_path, monkeypatch, ('TS1', 'TS2'))
    assert data['summary']['mpjpe'] == pytest.approx(0.0, abs=1e-3)
    assert data['counts']['n_whole_image_fallbacks'] == 1
    fallback = [c for c in fake.calls if c[0] == 'estimate_poses']
    assert len(fallback) == 1
    height, width = IMSHAPE
    np.testing.assert_allclose(fallback[0][1]['boxes'], [[0, 0, width, height]])
    detect = [c for c in fake.calls if c[0] == 'detect_poses'][0][1]
    assert (detect['detector_threshold'], detect['max_detections']) == (0, 1)
    # --boxes=gt: estimate_poses only, and the report says so.
    fake.calls.clear()
    data = run_with(fake, [*args, '--boxes=gt', '--num-aug=3'], tmp_path, monkeypatch,
                    ('TS1', 'TS2'))
    assert {name for name, _ in fake.calls} == {'estimate_poses'}
    assert fake.calls[0][1]['num_aug'] == 3 and data['protocol']['inference']['num_aug'] == 3
    assert data['conventions']['boxes'].startswith('ground-truth boxes')
    assert data['summary']['mpjpe'] == pytest.approx(0.0, abs=1e-3)


def test_model_run_pw3d_tracks_detections(pw3d_case, tmp_path, monkeypatch):
    gt, items, (cams, _, _, _) = pw3d_case
    cam = Camera(intrinsic_matrix=items[0].intrinsic_matrix)
    fake = fake_model_for(items, gt.poses, cam.camera_to_image(gt.poses), _keys(gt),
                          get_skeleton('smpl_24').names)
    data = run_with(fake, ['--benchmark=pw3d', f'--root={gt.source}', '--split=test'],
                    tmp_path, monkeypatch)
    # Both actors are detected in every evaluated frame, in reverse order: tracking must
    # give each its own pose back (a swap would cost the 800 mm between them).
    assert data['summary']['mpjpe_abs'] == pytest.approx(0.0, abs=1e-2)
    assert data['counts']['n_poses'] == len(gt.poses)
    assert data['counts']['n_poses_without_prediction'] == 0
    assert [n for n, _ in fake.calls] == ['detect_poses'] * PW3D_N_FRAMES
    detections = load_predictions(tmp_path / 'report.detections.npz')
    assert len(detections) == 7 and detections.box_source == 'detector'


def test_model_run_refuses_a_model_without_detector(mupots_case, tmp_path, monkeypatch,
                                                    capsys):
    gt, items, _ = mupots_case
    fake = fake_model_for(items, gt.univ3d, gt.poses2d, _keys(gt), union_names('mupots_17'))
    del fake.detector
    import functools

    import tensorflow as tf

    from eval import run
    from eval.benchmarks import mupots
    monkeypatch.setattr(tf.saved_model, 'load', lambda path: fake)
    monkeypatch.setattr(mupots, 'load_ground_truth',
                        functools.partial(mupots.load_ground_truth, sequences=('TS1',)))
    (tmp_path / 'savedmodel').mkdir()
    assert run.main(['--benchmark=mupots', f'--root={gt.source}',
                     f'--model={tmp_path / "savedmodel"}', f'--out={tmp_path / "r.json"}']) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'exported without a person detector' in err and '--boxes=gt' in err


@pytest.mark.slow
def test_predict_runs_the_real_detect_poses():
    """The real PoseEstimatorModule (tiny random model) with a fixed-box detector, the object
    an export saves: predict() in detector mode equals calling its detect_poses directly with
    the benchmark's settings; without a detection the single-person fallback estimates the
    whole image. (Loaded SavedModels take the same keyword arguments: their signatures are
    these tf.functions'.)"""
    import tensorflow as tf

    from eval import model_predictions
    from metrabs.model.metrabs_model import MetrabsModel
    from metrabs.serving.inference_module import PoseEstimatorModule
    from fixture_tiny_model import CONFIG, SIDE, FixedBoxDetector, joint_names, randomize

    model = MetrabsModel(CONFIG, joint_names())
    model(tf.zeros([1, SIDE, SIDE, 3]), tf.eye(3, batch_shape=[1]))
    randomize(model)
    loaded = PoseEstimatorModule(model, detector=FixedBoxDetector())
    assert model_predictions.has_detector(loaded)
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (96, 128, 3)).astype(np.uint8)
    cam = Camera(intrinsic_matrix=[[150.0, 0, 64], [0, 150, 48], [0, 0, 1]], world_up=(0, -1, 0))
    item = model_predictions.camera_frame_input(lambda: image, None, cam, 'TS1', 0)
    options = model_predictions.InferenceOptions(num_aug=1, antialias_factor=2)
    settings = model_predictions.DetectorSettings(threshold=0.5, max_detections=-1)
    got = model_predictions.predict(loaded, [item], options, detector=settings)
    direct = loaded.detect_poses(
        image, intrinsic_matrix=cam.intrinsic_matrix.astype(np.float32),
        distortion_coeffs=np.zeros(5, np.float32), extrinsic_matrix=np.eye(4, dtype=np.float32),
        world_up_vector=np.array([0, -1, 0], np.float32), num_aug=1, antialias_factor=2,
        detector_threshold=0.5, detector_flip_aug=True, suppress_implausible_poses=False)
    np.testing.assert_allclose(got.boxes, direct['boxes'].numpy(), atol=1e-5)
    np.testing.assert_allclose(got.poses, direct['poses3d'].numpy(), atol=1e-3)
    assert got.person.tolist() == list(range(len(got.boxes))) and got.box_source == 'detector'
    assert len(got.boxes) == 4  # 2 fixed boxes above 0.5, and their mirror images (flip aug)
    # Threshold above every detector score: nobody found, the whole image is estimated.
    blind = model_predictions.DetectorSettings(threshold=0.95, max_detections=1,
                                               fallback_whole_image=True)
    fallback = model_predictions.predict(loaded, [item], options, detector=blind)
    whole = loaded.estimate_poses(
        image, np.array([[0, 0, 128, 96]], np.float32),
        intrinsic_matrix=cam.intrinsic_matrix.astype(np.float32),
        world_up_vector=np.array([0, -1, 0], np.float32), num_aug=1, antialias_factor=2)
    np.testing.assert_allclose(fallback.poses, whole['poses3d'].numpy(), atol=1e-3)
    np.testing.assert_allclose(fallback.boxes, [[0, 0, 128, 96, -1]])
    # (a SavedModel exported without a detector: tests/test_synthetic_benchmark.py)
