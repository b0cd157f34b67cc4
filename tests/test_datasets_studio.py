"""Converters of the studio datasets (issue 7, part A) on tiny fixtures written in each real format.

Every fixture holds rendered synthetic people (posepile/dataset_writers/people.py), so the checks are
against real pixels: projections through the parsed camera agree with OpenCV's projection of the
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

from posepile.dataset_writers.media import write_c3d
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import build, joints
from posepile.safe_unpickle import UnsafePickleError
from posepile.datasets import common, get_converter
from posepile.datasets.skip_counts import recording_skips

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


def write_video(path: pathlib.Path, frames_rgb: np.ndarray, fourcc: str = 'mp4v', fps=30):
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for frame in frames_rgb:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def write_jpeg(path: pathlib.Path, image_rgb: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])


def assert_same_picture(decoded: np.ndarray, original: np.ndarray):
    """Lossy codecs change pixels a little; another frame or a flipped image changes them a lot."""
    assert decoded.shape == original.shape
    assert np.mean(np.abs(decoded.astype(np.float32) - original)) < 8


def run_build(name, root, out) -> dict:
    assert build.main([f'--dataset={name}', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1']) == 0
    return json.loads((pathlib.Path(out) / build.MANIFEST_NAME).read_text())


def fixture_cameras(n, distortion=None):
    cams = [default_camera(IMSHAPE, yaw_deg=35.0 * i - 20, distance_mm=4000.0 + 300 * i)
            for i in range(n)]
    if distortion is not None:
        for cam in cams:
            cam.distortion_coeffs = np.asarray(distortion, np.float64)
    return cams


# ----------------------------------------------------------------------------------- Panoptic
PANOPTIC_SEQS = {'171204_pose1': 'jpg', '160906_ian5': 'video'}
PANOPTIC_DIST = [-0.05, 0.01, 0.001, -0.0005, 0.0]


def write_panoptic(root: pathlib.Path):
    """Two sequences x 2 HD cameras (+ one VGA camera that must be ignored) x 4 frames."""
    truth = {}
    for s, (seq, storage) in enumerate(PANOPTIC_SEQS.items()):
        seq_dir = root / seq
        cams = fixture_cameras(2, PANOPTIC_DIST)
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=19, seed=s,
                                      step_mm_per_frame=60.0)
        names = [f'00_{i:02d}' for i in range(len(cams))]
        records = [{'name': n, 'type': 'hd', 'resolution': [IMSHAPE[1], IMSHAPE[0]],
                    'panel': 0, 'node': i, 'K': cam.intrinsic_matrix.tolist(),
                    'distCoef': list(PANOPTIC_DIST), 'R': cam.R.tolist(),
                    't': (-(cam.R @ cam.t) / 10.0).reshape(3, 1).tolist()}
                   for i, (n, cam) in enumerate(zip(names, cams))]
        records.append({'name': '01_01', 'type': 'vga', 'resolution': [640, 480], 'panel': 1,
                        'node': 1, 'K': np.eye(3).tolist(), 'distCoef': [0] * 5,
                        'R': np.eye(3).tolist(), 't': [[0], [0], [0]]})
        seq_dir.mkdir(parents=True)
        (seq_dir / f'calibration_{seq}.json').write_text(json.dumps({'cameras': records}))
        joints_mm = people[0].joints
        conf = np.full((4, 19), 0.7)
        conf[1, 16] = 0.05  # lEar below the threshold in frame 1
        for t in range(4):
            body = np.concatenate([joints_mm[t] / 10.0, conf[t, :, None]], axis=1)
            bodies = [{'id': 3, 'joints19': body.reshape(-1).tolist()},
                      {'id': 7, 'joints19': np.concatenate(  # unreconstructed: all conf -1
                          [joints_mm[t] / 10.0, -np.ones((19, 1))], 1).reshape(-1).tolist()}]
            pose_path = seq_dir / 'hdPose3d_stage1_coco19' / f'body3DScene_{t:08d}.json'
            pose_path.parent.mkdir(exist_ok=True)
            pose_path.write_text(json.dumps({'version': 0.7, 'univTime': 1000.0 + t,
                                             'fpsType': 'hd_29_97', 'bodies': bodies}))
        if storage == 'video':  # a pose file that outlasts the 4-frame videos: skipped
            pose_path.with_name('body3DScene_00000004.json').write_text(pose_path.read_text())
        for n, seq_people in zip(names, people):
            if storage == 'jpg':
                for t in range(4):
                    write_jpeg(seq_dir / 'hdImgs' / n / f'{n}_{t:08d}.jpg', seq_people.images[t])
            else:
                write_video(seq_dir / 'hdVideos' / f'hd_{n}.mp4', seq_people.images)
        truth[seq] = dict(cams=cams, records=records, people=people, conf=conf, names=names)
    return truth


@pytest.fixture(scope='module')
def panoptic(tmp_path_factory):
    root = tmp_path_factory.mktemp('panoptic')
    truth = write_panoptic(root)
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
AIST_SEQS = {'gBR_sBM_cAll_d04_mBR0_ch01': 'train', 'gBR_sBM_cAll_d06_mBR0_ch01': 'test',
             'gPO_sFM_cAll_d05_mPO1_ch02': 'validation'}
AIST_IGNORED = 'gJB_sBM_cAll_d07_mJB1_ch03'
AIST_DIST = [0.03, -0.01, 0.0005, 0.0002, 0.0]


def write_aist(root: pathlib.Path):
    """3 split sequences (+1 ignored) x 2 cameras x 4 frames, one camera setting."""
    cams = fixture_cameras(2, AIST_DIST)
    records = []
    for i, cam in enumerate(cams):
        rvec = cv2.Rodrigues(cam.R)[0][:, 0]
        records.append({'name': f'c0{i + 1}', 'size': [IMSHAPE[1], IMSHAPE[0]],
                        'matrix': cam.intrinsic_matrix.tolist(), 'distortions': AIST_DIST,
                        'rotation': rvec.tolist(), 'translation': (-(cam.R @ cam.t) / 10).tolist()})
    (root / 'cameras').mkdir(parents=True)
    (root / 'cameras' / 'setting1.json').write_text(json.dumps(records))
    all_seqs = [*AIST_SEQS, AIST_IGNORED]
    (root / 'cameras' / 'mapping.txt').write_text(''.join(f'{s} setting1\n' for s in all_seqs))
    (root / 'splits').mkdir()
    for split, fname in [('train', 'pose_train.txt'), ('validation', 'pose_val.txt'),
                         ('test', 'pose_test.txt')]:
        listed = [s for s, sp in AIST_SEQS.items() if sp == split]
        if split == 'train':
            listed.append(AIST_IGNORED)
        (root / 'splits' / fname).write_text('\n'.join(listed))
    (root / 'ignore_list.txt').write_text(AIST_IGNORED + '\n')
    (root / 'keypoints3d').mkdir()
    truth = {}
    for k, seq in enumerate(all_seqs):
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=17, seed=10 + k,
                                      step_mm_per_frame=60.0)
        kp = people[0].joints.astype(np.float64) / 10.0
        kp_raw = kp + 0.5  # the un-optimised triangulation differs by 5 mm
        if k == 0:
            kp[2] = np.nan  # a frame without keypoints
        if k == 2:  # keypoints outlast the 4-frame videos by one frame
            kp, kp_raw = np.concatenate([kp, kp[-1:]]), np.concatenate([kp_raw, kp_raw[-1:]])
        with open(root / 'keypoints3d' / f'{seq}.pkl', 'wb') as f:
            pickle.dump({'keypoints3d': kp_raw, 'keypoints3d_optim': kp}, f, protocol=4)
        for i, p in enumerate(people):
            write_video(root / 'videos' / f'{seq.replace("cAll", f"c0{i + 1}")}.mp4', p.images,
                        fourcc='mp4v', fps=60)
        truth[seq] = people
    return dict(cams=cams, records=records, people=truth)


@pytest.fixture(scope='module')
def aist(tmp_path_factory):
    root = tmp_path_factory.mktemp('aist')
    truth = write_aist(root)
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
ASPSET_CLIPS = [('04ac', '0026', 'train'), ('04ac', '0027', 'val'), ('0b1d', '0003', 'test')]


def write_aspset(root: pathlib.Path):
    truth = {}
    cams = fixture_cameras(3)
    cam_ids = ('left', 'mid', 'right')
    for subject in ('04ac', '0b1d'):
        part = 'test' if subject == '0b1d' else 'trainval'
        for cam_id, cam in zip(cam_ids, cams):
            extrinsic = np.eye(4)
            extrinsic[:3, :3], extrinsic[:3, 3] = cam.R, -cam.R @ cam.t
            intrinsic = np.concatenate([cam.intrinsic_matrix, np.zeros((3, 1))], axis=1)
            path = root / part / 'cameras' / subject / f'{subject}-{cam_id}.json'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({'intrinsic_matrix': intrinsic.reshape(-1).tolist(),
                                        'extrinsic_matrix': extrinsic.reshape(-1).tolist()}))
    for k, (subject, clip, split) in enumerate(ASPSET_CLIPS):
        part = 'test' if split == 'test' else 'trainval'
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=17, seed=20 + k,
                                      step_mm_per_frame=40.0)
        invalid = np.zeros((4, 17), bool)
        invalid[1, 12] = True
        write_c3d(root / part / 'joints_3d' / subject / f'{subject}-{clip}.c3d', people[0].joints,
                  [f'J{j}' for j in range(17)], units='m', invalid=invalid)
        for cam_id, p in zip(cam_ids, people):
            write_video(root / part / 'videos' / subject / f'{subject}-{clip}-{cam_id}.mkv',
                        p.images, fourcc='MJPG', fps=50)
        truth[f'{subject}-{clip}'] = people
    (root / 'splits.csv').write_text(''.join(f'{s},{c},{sp}\n' for s, c, sp in ASPSET_CLIPS))
    return dict(cams=cams, people=truth, cam_ids=cam_ids)


@pytest.fixture(scope='module')
def aspset(tmp_path_factory):
    root = tmp_path_factory.mktemp('aspset')
    truth = write_aspset(root)
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
TOTCAP_HEADER = ['Hips', 'Spine', 'Spine1', 'Spine2', 'Spine3', 'Neck', 'Head', 'RightShoulder',
                 'RightArm', 'RightForeArm', 'RightHand', 'LeftShoulder', 'LeftArm',
                 'LeftForeArm', 'LeftHand', 'RightUpLeg', 'RightLeg', 'RightFoot', 'LeftUpLeg',
                 'LeftLeg', 'LeftFoot']
# (subject, action, layout): S1 uses the vicon/ + video/ sub-directories, S4 the flat form.
TOTCAP_SEQS = [(1, 'walking1', 'sub'), (1, 'walking2', 'sub'), (4, 'walking1', 'flat'),
               (4, 'acting3', 'flat')]
TOTCAP_K1 = -0.02


def write_totcap(root: pathlib.Path):
    cams = fixture_cameras(3, [TOTCAP_K1, 0, 0, 0, 0])
    lines = [f'{len(cams)} 1']
    for cam in cams:
        K = cam.intrinsic_matrix
        lines += [f'0 {IMSHAPE[0] - 1} 0 {IMSHAPE[1] - 1}',
                  f'{K[0, 0]} {K[1, 1]} {K[0, 2]} {K[1, 2]}', f'{TOTCAP_K1}',
                  *(' '.join(f'{v:.12f}' for v in row) for row in cam.R),
                  ' '.join(f'{v:.12f}' for v in -(cam.R @ cam.t) / 1000.0)]
    root.mkdir(parents=True, exist_ok=True)
    (root / 'calibration.cal').write_text('\n'.join(lines) + '\n')
    truth = {}
    for k, (subject, action, layout) in enumerate(TOTCAP_SEQS):
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=21, seed=30 + k,
                                      step_mm_per_frame=50.0)
        s_dir = root / f'S{subject}'
        pos_dir = s_dir / 'vicon' / action if layout == 'sub' else s_dir / action
        vid_dir = s_dir / 'video' / action if layout == 'sub' else s_dir / action
        pos_dir.mkdir(parents=True, exist_ok=True)
        inches = people[0].joints.astype(np.float64) / 25.4
        rows = ['\t'.join(' '.join(f'{v:.6f}' for v in j) for j in frame) for frame in inches]
        (pos_dir / 'gt_skel_gbl_pos.txt').write_text(
            '\t'.join(TOTCAP_HEADER) + '\t\n' + '\n'.join(rows) + '\n')
        for c, p in enumerate(people):
            write_video(vid_dir / f'TC_S{subject}_{action}_cam{c + 1}.mp4', p.images, fps=60)
        truth[f'S{subject}/{action}'] = people
    return dict(cams=cams, people=truth)


@pytest.fixture(scope='module')
def totcap(tmp_path_factory):
    root = tmp_path_factory.mktemp('totcap')
    truth = write_totcap(root)
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
UMPM_SEQS = {'p2_chair_1': 2, 'p1_grab_3': 1}  # sequence -> number of people
UMPM_DIST = [-0.03, 0.01, 0.0005, -0.0003]
UMPM_OFFSET = np.array([900.0, 300.0, 0.0])  # the second person (not drawn) stands here


def write_umpm(root: pathlib.Path):
    cams = fixture_cameras(4, UMPM_DIST + [0.0])
    cam_ids = ('l', 'r', 's', 'f')
    (root / 'Calib').mkdir(parents=True)
    for cam_id, cam in zip(cam_ids, cams):
        rows = [*cam.intrinsic_matrix, UMPM_DIST, cv2.Rodrigues(cam.R)[0][:, 0], -cam.R @ cam.t]
        (root / 'Calib' / f'calib_l06_{cam_id}.ini').write_text(
            '\n'.join(' '.join(f'{v:.10f}' for v in row) for row in rows) + '\n')
    truth = {}
    for k, (seq, n_people) in enumerate(UMPM_SEQS.items()):
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=15, seed=40 + k,
                                      step_mm_per_frame=40.0)
        per_person = [people[0].joints + p * UMPM_OFFSET for p in range(n_people)]
        video_rate = np.concatenate(per_person, axis=1)  # [4, 15 * n_people, 3]
        mocap = np.repeat(video_rate, 2, axis=0)
        mocap[1::2] += 5000.0  # the in-between 100 Hz frames must not be used
        invalid = np.zeros(mocap.shape[:2], bool)
        if n_people == 2:
            invalid[2 * 3, 15:] = True  # person 1 lost in video frame 3 (mocap 6): skipped
        write_c3d(root / seq / 'Groundtruth' / f'{seq}_vm.c3d', mocap,
                  [f'V{j}' for j in range(mocap.shape[1])], rate=100.0, invalid=invalid)
        (root / seq / f'{seq}.json').write_text(
            f'{{"id": "{seq}", "calib": "calib_l06", "persons": {n_people},}}\n')
        for cam_id, p in zip(cam_ids, people):
            write_video(root / seq / 'Video' / f'{seq}_{cam_id}.avi', p.images, 'MJPG', fps=50)
        truth[seq] = dict(people=people, per_person=per_person)
    return dict(cams=cams, cam_ids=cam_ids, seqs=truth)


@pytest.fixture(scope='module')
def umpm(tmp_path_factory):
    root = tmp_path_factory.mktemp('umpm')
    truth = write_umpm(root)
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
def write_gpa(root: pathlib.Path):
    """Two cameras x 4 frames; image ids interleave the cameras; JSON lists them shuffled."""
    cams = fixture_cameras(2)
    people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=34, seed=50,
                                  step_mm_per_frame=40.0)
    entries = []
    for c, (cam, p) in enumerate(zip(cams, people)):
        for t in range(4):
            image_id = f'{2 * t + c:010d}'
            sub = '' if c == 0 else f'{image_id[:6]}/{image_id[6:8]}/'  # both layouts
            write_jpeg(root / 'Gaussian_img_jpg_new' / f'{sub}{image_id}.jpg', p.images[t])
            K = cam.intrinsic_matrix
            entries.append((
                {'file_name': f'img_jpg_gaussian_750k/{image_id}.jpg', 'id': int(image_id),
                 'height': IMSHAPE[0], 'width': IMSHAPE[1]},
                {'joint_cams': cam.world_to_camera(p.joints[t]).T.tolist(),
                 'f': [K[0, 0], K[1, 1]], 'c': [K[0, 2], K[1, 2]], 'istrains': c == 0}))
    order = np.random.default_rng(0).permutation(len(entries))
    (root / 'xyz_gpa12_mdp_cntind_crop_cam_c2g.json').write_text(json.dumps({
        'images': [entries[i][0] for i in order], 'annotations': [entries[i][1] for i in order]}))
    (root / 'Sequence_ids').mkdir()
    np.save(root / 'Sequence_ids' / 'cam_ids_750k.npy', np.array([7, 9] * 4, np.int32))
    return dict(cams=cams, people=people)


@pytest.fixture(scope='module')
def gpa(tmp_path_factory):
    root = tmp_path_factory.mktemp('gpa')
    truth = write_gpa(root)
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
MOVI_RADIAL = [-0.04, 0.02]


def write_bmlmovi(root: pathlib.Path):
    """Subjects 3 (F_Subjects_1_45, videos in root) and 50 (F_Subjects_46_90, videos in Videos/)."""
    import scipy.io
    cams = fixture_cameras(2, MOVI_RADIAL + [0, 0, 0])
    (root / 'Calib').mkdir(parents=True)
    for name, cam in zip(('PG1', 'PG2'), cams):
        np.savez(root / 'Calib' / f'Extrinsics_{name}.npz', rotationMatrix=cam.R.T,
                 translationVector=(-cam.R @ cam.t).reshape(1, 3))
        np.savez(root / 'Calib' / f'cameraParams_{name}.npz',
                 IntrinsicMatrix=cam.intrinsic_matrix.T, RadialDistortion=np.array(MOVI_RADIAL))
    truth = {}
    for k, subject in enumerate((3, 50)):
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=87, seed=60 + k,
                                      step_mm_per_frame=40.0)
        mocap = np.full((14, 87, 3), 9999.0)  # 120 Hz; only every 4th frame meets a 30 fps frame
        mocap[0:13:4] = people[0].joints
        mocap[4, 10] = 0.0  # a missing marker at video frame 1
        sub = 'F_Subjects_1_45' if subject <= 45 else 'F_Subjects_46_90'
        (root / sub).mkdir(exist_ok=True)
        scipy.io.savemat(root / sub / f'F_v3d_Subject_{subject}.mat', {
            f'Subject_{subject}_F': {
                'move': {'markerLocation': mocap, 'virtualMarkerLocation': mocap[:, 67:],
                         'flags30': np.array([[1, 4]]), 'flags120': np.array([[1, 14]]),
                         'motions_list': np.array(['walking'], dtype=object)},
                'subject': {'id': f'Subject_{subject}'}}})
        video_dir = root if subject <= 45 else root / 'Videos'
        for name, p in zip(('PG1', 'PG2'), people):
            write_video(video_dir / f'F_{name}_Subject_{subject}_L.avi', p.images, 'MJPG', fps=30)
        truth[subject] = people
    return dict(cams=cams, people=truth)


@pytest.fixture(scope='module')
def bmlmovi(tmp_path_factory):
    root = tmp_path_factory.mktemp('bmlmovi')
    truth = write_bmlmovi(root)
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
