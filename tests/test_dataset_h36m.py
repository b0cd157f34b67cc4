"""Human3.6M converter on a tiny fixture in the real format (cdf poses, mp4 videos, cameras.h5)."""
import json
import shutil

import h5py
import numpy as np
import pytest
from cdflib.cdfwrite import CDF

from fixture_media import write_video
from fixture_people import default_camera, make_people_sequence
from posepile import build, joints
from posepile.camera import h36m_distortion_to_opencv
from posepile.datasets import common, h36m
from posepile.datasets.skip_counts import recording_skips

IMSHAPE = (120, 160)
# Realistic-magnitude H36M lens coefficients (of the order of the released S1 camera 1).
K_RADIAL = np.array([-0.207, 0.248, -0.0031])
P_TANGENTIAL = np.array([-0.00095, -0.0013])
# Pose rows of the fixture: each rendered frame appears twice, so dedup keeps 2 of 4 per track.
FRAME_OF_ROW = [0, 0, 1, 1]


def fixture_cameras():
    cams = [default_camera(IMSHAPE, distance_mm=4500, yaw_deg=yaw) for yaw in (20, 110, 200, 290)]
    for cam in cams:
        cam.distortion_coeffs = h36m_distortion_to_opencv(K_RADIAL, P_TANGENTIAL)
    return cams


def write_cameras_h5(path, subjects, cams):
    """3d-pose-baseline layout: R stored transposed, T = optical centre, column vectors."""
    with h5py.File(path, 'w') as f:
        for s in subjects:
            for i, (cam, cam_id) in enumerate(zip(cams, h36m.CAMERA_IDS), start=1):
                g = f.create_group(f'subject{s}/camera{i}')
                g['R'] = cam.R.T
                g['T'] = cam.t.reshape(3, 1)
                K = cam.intrinsic_matrix
                g['f'] = np.array([[K[0, 0]], [K[1, 1]]])
                g['c'] = np.array([[K[0, 2]], [K[1, 2]]])
                g['k'] = K_RADIAL.reshape(3, 1)
                g['p'] = P_TANGENTIAL.reshape(2, 1)
                g['Name'] = np.array([ord(c) for c in cam_id], np.uint8)


def write_pose_cdf(path, poses):
    path.parent.mkdir(parents=True, exist_ok=True)
    cdf = CDF(str(path), delete=True)
    t, n = poses.shape[:2]
    cdf.write_var({'Variable': 'Pose', 'Data_Type': CDF.CDF_FLOAT, 'Num_Elements': 1,
                   'Rec_Vary': True, 'Dim_Sizes': [t, n]},
                  var_data=poses.reshape(1, t, n).astype(np.float32))
    cdf.close()


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('h36m')
    cams = fixture_cameras()
    truth = {}
    for seed, subject in enumerate(('S1', 'S5', 'S9')):
        seqs = make_people_sequence(cams, IMSHAPE, n_frames=2, n_joints=32, seed=seed,
                                    step_mm_per_frame=300.0)
        poses = seqs[0].joints[FRAME_OF_ROW]
        write_pose_cdf(root / subject / 'MyPoseFeatures/D3_Positions/Directions 1.cdf',
                       poses.reshape(len(FRAME_OF_ROW), -1))
        for cam_id, seq in zip(h36m.CAMERA_IDS, seqs):
            write_video(root / subject / f'Videos/Directions 1.{cam_id}.mp4',
                        seq.images[FRAME_OF_ROW])
        # A video without a pose file, like the released '_ALL' videos: must be ignored.
        write_video(root / subject / f'Videos/_ALL 1.{h36m.CAMERA_IDS[0]}.mp4', seqs[0].images)
        truth[subject] = (poses, [s.images[FRAME_OF_ROW] for s in seqs],
                          [s.masks[FRAME_OF_ROW] for s in seqs])
    write_cameras_h5(root / 'cameras.h5', (1, 5, 9), cams)
    examples = list(h36m.convert(root, validation_subjects=('S5',)))
    return root, cams, truth, examples


def test_examples_match_fixture(dataset):
    root, cams, truth, examples = dataset
    assert len(examples) == 3 * 4 * len(FRAME_OF_ROW)
    assert examples[0].joint_names == tuple(joints.union_names('h36m'))
    assert examples[0].joint_names[0] == 'pelv_h36m' and len(examples[0].joint_names) == 32
    splits = {ex.extra['subject']: ex.split for ex in examples}
    assert splits == {'S1': 'train', 'S5': 'validation', 'S9': 'test'}
    for ex in examples:
        poses, images, masks = truth[ex.extra['subject']]
        cam_index = h36m.CAMERA_IDS.index(ex.camera_id)
        np.testing.assert_allclose(ex.world_coords, poses[ex.frame], atol=1e-3)
        # The parsed camera projects like the one that rendered the fixture.
        projected = ex.camera.world_to_image(ex.world_coords.astype(np.float64))
        reference = cams[cam_index].world_to_image(poses[ex.frame].astype(np.float64))
        assert np.max(np.abs(projected - reference)) < 1.0
        # ...and the pelvis lands on the rendered body in the decoded video frame.
        frame = ex.image()
        assert frame.shape == (*IMSHAPE, 3)
        assert np.mean(np.abs(frame.astype(float) - images[cam_index][ex.frame])) < 12
        x, y = np.round(projected[0]).astype(int)
        assert masks[cam_index][ex.frame][y, x]
        assert ex.box[0] <= projected[:, 0].min() and ex.box[2] > 0
    tracks = {ex.track_key for ex in examples}
    assert ('h36m', 'S1/Directions 1', 0, '54138969') in tracks and len(tracks) == 12


