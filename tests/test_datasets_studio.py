"""Converters of the studio datasets (issue 7, part A) on tiny fixtures written in each real format.

Every fixture holds rendered synthetic people (posepile/dataset_writers/people.py), so the
checks are against real pixels: projections through the parsed camera agree with OpenCV's projection of the
raw calibration (< 1 px), the decoded image is the frame that was written, units come out in mm,
and `python -m posepile.build` dedups to the count an independent reference loop gives.
"""
from __future__ import annotations

import json
import pathlib
import pickle

import cv2
import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import aist as aist_writer
from posepile.dataset_writers import aspset as aspset_writer
from posepile.dataset_writers import bmlmovi as bmlmovi_writer
from posepile.dataset_writers import gpa as gpa_writer
from posepile.dataset_writers import panoptic as panoptic_writer
from posepile.dataset_writers import totcap as totcap_writer
from posepile.dataset_writers import umpm as umpm_writer
from posepile.dataset_writers.aist import AIST_SEQS
from posepile.dataset_writers.aspset import ASPSET_CLIPS
from posepile.dataset_writers.bmlmovi import MOVI_RADIAL
from posepile.dataset_writers.media import write_c3d
from posepile.dataset_writers.totcap import TOTCAP_K1
from posepile.dataset_writers.umpm import UMPM_DIST
from posepile.datasets import common, get_converter
from posepile.datasets.skip_counts import recording_skips
from posepile.safe_unpickle import UnsafePickleError

IMSHAPE = (120, 160)


# ------------------------------------------------------------------------------ shared helpers
def reference_dedup_count(examples, threshold_mm=100.0) -> int:
    """The 100 mm rule as a plain loop over tracks (independent of posepile.dedup)."""
    tracks = {}
    for ex in examples:
        tracks.setdefault(ex.track_key, []).append(ex)
    kept = 0
    for track in tracks.values():
        last = None
        for ex in sorted(track, key=lambda e: e.frame):
            if last is None:
                kept, last = kept + 1, ex.world_coords
                continue
            both = np.isfinite(ex.world_coords).all(1) & np.isfinite(last).all(1)
            dist = np.linalg.norm(ex.world_coords[both] - last[both], axis=1)
            if not both.any() or dist.max() > threshold_mm:
                kept, last = kept + 1, ex.world_coords
    return kept


def opencv_project(points_mm, rvec, tvec_mm, K, dist):
    pts, _ = cv2.projectPoints(np.asarray(points_mm, np.float64).reshape(-1, 1, 3),
                               np.asarray(rvec, np.float64), np.asarray(tvec_mm, np.float64),
                               np.asarray(K, np.float64),
                               None if dist is None else np.asarray(dist, np.float64))
    return pts.reshape(-1, 2)


def load_image(image) -> np.ndarray:
    if callable(image):
        return image()
    if isinstance(image, str):
        return cv2.imread(image)[..., ::-1]
    raise AssertionError(f'unexpected image type {type(image)}')


def assert_same_picture(decoded: np.ndarray, original: np.ndarray):
    """Lossy codecs change pixels a little; another frame or a flipped image changes them a lot."""
    assert decoded.shape == original.shape
    assert np.mean(np.abs(decoded.astype(np.float32) - original)) < 8


