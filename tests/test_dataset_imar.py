"""Fit3D, CHI3D and HumanSC3D converters on tiny fixtures in the IMAR release format.

Each fixture is laid out as the authors distribute it: train/<subject>/{joints3d_25/<action>.json,
camera_parameters/<camera>/<action>.json, videos/<camera>/<action>.mp4} with JSON fields in the
release's nesting ([1, n] vectors, metres) and rendered people in the videos, plus a test/ subject
without ground truth. Images are 160x120 (the release is 900x900): focal lengths are scaled with
them, while the lens coefficients keep the release's magnitude (normalised coordinates).
"""
import json
import shutil

import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import imar as writer
from posepile.dataset_writers.imar import (CAMERA_IDS, DATASETS, FRAME_OF_ROW, IMSHAPE, K_RADIAL,
                                           P_TANGENTIAL)
from posepile.camera import h36m_distortion_to_opencv
from posepile.datasets import chi3d, common, fit3d
from posepile.datasets.skip_counts import recording_skips


def imar_projection(points_world_m, R, T, f, c, k, p):
    """The authors' projection (tools' notebook + project_3d_to_2d), in their units (metres)."""
    cam = (points_world_m - T) @ R.T
    x = cam[:, :2] / cam[:, 2:3]
    r2 = np.sum(x ** 2, axis=1)
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    p_swapped = p[[1, 0]]
    tan = x @ p_swapped
    distorted = x * (tan + radial)[:, None] + r2[:, None] * p_swapped
    return f * distorted + c


@pytest.fixture(scope='module', params=sorted(DATASETS))
def dataset(request, tmp_path_factory):
    name = request.param
    root = tmp_path_factory.mktemp(name)
    cams, truth = writer.write(root, name)
    examples = list(DATASETS[name][0].convert(root))
    return name, root, cams, truth, examples


def test_examples_match_fixture(dataset):
    name, root, cams, truth, examples = dataset
    module, subjects, action = DATASETS[name]
    n_persons = getattr(module, 'N_PERSONS', 1)
    assert len(examples) == len(subjects) * len(CAMERA_IDS) * n_persons * len(FRAME_OF_ROW)
    names = examples[0].joint_names
    assert len(names) == 25 and names[:4] == ('pelv_h36m', 'rhip_h36m', 'rkne_h36m', 'rank_h36m')
    assert names[16:] == ('rwri_h36m', 'rfoo_h36m', 'rtoe_h36m', 'lfoo_h36m', 'ltoe_h36m',
                          'lthu_h36m', 'lfin_h36m', 'rthu_h36m', 'rfin_h36m')
    assert set(names) <= set(joints.union_names('h36m'))
    assert module.SKELETON == 'h36m_25' and list(names) == joints.union_names('h36m_25')
    splits = {ex.extra['subject']: ex.split for ex in examples}
    assert splits == {subjects[0]: 'train', subjects[1]: 'validation'}  # test/ has no GT
    for ex in examples:
        world, images, masks = truth[ex.extra['subject']]
        cam_index = CAMERA_IDS.index(ex.camera_id)
        assert ex.dataset == name and ex.sequence == f'{ex.extra["subject"]}/{action}'
        np.testing.assert_allclose(ex.world_coords, world[ex.person, ex.frame], atol=1e-2)
        # The parsed camera projects exactly like the authors' formula on the stored numbers...
        cam = cams[cam_index]
        official = imar_projection(
            world[ex.person, ex.frame] / 1000.0, cam.R, cam.t / 1000.0,
            np.diag(cam.intrinsic_matrix)[:2], cam.intrinsic_matrix[:2, 2], K_RADIAL,
            P_TANGENTIAL)
        projected = ex.camera.world_to_image(ex.world_coords.astype(np.float64))
        assert np.max(np.abs(projected - official)) < 0.01
        # ...and the pelvis lands on this person's rendered body in the decoded frame.
        frame = ex.image()
        assert frame.shape == (*IMSHAPE, 3)
        assert np.mean(np.abs(frame.astype(float) - images[cam_index][ex.frame])) < 12
        x, y = np.round(projected[0]).astype(int)
        assert masks[ex.person][cam_index][ex.frame][y, x]
        inside = (projected[:, 0] >= ex.box[0]) & (projected[:, 0] <= ex.box[0] + ex.box[2])
        assert inside.all()
    tracks = {ex.track_key for ex in examples}
    assert len(tracks) == len(subjects) * len(CAMERA_IDS) * n_persons
    assert (name, f'{subjects[0]}/{action}', n_persons - 1, CAMERA_IDS[1]) in tracks


