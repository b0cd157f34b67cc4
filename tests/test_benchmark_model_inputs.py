"""model_inputs of the real benchmarks (what `eval.run --model` feeds the SavedModel), on tiny
fixtures in the benchmarks' real formats with rendered people.

Checks per benchmark: one input per test image, keys equal to the GT rows that evaluate() joins
on, and the geometry: the GT camera-frame joints projected with the returned intrinsics and
distortion (OpenCV, an independent projection) land inside the returned box, on the stated image
(the rendered body is there), and within 1 px of the benchmark's own annot2 where it has one.
"""
import cv2
import numpy as np
import pytest

from eval.benchmarks import h36m, mpi_inf_3dhp, mupots, pw3d
from eval.model_predictions import load_rgb
from fixture_media import write_jpeg, write_video
from fixture_people import default_camera, make_people_sequence
from posepile.datasets import h36m as h36m_data
from test_benchmarks import write_pose_cdf as write_mono_pose_cdf
from test_dataset_h36m import IMSHAPE, fixture_cameras, write_cameras_h5
from test_dataset_mpi_inf_3dhp_test import HIDDEN_OF_ROW as TDHP_HIDDEN_OF_ROW
from test_dataset_mpi_inf_3dhp_test import VALID as TDHP_VALID
from test_dataset_mupots import HIDDEN_OF_ROW as MUPOTS_HIDDEN_OF_ROW
from test_dataset_mupots import N_FRAMES as MUPOTS_N_FRAMES
from test_dataset_mupots import write_annot
from test_dataset_tdpw import N_FRAMES as PW3D_N_FRAMES
from test_dataset_tdpw import moving_cameras, pkl_dict, write_pkl


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
H36M_STEMS = ('Directions 1.54138969', 'Walking 1.58860488')
H36M_N_FRAMES = 5


@pytest.fixture(scope='module')
def h36m_case(tmp_path_factory):
    """S9 with two camera-frame (D3_Positions_mono) files, their videos and cameras.h5."""
    root = tmp_path_factory.mktemp('h36m_model_inputs')
    cams = fixture_cameras()
    write_cameras_h5(root / 'cameras.h5', (9,), cams)
    cam_of_id = dict(zip(h36m_data.CAMERA_IDS, cams))
    rendered = {}
    for seed, stem in enumerate(H36M_STEMS):
        cam = cam_of_id[stem.rpartition('.')[2]]
        seq = make_people_sequence([cam], IMSHAPE, n_frames=H36M_N_FRAMES, n_joints=32,
                                   seed=seed, step_mm_per_frame=150.0)[0]
        camera_frame = cam.world_to_camera(seq.joints.astype(np.float64))
        folder = root / 'S9' / 'MyPoseFeatures' / 'D3_Positions_mono'
        folder.mkdir(parents=True, exist_ok=True)
        write_mono_pose_cdf(folder / f'{stem}.cdf', camera_frame)
        write_video(root / 'S9' / 'Videos' / f'{stem}.mp4', seq.images)
        rendered[f'S9/{stem}'] = (cam, seq)
    gt = h36m.load_ground_truth(root, frame_step=2, subjects=('S9',))
    return gt, list(h36m.model_inputs(gt)), rendered