def run_build(name, root, out) -> dict:
    assert build.main([f'--dataset={name}', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1']) == 0
    return json.loads((pathlib.Path(out) / build.MANIFEST_NAME).read_text())


# ----------------------------------------------------------------------------------- Panoptic
@pytest.fixture(scope='module')
def panoptic(tmp_path_factory):
    root = tmp_path_factory.mktemp('panoptic')
    truth = panoptic_writer.write(root)
    examples = list(get_converter('panoptic').convert(root))
    return root, truth, examples


def test_panoptic_examples_match_the_files(panoptic):
    root, truth, examples = panoptic
    assert len(examples) == 2 * 2 * 4  # sequences x HD cameras x frames; body 7 is unlabelled
    assert {ex.person for ex in examples} == {3}
    for ex in examples:
        t = truth[ex.sequence]
        assert ex.joint_names == tuple(joints.union_names('coco'))
        assert ex.joint_names[0] == 'neck_coco' and ex.joint_names[16] == 'lear_coco'
        expected = t['people'][0].joints[ex.frame].astype(np.float64)
        if ex.frame == 1:
            assert np.isnan(ex.world_coords[16]).all()
            expected[16] = np.nan
        np.testing.assert_allclose(ex.world_coords, expected, atol=1e-3, equal_nan=True)
        assert ex.split == ('test' if ex.sequence == '160906_ian5' else 'train')


def test_panoptic_projection_matches_opencv_and_pixels(panoptic):
    root, truth, examples = panoptic
    for ex in examples:
        t = truth[ex.sequence]
        i_cam = t['names'].index(ex.camera_id)
        rec = t['records'][i_cam]
        labelled = np.isfinite(ex.world_coords).all(1)
        ref = opencv_project(ex.world_coords[labelled], cv2.Rodrigues(np.array(rec['R']))[0],
                             np.array(rec['t'])[:, 0] * 10.0, rec['K'], rec['distCoef'])
        ours = ex.camera.world_to_image(ex.world_coords[labelled])
        assert np.abs(ours - ref).max() < 1.0
        rendered = t['cams'][i_cam].world_to_image(t['people'][0].joints[ex.frame][labelled])
        assert np.abs(ours - rendered).max() < 1.0
        x, y, w, h = ex.box
        assert np.all((ours >= [x, y]) & (ours <= [x + w, y + h]))
        if ex.frame in (0, 3):
            assert_same_picture(load_image(ex.image), t['people'][i_cam].images[ex.frame])
    assert any(isinstance(ex.image, common.VideoFrame) for ex in examples)
    assert any(isinstance(ex.image, str) for ex in examples)


def test_panoptic_build_cli_and_dedup(panoptic, tmp_path):
    root, truth, examples = panoptic
    manifest = run_build('panoptic', root, tmp_path / 'out')
    info = manifest['datasets']['panoptic']
    assert info['num_before_dedup'] == len(examples)
    assert info['num_after_dedup'] == reference_dedup_count(examples)
    assert info['num_after_dedup'] < len(examples)
    # Body 7 (unreconstructed) in 2 sequences x 2 cameras x 4 frames; frame 4 of 160906_ian5
    # (2 bodies x 2 cameras) is beyond the end of its videos.
    assert info['skipped'] == {
        'frame beyond the end of the video (person-frames)': 4,
        'no labelled joint in front of the camera and inside the image': 16}


def test_panoptic_bad_inputs(panoptic, tmp_path):
    import shutil
    root, _, _ = panoptic
    convert = get_converter('panoptic').convert
    bad = tmp_path / 'bad'
    shutil.copytree(root / '171204_pose1', bad / '171204_pose1')
    (bad / '171204_pose1' / 'hdImgs' / '00_01' / '00_01_00000002.jpg').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'00_01_00000002\.jpg'):
        list(convert(bad))
    calib_path = bad / '171204_pose1' / 'calibration_171204_pose1.json'
    calib = json.loads(calib_path.read_text())
    calib['cameras'][0]['K'] = [[1, 0], [0, 1]]
    calib_path.write_text(json.dumps(calib))
    with pytest.raises(common.DatasetFormatError, match=r"calibration_171204_pose1\.json.*'K'"):
        list(convert(bad))
    pose = bad / '171204_pose1' / 'hdPose3d_stage1_coco19' / 'body3DScene_00000000.json'
    pose.write_text(json.dumps({'bodies': [{'id': 0, 'joints19': [0.0] * 57}]}))
    calib['cameras'][0]['K'] = np.eye(3).tolist()
    calib_path.write_text(json.dumps(calib))
    with pytest.raises(common.DatasetFormatError, match=r"body3DScene_00000000\.json.*joints19"):
        list(convert(bad))
    shutil.copytree(root / '160906_ian5', bad2 := tmp_path / 'bad2' / '160906_ian5')
    (bad2 / 'hdVideos' / 'hd_00_00.mp4').write_bytes(b'not a video at all')
    with pytest.raises(common.DatasetFormatError, match=r'hd_00_00\.mp4'):
        for ex in convert(bad2.parent):
            ex.image()


# -------------------------------------------------------------------------------------- AIST++
@pytest.fixture(scope='module')
def aist(tmp_path_factory):
    root = tmp_path_factory.mktemp('aist')
    truth = aist_writer.write(root)
    return root, truth, list(get_converter('aist').convert(root))


def test_aist_examples_match_the_files(aist):
    root, truth, examples = aist
    assert len(examples) == 3 * 2 * 4 - 2  # frame 2 of the first sequence has no keypoints
    assert {ex.sequence for ex in examples} == set(AIST_SEQS)
    for ex in examples:
        assert ex.joint_names == tuple(joints.union_names('coco17'))
        assert ex.joint_names[0] == 'nose_coco' and ex.joint_names[16] == 'rank_coco'
        assert ex.split == AIST_SEQS[ex.sequence]
        assert ex.person == int(ex.sequence.split('_')[3][1:])
        expected = truth['people'][ex.sequence][0].joints[ex.frame]
        np.testing.assert_allclose(ex.world_coords, expected, atol=1e-3)
    assert 2 not in {ex.frame for ex in examples if ex.sequence == 'gBR_sBM_cAll_d04_mBR0_ch01'}
    raw = list(get_converter('aist').convert(root, use_optim=False, sequences=[
        'gBR_sBM_cAll_d06_mBR0_ch01'], cameras=['c02']))
    assert len(raw) == 4
    np.testing.assert_allclose(raw[0].world_coords,
                               truth['people']['gBR_sBM_cAll_d06_mBR0_ch01'][0].joints[0] + 5,
                               atol=1e-3)


def test_aist_projection_matches_opencv_and_pixels(aist):
    root, truth, examples = aist
    up = examples[0].camera.world_up
    np.testing.assert_allclose(up, [0, 0, 1], atol=0.1)  # the fixture world is z-up
    for ex in examples:
        i_cam = int(ex.camera_id[1:]) - 1
        rec = truth['records'][i_cam]
        ref = opencv_project(ex.world_coords, rec['rotation'], np.array(rec['translation']) * 10,
                             rec['matrix'], rec['distortions'])
        ours = ex.camera.world_to_image(ex.world_coords)
        assert np.abs(ours - ref).max() < 1.0
        assert np.abs(ours - truth['cams'][i_cam].world_to_image(ex.world_coords)).max() < 1.0
        if ex.frame in (1, 3):
            assert_same_picture(load_image(ex.image),
                                truth['people'][ex.sequence][i_cam].images[ex.frame])


def test_aist_build_cli_and_dedup(aist, tmp_path):
    root, _, examples = aist
    info = run_build('aist', root, tmp_path / 'out')['datasets']['aist']
    assert info['before_dedup'] == {'train': 6, 'validation': 8, 'test': 8}
    assert info['num_after_dedup'] == reference_dedup_count(examples)
    # Frame 2 of d04 and frame 4 of d05 (beyond the videos) in 2 cameras; the ignored sequence.
    assert info['skipped'] == {'frame beyond the end of the video': 2,
                               'frame without any valid joint': 2,
                               'sequence in ignore_list.txt (sequences)': 1}


def test_aist_bad_inputs(aist, tmp_path):
    import shutil
    root, _, _ = aist
    convert = get_converter('aist').convert
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    seq = 'gBR_sBM_cAll_d04_mBR0_ch01'
    with open(bad / 'keypoints3d' / f'{seq}.pkl', 'wb') as f:
        pickle.dump({'keypoints3d': np.zeros((4, 17, 3)),
                     'keypoints3d_optim': np.zeros((4, 19, 3))}, f)
    with pytest.raises(common.DatasetFormatError, match=r'd04_mBR0_ch01\.pkl.*keypoints3d_optim'):
        list(convert(bad))
    with open(bad / 'keypoints3d' / f'{seq}.pkl', 'wb') as f:
        pickle.dump({'keypoints3d_optim': np.zeros((4, 17, 3)), 'evil': pathlib.Path('/')}, f)
    # A forbidden class is a security refusal (UnsafePickleError, as for every pickle converter),
    # not a format error.
    with pytest.raises(UnsafePickleError, match=r'd04_mBR0_ch01\.pkl.*pathlib'):
        list(convert(bad))
    shutil.copy(root / 'keypoints3d' / f'{seq}.pkl', bad / 'keypoints3d' / f'{seq}.pkl')
    (bad / 'videos' / 'gBR_sBM_c02_d04_mBR0_ch01.mp4').write_bytes(b'\x00' * 100)
    with pytest.raises(common.DatasetFormatError, match=r'gBR_sBM_c02_d04_mBR0_ch01\.mp4'):
        for ex in convert(bad):
            ex.image()
    (bad / 'videos' / 'gBR_sBM_c02_d04_mBR0_ch01.mp4').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*c02_d04_mBR0_ch01\.mp4'):
        list(convert(bad))
    (bad / 'cameras' / 'mapping.txt').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'mapping\.txt'):
        list(convert(bad))