def test_build_cli_dedups(dataset, tmp_path):
    name, root = dataset[:2]
    n_persons = getattr(DATASETS[name][0], 'N_PERSONS', 1)
    out = tmp_path / 'out'
    assert build.main([f'--dataset={name}', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets'][name]
    per_subject = len(CAMERA_IDS) * n_persons * len(FRAME_OF_ROW)
    # Each pose is stored twice in a row; with 300 mm steps only the repeats are dropped.
    assert info['num_before_dedup'] == 2 * per_subject
    assert info['num_after_dedup'] == per_subject
    assert info['after_dedup'] == {'train': per_subject // 2, 'validation': per_subject // 2}
    assert info['skipped'] == {}  # the withheld test subject has no joints: nothing to drop


def test_distortion_mapping_is_exact_at_full_resolution():
    """The 12-coefficient OpenCV camera equals the authors' formula over a 900x900 image."""
    from posepile.camera import Camera
    f, c = np.array([1039.0, 1035.0]), np.array([476.4, 449.0])
    cam = Camera([0, 0, 0], np.eye(3), [[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]],
                 h36m_distortion_to_opencv(K_RADIAL, P_TANGENTIAL))
    grid = np.stack(np.meshgrid(np.linspace(-0.45, 0.45, 19), np.linspace(-0.45, 0.45, 19)), -1)
    points = np.concatenate([grid.reshape(-1, 2) * 4.0, np.full((19 * 19, 1), 4.0)], axis=1)
    official = imar_projection(points, np.eye(3), np.zeros(3), f, c, K_RADIAL, P_TANGENTIAL)
    assert np.max(np.abs(cam.world_to_image(points * 1000.0) - official)) < 1e-6


def test_mocap_rate_joints_are_subsampled(tmp_path):
    """Joints at 4 rows per video frame (200 Hz mocap, 50 fps video) pair frame i with row 4i."""
    root = tmp_path / 'fit3d'
    writer.write(root, 'fit3d', with_test_subject=False)
    path = root / 'train/s03/joints3d_25/squat.json'
    rows = np.asarray(json.loads(path.read_text())['joints3d_25'])
    dense = np.repeat(rows, 4, axis=0) + np.arange(4 * len(rows))[:, None, None] * 1e-3
    path.write_text(json.dumps({'joints3d_25': dense.tolist()}))
    examples = [ex for ex in fit3d.convert(root, subjects=['s03'])]
    assert [ex.extra['pose_row'] for ex in examples[:4]] == [0, 4, 8, 12]
    for ex in examples:
        np.testing.assert_allclose(ex.world_coords, dense[4 * ex.frame] * 1000, atol=1e-2)
    with recording_skips() as counts:
        forced = list(fit3d.convert(root, subjects=['s03'], pose_rows_per_frame=1))
    assert [ex.extra['pose_row'] for ex in forced[:4]] == [0, 1, 2, 3]
    # At 1 row per frame, 16 rows outlast each camera's 4-frame video by 12 frames.
    assert dict(counts) == {
        ('fit3d', 'frame beyond the end of the video (person-frames)'): 12 * len(CAMERA_IDS)}


def test_bad_inputs(tmp_path):
    root = tmp_path / 'chi3d'
    writer.write(root, 'chi3d', with_test_subject=False)
    subject = root / 'train/s02'

    with pytest.raises(common.DatasetFormatError, match='missing directory .*train'):
        next(chi3d.convert(tmp_path / 'nothing'))

    joints_file = subject / 'joints3d_25/Grab 4.json'
    good_joints = joints_file.read_text()
    single = np.zeros((4, 25, 3)).tolist()  # Fit3D's shape, not CHI3D's two persons
    joints_file.write_text(json.dumps({'joints3d_25': single}))
    with pytest.raises(common.DatasetFormatError,
                       match=r"Grab 4\.json: field 'joints3d_25' has shape \(4, 25, 3\), "
                             r"expected \[2x"):
        next(chi3d.convert(root))
    joints_file.write_text(json.dumps({'joints_3d': single}))
    with pytest.raises(common.DatasetFormatError, match="Grab 4.json: missing field 'joints3d_25'"):
        next(chi3d.convert(root))
    joints_file.write_text('{not json')
    with pytest.raises(common.DatasetFormatError, match='Grab 4.json: not valid JSON'):
        next(chi3d.convert(root))
    joints_file.write_text(good_joints)

    camera_file = subject / f'camera_parameters/{CAMERA_IDS[0]}/Grab 4.json'
    good_camera = json.loads(camera_file.read_text())
    bad = json.loads(json.dumps(good_camera))
    bad['extrinsics']['T'] = [[1.0, 2.0]]
    camera_file.write_text(json.dumps(bad))
    with pytest.raises(common.DatasetFormatError,
                       match=r"Grab 4\.json \[extrinsics\]: field 'T' has shape \(1, 2\)"):
        next(chi3d.convert(root))
    del bad['intrinsics_w_distortion']
    camera_file.write_text(json.dumps(bad))
    with pytest.raises(common.DatasetFormatError,
                       match="Grab 4.json: missing field 'intrinsics_w_distortion'"):
        next(chi3d.convert(root))
    camera_file.unlink()
    with pytest.raises(common.DatasetFormatError,
                       match=rf'missing file .*camera_parameters/{CAMERA_IDS[0]}/Grab 4\.json'):
        next(chi3d.convert(root))
    camera_file.write_text(json.dumps(good_camera))

    video = subject / f'videos/{CAMERA_IDS[0]}/Grab 4.mp4'
    video.write_bytes(b'\x00' * 1000)
    with pytest.raises(common.DatasetFormatError, match=r'Grab 4\.mp4: (cannot be opened|video)'):
        next(chi3d.convert(root))
    video.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*Grab 4\.mp4'):
        next(chi3d.convert(root))

    with pytest.raises(common.DatasetFormatError, match='escapes the dataset root'):
        next(chi3d.convert(root, subjects=['../../etc']))
    shutil.rmtree(subject / 'joints3d_25')
    with pytest.raises(common.DatasetFormatError, match='missing directory .*s02/joints3d_25'):
        next(chi3d.convert(root))
