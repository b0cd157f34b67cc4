"""Human3.6M converter on a tiny fixture in the real format (cdf poses, mp4 videos, cameras.h5)."""
import json
import shutil

import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import h36m as writer
from posepile.dataset_writers.h36m import (FRAME_OF_ROW, IMSHAPE, K_RADIAL, P_TANGENTIAL,
                                           fixture_cameras, write_cameras_h5, write_pose_cdf)
from posepile.datasets import common, h36m
from posepile.datasets.skip_counts import recording_skips


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('h36m')
    cams, truth = writer.write(root)
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