# ---------------------------------------------------------------------------------------- C3D
@pytest.mark.parametrize('units,use_float', [('mm', True), ('m', True), ('cm', False)])
def test_c3d_reader_units_invalid_points_and_analog(tmp_path, units, use_float):
    from posepile.datasets._c3d import read_c3d
    pts = np.array([[[100.0, -200.0, 1500.0], [0.0, 10.0, 20.0]],
                    [[110.0, -210.0, 1490.0], [5.0, 15.0, 25.0]]])
    invalid = np.array([[False, True], [False, False]])
    write_c3d(tmp_path / 'a.c3d', pts, ['Head', 'LeftFoot'], units=units, use_float=use_float,
              invalid=invalid, n_analog=3)
    got = read_c3d(tmp_path / 'a.c3d')
    expected = pts.copy()
    expected[invalid] = np.nan
    np.testing.assert_allclose(got.points, expected, atol=0.06, equal_nan=True)
    assert got.labels == ['Head', 'LeftFoot'] and got.frame_rate == 50.0
    data = (tmp_path / 'a.c3d').read_bytes()
    (tmp_path / 'b.c3d').write_bytes(data[:-10])
    with pytest.raises(common.DatasetFormatError, match=r'b\.c3d: truncated'):
        read_c3d(tmp_path / 'b.c3d')


