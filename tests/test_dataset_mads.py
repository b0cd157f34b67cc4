"""MADS converter on a tiny fixture in the real format (GT.mat cell of poses, Caltech Calib_Cam
.mat files, MJPG avi views). Real videos are 1024x768; the fixture's are 160x120 with
intrinsics to match."""
import json
import shutil

import cv2
import numpy as np
import pytest
import scipy.io

from posepile.dataset_writers.people import default_camera
from posepile import build, joints
from posepile.dataset_writers import mads as writer
from posepile.dataset_writers.mads import IMSHAPE, write_calibration, write_gt
from posepile.datasets import common, mads


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('mads')
    cams, people = writer.write(root)
    return root, cams, people, list(mads.convert(root))


def test_examples(dataset):
    root, cams, people, examples = dataset
    # Frames 1 (all NaN) and 3 (empty cell) carry no pose.
    assert [(ex.camera_id, ex.frame) for ex in examples] == \
        [(c, f) for c in ('C0', 'C1') for f in (0, 2, 4)]
    for ex in examples:
        i = int(ex.camera_id[1])
        truth = people[0].joints[ex.frame].astype(np.float64)
        assert ex.joint_names == tuple(joints.union_names('mads'))
        assert ex.joint_names[:2] == ('neck_mads', 'pelv_mads')
        assert ex.sequence == 'Kata/Kata_P1' and ex.split == 'train'
        labelled = np.isfinite(ex.world_coords[:, 0])
        if ex.frame == 2:  # a 15-joint frame: toes and hands NaN
            assert np.flatnonzero(~labelled).tolist() == [5, 9, 13, 17]
        else:
            assert labelled.all()
        np.testing.assert_allclose(ex.world_coords[labelled], truth[labelled], atol=1e-3)
        projected = ex.camera.world_to_image(ex.world_coords[labelled])
        assert np.max(np.abs(projected - cams[i].world_to_image(truth[labelled]))) < 1.0
        x, y = np.round(projected[0]).astype(int)  # neck on the rendered person
        assert people[i].masks[ex.frame][y, x]
        frame = ex.image()
        assert np.mean(np.abs(frame.astype(float) - people[i].images[ex.frame])) < 12


def test_distortion_matches_opencv(tmp_path):
    cam = default_camera(IMSHAPE, distance_mm=3500, yaw_deg=20)
    kc = np.array([-0.2, 0.05, 0.001, -0.002, 0.01])
    write_calibration(tmp_path / 'Calib_Cam0.mat', cam, kc)
    parsed = mads.load_camera(tmp_path / 'Calib_Cam0.mat')
    points = np.array([[0.0, 0, 900], [300, -200, 1500], [-400, 100, 200]])
    rvec = cv2.Rodrigues(cam.R)[0]
    expected = cv2.projectPoints(points, rvec, -cam.R @ cam.t, cam.intrinsic_matrix, kc)[0]
    np.testing.assert_allclose(parsed.world_to_image(points), expected.reshape(-1, 2), atol=1e-6)


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=mads', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['mads']
    assert info['before_dedup'] == {'train': 6}
    assert info['num_after_dedup'] == 6  # 150 mm/frame walk: all kept
    # Frames 1 and 3 carry no pose, in each of the 2 views.
    assert info['skipped'] == {'frame without any valid joint': 4}


def test_bad_inputs(dataset, tmp_path):
    bad = tmp_path / 'bad'
    shutil.copytree(dataset[0], bad)
    group = bad / 'multi_view_data/Kata'
    write_gt(group / 'Kata_P1_GT.mat', [np.zeros((17, 3))])
    with pytest.raises(common.DatasetFormatError,
                       match=r'Kata_P1_GT\.mat: field "GTpose2" frame 0 has shape \(17, 3\)'):
        list(mads.convert(bad))
    scipy.io.savemat(str(group / 'Kata_P1_GT.mat'), {'other': 1})
    with pytest.raises(common.DatasetFormatError,
                       match=r"Kata_P1_GT\.mat: missing field 'GTpose2'"):
        list(mads.convert(bad))
    (group / 'Kata_P1_GT.mat').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*Kata_P1_GT\.mat'):
        list(mads.convert(bad))
    shutil.copy(dataset[0] / 'multi_view_data/Kata/Kata_P1_GT.mat', group)
    scipy.io.savemat(str(group / 'Calib_Cam1.mat'), {'om_ext': np.zeros(3), 'T_ext': np.zeros(3),
                                                     'KK': np.eye(2), 'kc': np.zeros(5)})
    with pytest.raises(common.DatasetFormatError,
                       match=r"Calib_Cam1\.mat: field 'KK' has shape \(2, 2\), expected \[3x3\]"):
        list(mads.convert(bad))
    shutil.copy(dataset[0] / 'multi_view_data/Kata/Calib_Cam1.mat', group)
    (group / 'Kata_P1_C0.avi').write_bytes(b'RIFF\x00\x00 corrupt')
    with pytest.raises(common.DatasetFormatError, match=r'Kata_P1_C0\.avi: cannot be opened'):
        list(mads.convert(bad))