def test_exclude_videos(dataset):
    root = dataset[0]
    with recording_skips() as counts:
        examples = list(h36m.convert(root, subjects=['S1'],
                                     exclude=[('S1', 'Directions 1', '55011271')]))
    # The excluded video's pose rows are counted as dropped frames.
    assert dict(counts) == {('h36m', 'video on the exclude list'): len(FRAME_OF_ROW)}
    assert sorted({ex.camera_id for ex in examples}) == ['54138969', '58860488', '60457274']
    assert len(examples) == 3 * len(FRAME_OF_ROW)


def test_tangential_mapping_vs_official_formula(dataset):
    """H36M's own projection (radial 1+k1 r²+k2 r⁴+k3 r⁶; tan = p1·y + p2·x;
    x' = x(radial+tan) + p2·r², y' = y(radial+tan) + p1·r²) at full resolution equals the parsed
    OpenCV camera (the mapping onto OpenCV's 12 coefficients is exact)."""
    root = dataset[0]
    cam = h36m.load_cameras(root / 'cameras.h5', 'S1')['54138969']
    cam.R, cam.t = np.eye(3), np.zeros(3)
    cam.intrinsic_matrix = np.array([[1145.0, 0, 512.5], [0, 1143.8, 515.5], [0, 0, 1]])
    grid = np.stack(np.meshgrid(np.linspace(-0.42, 0.42, 15), np.linspace(-0.42, 0.42, 15)), -1)
    xy = grid.reshape(-1, 2)
    points = np.concatenate([xy * 4000, np.full((len(xy), 1), 4000.0)], axis=1)
    r2 = np.sum(xy ** 2, axis=1)
    radial = 1 + K_RADIAL[0] * r2 + K_RADIAL[1] * r2 ** 2 + K_RADIAL[2] * r2 ** 3
    tan = P_TANGENTIAL[0] * xy[:, 1] + P_TANGENTIAL[1] * xy[:, 0]
    distorted = xy * (radial + tan)[:, None] + np.outer(r2, P_TANGENTIAL[::-1])
    official = distorted * [1145.0, 1143.8] + [512.5, 515.5]
    error = np.linalg.norm(cam.world_to_image(points) - official, axis=1)
    assert error.max() < 1e-6


def test_build_cli_dedups(dataset, tmp_path):
    root = dataset[0]
    out = tmp_path / 'out'
    assert build.main(['--dataset=h36m', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=2']) == 0
    manifest = json.loads((out / 'manifest.json').read_text())
    info = manifest['datasets']['h36m']
    # Rows repeat each pose twice: the duplicate of each is dropped (300 mm steps otherwise).
    assert info['num_before_dedup'] == 48 and info['num_after_dedup'] == 24
    assert info['after_dedup'] == {'train': 16, 'test': 8}  # the CLI holds out no validation
    assert info['skipped'] == {} and info['num_skipped'] == 0  # no S11 'Directions' video


def test_bad_inputs(dataset, tmp_path):
    root = dataset[0]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad, ignore=shutil.ignore_patterns('S5', 'S9'))
    (bad / 'cameras.h5').unlink()
    with pytest.raises(common.DatasetFormatError, match='cameras.h5'):
        next(h36m.convert(bad))

    write_cameras_h5(bad / 'cameras.h5', (5,), fixture_cameras())
    with pytest.raises(common.DatasetFormatError, match="cameras.h5: missing group 'subject1'"):
        next(h36m.convert(bad))
    write_cameras_h5(bad / 'cameras.h5', (1,), fixture_cameras())

    cdf_path = bad / 'S1/MyPoseFeatures/D3_Positions/Directions 1.cdf'
    write_pose_cdf(cdf_path, np.zeros((4, 90), np.float32))
    with pytest.raises(common.DatasetFormatError, match=r"Directions 1.cdf: field 'Pose' has "
                                                        r"shape \(1, 4, 90\), expected"):
        next(h36m.convert(bad))
    cdf_path.write_bytes(b'not a cdf file')
    with pytest.raises(common.DatasetFormatError, match="Directions 1.cdf: cannot read"):
        next(h36m.convert(bad))
    write_pose_cdf(cdf_path, np.zeros((4, 96), np.float32))

    video = bad / f'S1/Videos/Directions 1.{h36m.CAMERA_IDS[0]}.mp4'
    video.write_bytes(b'\x00' * 1000)
    with pytest.raises(common.DatasetFormatError, match=r'Directions 1\.54138969\.mp4'):
        next(h36m.convert(bad))
    video.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*54138969\.mp4'):
        next(h36m.convert(bad))