# ------------------------------------------------------------------------------------- ASPset
@pytest.fixture(scope='module')
def aspset(tmp_path_factory):
    root = tmp_path_factory.mktemp('aspset')
    truth = aspset_writer.write(root)
    return root, truth, list(get_converter('aspset').convert(root))


def test_aspset_examples_projections_and_pixels(aspset):
    root, truth, examples = aspset
    assert len(examples) == 3 * 3 * 4
    splits = {f'{s}-{c}': {'val': 'validation'}.get(sp, sp) for s, c, sp in ASPSET_CLIPS}
    for ex in examples:
        assert ex.joint_names == tuple(joints.union_names('aspset'))
        assert ex.joint_names[0] == 'rank_aspset' and ex.joint_names[16] == 'pelv_aspset'
        assert ex.split == splits[ex.sequence]
        expected = truth['people'][ex.sequence][0].joints[ex.frame].astype(np.float64)
        if ex.frame == 1:
            expected[12] = np.nan
        np.testing.assert_allclose(ex.world_coords, expected, atol=0.05, equal_nan=True)
        i_cam = truth['cam_ids'].index(ex.camera_id)
        cam = truth['cams'][i_cam]
        ok = np.isfinite(ex.world_coords).all(1)
        ref = opencv_project(ex.world_coords[ok], cv2.Rodrigues(cam.R)[0], -cam.R @ cam.t,
                             cam.intrinsic_matrix, None)
        assert np.abs(ex.camera.world_to_image(ex.world_coords[ok]) - ref).max() < 1.0
        assert ex.extra['c3d_labels'][0] == 'J0'
        if ex.frame == 2:
            assert_same_picture(load_image(ex.image),
                                truth['people'][ex.sequence][i_cam].images[ex.frame])
    np.testing.assert_allclose(examples[0].camera.world_up, [0, 0, 1], atol=0.1)