def test_h36m_inputs_keys_and_geometry(h36m_case):
    gt, items, rendered = h36m_case
    assert len(items) == len(gt.sequence) == 2 * 3  # frames 0, 2, 4 of two files
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
        projected = project_opencv(gt.poses[row][np.newaxis], item)[0]
        assert_inside_boxes(projected[np.newaxis], item.boxes)
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
    import h5py
    import scipy.io
    root = tmp_path_factory.mktemp('3dhp_model_inputs')
    truth = {}
    for seed, (sequence, yaw, focal) in enumerate((('TS1', 30, 170.0), ('TS2', -40, 190.0))):
        cam = default_camera(IMSHAPE, yaw_deg=yaw, focal=focal)
        cam.intrinsic_matrix[0, 2] += 3.5
        people = make_people_sequence([cam], IMSHAPE, n_frames=len(TDHP_VALID), n_joints=17,
                                      seed=seed, step_mm_per_frame=40.0)[0]
        annot3 = cam.world_to_camera(people.joints[:, TDHP_HIDDEN_OF_ROW].astype(np.float64))
        annot2 = cam.camera_to_image(annot3)
        pelvis = annot3[:, mpi_inf_3dhp.ROOT_INDEX:mpi_inf_3dhp.ROOT_INDEX + 1]
        univ = pelvis + 0.9 * (annot3 - pelvis)
        fields = dict(annot3=annot3, univ_annot3=univ, annot2=annot2)
        flags = dict(valid_frame=TDHP_VALID, activity_annotation=np.ones(len(TDHP_VALID)))
        path = root / sequence / 'annot_data.mat'
        path.parent.mkdir()
        if sequence == 'TS1':
            with h5py.File(path, 'w') as f:
                for key, value in fields.items():
                    f[key] = value[:, np.newaxis]
                for key, value in flags.items():
                    f[key] = np.asarray(value, np.float64)[np.newaxis]
        else:
            scipy.io.savemat(path, {
                **{k: v.transpose(2, 1, 0)[:, :, np.newaxis] for k, v in fields.items()},
                **{k: np.asarray(v, np.float64)[:, np.newaxis] for k, v in flags.items()}})
        for i, image in enumerate(people.images):
            write_jpeg(root / sequence / f'imageSequence/img_{i + 1:06d}.jpg', image)
        truth[sequence] = (cam, annot2, people)
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
    """The default protocol (univ_annot3) gives the same images, boxes and cameras."""
    gt, items, _ = tdhp_case
    univ_gt = mpi_inf_3dhp.load_ground_truth(gt.source, sequences=('TS1', 'TS2'))
    univ_items = list(mpi_inf_3dhp.model_inputs(univ_gt))
    assert [(a.sequence, a.frame, str(a.image)) for a in items] == \
        [(b.sequence, b.frame, str(b.image)) for b in univ_items]
    np.testing.assert_array_equal(np.stack([a.boxes for a in items]),
                                  np.stack([b.boxes for b in univ_items]))


# ------------------------------------------------------------------------------------ 3DPW ---
PW3D_VALID = [[1, 1, 0, 1], [1, 1, 1, 1]]


@pytest.fixture(scope='module')
def pw3d_case(tmp_path_factory):
    """One test sequence, moving camera, two actors (the second 800 mm aside, not drawn)."""
    root = tmp_path_factory.mktemp('pw3d_model_inputs')
    name = 'downtown_fixture_00'
    cams = moving_cameras(15)
    people = make_people_sequence(cams, IMSHAPE, n_frames=PW3D_N_FRAMES, n_joints=24, seed=1,
                                  step_mm_per_frame=150.0)
    images = np.stack([people[i].images[i] for i in range(PW3D_N_FRAMES)])
    masks = np.stack([people[i].masks[i] for i in range(PW3D_N_FRAMES)])
    actors = [people[0].joints.astype(np.float64)]
    actors.append(actors[0] + [800.0, 0, 0])
    write_pkl(root / 'sequenceFiles' / 'test' / f'{name}.pkl',
              pkl_dict(name, cams, actors, PW3D_VALID))
    for i, image in enumerate(images):
        write_jpeg(root / 'imageFiles' / name / f'image_{i:05d}.jpg', image)
    gt = pw3d.load_ground_truth(root)
    return gt, list(pw3d.model_inputs(gt)), (cams, actors, images, masks)


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
MUPOTS_VALID = [[1, 1, 1], [1, 0, 1]]


@pytest.fixture(scope='module')
def mupots_case(tmp_path_factory):
    """TS1: two people (the second 700 mm aside, not drawn), person 1 unannotated in frame 1."""
    root = tmp_path_factory.mktemp('mupots_model_inputs')
    cam = default_camera(IMSHAPE, yaw_deg=20, focal=190.0)
    cam.intrinsic_matrix[1, 2] -= 2.5
    people = make_people_sequence([cam], IMSHAPE, n_frames=MUPOTS_N_FRAMES, n_joints=17,
                                  seed=3, step_mm_per_frame=60.0)[0]
    world = people.joints[:, MUPOTS_HIDDEN_OF_ROW].astype(np.float64)
    write_annot(root / 'TS1' / 'annot.mat', cam, [world, world + [700.0, 300.0, 0]],
                MUPOTS_VALID)
    for t, image in enumerate(people.images):
        write_jpeg(root / 'TS1' / f'img_{t:06d}.jpg', image)
    gt = mupots.load_ground_truth(root, sequences=('TS1',))
    return gt, list(mupots.model_inputs(gt)), (cam, people)


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