def test_aspset_build_cli_and_dedup(aspset, tmp_path):
    root, _, examples = aspset
    info = run_build('aspset', root, tmp_path / 'out')['datasets']['aspset']
    assert info['before_dedup'] == {'train': 12, 'validation': 12, 'test': 12}
    assert info['num_after_dedup'] == reference_dedup_count(examples)
    assert info['skipped'] == {} and info['num_skipped'] == 0


def test_aspset_bad_inputs(aspset, tmp_path):
    import shutil
    root, _, _ = aspset
    convert = get_converter('aspset').convert
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    cam_path = bad / 'trainval' / 'cameras' / '04ac' / '04ac-mid.json'
    cam_path.write_text(json.dumps({'intrinsic_matrix': [1, 0, 0], 'extrinsic_matrix': [0] * 16}))
    with pytest.raises(common.DatasetFormatError, match=r'04ac-mid\.json.*intrinsic_matrix'):
        list(convert(bad))
    shutil.copy(root / 'trainval' / 'cameras' / '04ac' / '04ac-mid.json', cam_path)
    c3d = bad / 'trainval' / 'joints_3d' / '04ac' / '04ac-0026.c3d'
    write_c3d(c3d, np.zeros((4, 15, 3)), [f'J{j}' for j in range(15)])
    with pytest.raises(common.DatasetFormatError, match=r'04ac-0026\.c3d.*15 points.*17'):
        list(convert(bad))
    c3d.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*04ac-0026\.c3d'):
        list(convert(bad))


# ------------------------------------------------------------------------------- TotalCapture
@pytest.fixture(scope='module')
def totcap(tmp_path_factory):
    root = tmp_path_factory.mktemp('totcap')
    truth = totcap_writer.write(root)
    return root, truth, list(get_converter('totcap').convert(root))


def test_totcap_examples_projections_and_pixels(totcap):
    root, truth, examples = totcap
    assert {ex.sequence for ex in examples} == {'S1/walking1', 'S1/walking2', 'S4/acting3'}
    assert len(examples) == 3 * 3 * 4
    for ex in examples:
        assert ex.joint_names == tuple(joints.union_names('totcap'))
        assert ex.joint_names[7] == 'rcla_totcap' and ex.joint_names[8] == 'rsho_totcap'
        assert ex.split == ('train' if ex.sequence == 'S1/walking1' else 'test')
        expected = truth['people'][ex.sequence][0].joints[ex.frame]
        np.testing.assert_allclose(ex.world_coords, expected, atol=1e-3)
        i_cam = int(ex.camera_id[3:]) - 1
        cam = truth['cams'][i_cam]
        ref = opencv_project(ex.world_coords, cv2.Rodrigues(cam.R)[0], -cam.R @ cam.t,
                             cam.intrinsic_matrix, [TOTCAP_K1, 0, 0, 0, 0])
        assert np.abs(ex.camera.world_to_image(ex.world_coords) - ref).max() < 1.0
        if ex.frame == 3:
            assert_same_picture(load_image(ex.image),
                                truth['people'][ex.sequence][i_cam].images[ex.frame])
    np.testing.assert_allclose(examples[0].camera.world_up, [0, 0, 1], atol=0.1)
    with recording_skips() as counts:
        everything = list(get_converter('totcap').convert(root, include_unused=True,
                                                          cameras=[2]))
    assert not counts  # include_unused keeps S4/walking1
    assert len(everything) == 4 * 4 and {ex.split for ex in everything
                                          if ex.sequence == 'S4/walking1'} == {'train'}


def test_totcap_build_cli_and_dedup(totcap, tmp_path):
    root, _, examples = totcap
    info = run_build('totcap', root, tmp_path / 'out')['datasets']['totcap']
    assert info['before_dedup'] == {'train': 12, 'test': 24}
    assert info['num_after_dedup'] == reference_dedup_count(examples)
    assert info['skipped'] == {'sequence outside the train/test protocol (sequences)': 1}


def test_totcap_bad_inputs(totcap, tmp_path):
    import shutil
    root, _, _ = totcap
    convert = get_converter('totcap').convert
    with pytest.raises(common.DatasetFormatError, match=r'translation_unit_mm'):
        list(convert(root, translation_unit_mm=1.0))  # metres read as mm: nobody in view
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    cal = (bad / 'calibration.cal').read_text().splitlines()
    cal[2] = '1.0 2.0 3.0'
    (bad / 'calibration.cal').write_text('\n'.join(cal))
    with pytest.raises(common.DatasetFormatError, match=r'calibration\.cal: line 3.*fx fy cx cy'):
        list(convert(bad))
    shutil.copy(root / 'calibration.cal', bad / 'calibration.cal')
    pos = bad / 'S1' / 'vicon' / 'walking1' / 'gt_skel_gbl_pos.txt'
    text = pos.read_text().splitlines()
    pos.write_text('\n'.join([text[0], text[1] + '\t1 2 3']))
    with pytest.raises(common.DatasetFormatError, match=r'gt_skel_gbl_pos\.txt.*21 header joints'):
        list(convert(bad))
    pos.write_text(text[0].replace('LeftFoot', 'LeftToe') + '\n' + '\n'.join(text[1:]))
    with pytest.raises(common.DatasetFormatError,
                       match=r"gt_skel_gbl_pos\.txt: header lacks.*LeftFoot"):
        list(convert(bad))
    shutil.copy(root / 'S1' / 'vicon' / 'walking1' / 'gt_skel_gbl_pos.txt', pos)
    (bad / 'S1' / 'video' / 'walking1' / 'TC_S1_walking1_cam2.mp4').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'TC_S1_walking1_cam2\.mp4'):
        list(convert(bad))


# ---------------------------------------------------------------------------------------- UMPM
@pytest.fixture(scope='module')
def umpm(tmp_path_factory):
    root = tmp_path_factory.mktemp('umpm')
    truth = umpm_writer.write(root)
    return root, truth, list(get_converter('umpm').convert(root))


def test_umpm_examples_projections_and_pixels(umpm):
    root, truth, examples = umpm
    # people x cameras x frames, less person 1 of p2_chair_1 in frame 3 (no valid joint)
    assert len(examples) == (2 + 1) * 4 * 4 - 4
    assert ('p2_chair_1', 1, 3) not in {(ex.sequence, ex.person, ex.frame) for ex in examples}
    for ex in examples:
        assert ex.joint_names == tuple(joints.union_names('umpm'))
        assert ex.joint_names[0] == 'pelv_umpm' and ex.joint_names[14] == 'lank_umpm'
        assert ex.split == 'train'
        seq = truth['seqs'][ex.sequence]
        np.testing.assert_allclose(ex.world_coords, seq['per_person'][ex.person][ex.frame],
                                   atol=0.01)
        i_cam = truth['cam_ids'].index(ex.camera_id)
        cam = truth['cams'][i_cam]
        ref = opencv_project(ex.world_coords, cv2.Rodrigues(cam.R)[0], -cam.R @ cam.t,
                             cam.intrinsic_matrix, UMPM_DIST)
        assert np.abs(ex.camera.world_to_image(ex.world_coords) - ref).max() < 1.0
        if ex.person == 0 and ex.frame == 2:
            assert_same_picture(load_image(ex.image), seq['people'][i_cam].images[ex.frame])


def test_umpm_build_cli_and_dedup(umpm, tmp_path):
    root, _, examples = umpm
    info = run_build('umpm', root, tmp_path / 'out')['datasets']['umpm']
    assert info['before_dedup'] == {'train': 44}
    assert info['num_after_dedup'] == reference_dedup_count(examples)
    assert info['skipped'] == {'person-frame without any valid joint': 4}  # 4 cameras


def test_umpm_bad_inputs(umpm, tmp_path):
    import shutil
    root, _, _ = umpm
    convert = get_converter('umpm').convert
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    ini = bad / 'Calib' / 'calib_l06_s.ini'
    ini.write_text('\n'.join(ini.read_text().splitlines()[:5]))
    with pytest.raises(common.DatasetFormatError, match=r'calib_l06_s\.ini: has 5 lines'):
        list(convert(bad))
    shutil.copy(root / 'Calib' / 'calib_l06_s.ini', ini)
    write_c3d(bad / 'p1_grab_3' / 'Groundtruth' / 'p1_grab_3_vm.c3d', np.zeros((8, 14, 3)),
              [f'V{j}' for j in range(14)])
    with pytest.raises(common.DatasetFormatError, match=r'p1_grab_3_vm\.c3d: has 14 points'):
        list(convert(bad, sequences=['p1_grab_3']))
    (bad / 'p2_chair_1' / 'p2_chair_1.json').write_text('{"id": "p2_chair_1"}')
    with pytest.raises(common.DatasetFormatError, match=r"p2_chair_1\.json: missing field 'calib'"):
        list(convert(bad, sequences=['p2_chair_1']))


# ----------------------------------------------------------------------------------------- GPA
@pytest.fixture(scope='module')
def gpa(tmp_path_factory):
    root = tmp_path_factory.mktemp('gpa')
    truth = gpa_writer.write(root)
    return root, truth, list(get_converter('gpa').convert(root))


def test_gpa_examples_projections_and_pixels(gpa):
    root, truth, examples = gpa
    assert len(examples) == 8
    assert [ex.frame for ex in examples] == list(range(8))
    for ex in examples:
        c, t = ex.frame % 2, ex.frame // 2
        assert ex.camera_id == ('7', '9')[c] and ex.split == ('train', 'test')[c]
        assert ex.joint_names == tuple(joints.union_names('gpa'))
        assert ex.joint_names[0] == 'pelv_gpa' and ex.joint_names[33] == 'ltoe_gpa'
        cam = truth['cams'][c]
        expected = cam.world_to_camera(truth['people'][c].joints[t])
        np.testing.assert_allclose(ex.world_coords, expected, atol=1e-3)
        ours = ex.camera.world_to_image(ex.world_coords)
        ref = opencv_project(ex.world_coords, np.zeros(3), np.zeros(3), cam.intrinsic_matrix, None)
        assert np.abs(ours - ref).max() < 1.0
        assert np.abs(ours - cam.world_to_image(truth['people'][c].joints[t])).max() < 1.0
        assert_same_picture(load_image(ex.image), truth['people'][c].images[t])


def test_gpa_build_cli_and_dedup(gpa, tmp_path):
    root, _, examples = gpa
    info = run_build('gpa', root, tmp_path / 'out')['datasets']['gpa']
    assert info['before_dedup'] == {'train': 4, 'test': 4}
    assert info['num_after_dedup'] == reference_dedup_count(examples)
    assert info['skipped'] == {} and info['num_skipped'] == 0


def test_gpa_bad_inputs(gpa, tmp_path):
    import shutil
    root, _, _ = gpa
    convert = get_converter('gpa').convert
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    (bad / 'Gaussian_img_jpg_new' / '0000000004.jpg').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*0000000004\.jpg'):
        list(convert(bad))
    shutil.copy(root / 'Gaussian_img_jpg_new' / '0000000004.jpg',
                bad / 'Gaussian_img_jpg_new' / '0000000004.jpg')
    ann_path = bad / 'xyz_gpa12_mdp_cntind_crop_cam_c2g.json'
    ann = json.loads(ann_path.read_text())
    ann['annotations'][3]['joint_cams'] = ann['annotations'][3]['joint_cams'][:2]
    ann_path.write_text(json.dumps(ann))
    with pytest.raises(common.DatasetFormatError,
                       match=r"c2g\.json annotations\[3\].*'joint_cams'"):
        list(convert(bad))
    (bad / 'Sequence_ids' / 'cam_ids_750k.npy').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'cam_ids_750k\.npy'):
        list(convert(bad))


# ------------------------------------------------------------------------------------ BML-MoVi
@pytest.fixture(scope='module')
def bmlmovi(tmp_path_factory):
    root = tmp_path_factory.mktemp('bmlmovi')
    truth = bmlmovi_writer.write(root)
    return root, truth, list(get_converter('bmlmovi').convert(root))


def test_bmlmovi_examples_projections_and_pixels(bmlmovi):
    root, truth, examples = bmlmovi
    assert len(examples) == 2 * 2 * 4
    for ex in examples:
        assert ex.joint_names == tuple(joints.union_names('bmlmovi'))
        assert ex.joint_names[0] == 'backneck_bmlmovi' and ex.joint_names[67] == 'head_bmlmovi'
        assert ex.split == 'train' and ex.sequence == f'F_Subject_{ex.person}'
        expected = truth['people'][ex.person][0].joints[ex.frame].astype(np.float64)
        if ex.frame == 1:
            expected[10] = np.nan
        np.testing.assert_allclose(ex.world_coords, expected, atol=1e-3, equal_nan=True)
        i_cam = int(ex.camera_id[2]) - 1
        cam = truth['cams'][i_cam]
        ok = np.isfinite(ex.world_coords).all(1)
        ref = opencv_project(ex.world_coords[ok], cv2.Rodrigues(cam.R)[0], -cam.R @ cam.t,
                             cam.intrinsic_matrix, MOVI_RADIAL + [0, 0])
        assert np.abs(ex.camera.world_to_image(ex.world_coords[ok]) - ref).max() < 1.0
        if ex.frame == 2:
            assert_same_picture(load_image(ex.image), truth['people'][ex.person][i_cam].images[2])


def test_bmlmovi_time_interpolation_hand_computed():
    from posepile.datasets.bmlmovi import mocap_at_video_frames
    markers = np.arange(10, dtype=np.float64).reshape(10, 1, 1) * np.ones((1, 1, 3))
    markers[5] = np.nan
    got = mocap_at_video_frames(markers, n_video_frames=10, video_fps=50.0)  # index 2.4 i
    assert len(got) == 4  # 0, 2.4, 4.8, 7.2 (9.6 > 9)
    np.testing.assert_allclose(got[:, 0, 0], [0.0, 2.4, np.nan, 7.2], equal_nan=True)


def test_bmlmovi_build_cli_and_dedup(bmlmovi, tmp_path):
    root, _, examples = bmlmovi
    info = run_build('bmlmovi', root, tmp_path / 'out')['datasets']['bmlmovi']
    assert info['before_dedup'] == {'train': 16}
    assert info['num_after_dedup'] == reference_dedup_count(examples)
    # The 14 mocap frames end with video frame 3: no frame lies beyond either end.
    assert info['skipped'] == {} and info['num_skipped'] == 0


def test_bmlmovi_bad_inputs(bmlmovi, tmp_path):
    import shutil
    import scipy.io
    root, _, _ = bmlmovi
    convert = get_converter('bmlmovi').convert
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    np.savez(bad / 'Calib' / 'Extrinsics_PG2.npz', rotationMatrix=np.eye(2),
             translationVector=np.zeros(3))
    with pytest.raises(common.DatasetFormatError,
                       match=r"Extrinsics_PG2\.npz: field 'rotationMatrix'"):
        list(convert(bad))
    shutil.copy(root / 'Calib' / 'Extrinsics_PG2.npz', bad / 'Calib' / 'Extrinsics_PG2.npz')
    mat = bad / 'F_Subjects_1_45' / 'F_v3d_Subject_3.mat'
    scipy.io.savemat(mat, {'Subject_3_F': {'move': {'markerLocation': np.zeros((5, 20, 3))}}})
    with pytest.raises(common.DatasetFormatError,
                       match=r'F_v3d_Subject_3\.mat.*markerLocation.*87'):
        list(convert(bad, subjects=[3]))
    (bad / 'F_PG1_Subject_3_L.avi').write_bytes(b'garbage')
    shutil.copy(root / 'F_Subjects_1_45' / 'F_v3d_Subject_3.mat', mat)
    with pytest.raises(common.DatasetFormatError, match=r'F_PG1_Subject_3_L\.avi'):
        list(convert(bad, subjects=[3]))
