"""Berkeley MHAD converter on a tiny fixture in the release's formats.

c3d markers, OpenCV-YAML camera configs + RwTw files per cluster, correspondence tables and
Bayer-GB .pgm frames of rendered people (160x120 instead of 640x480; intrinsics scaled to it).
"""
import json
import shutil

import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import bmhad as writer
from posepile.dataset_writers.bmhad import CORR, DIST, IMSHAPE, RECORDINGS
from posepile.datasets import bmhad, common
from posepile.dataset_writers.media import write_c3d


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('bmhad')
    cams, truth = writer.write(root)
    examples = list(bmhad.convert(root, validation_subjects=[2]))
    return root, cams, truth, examples


def test_examples_match_fixture(dataset):
    root, cams, truth, examples = dataset
    assert len(examples) == len(RECORDINGS) * len(cams) * len(CORR)
    assert examples[0].joint_names == tuple(joints.union_names('bmhad'))
    assert {ex.extra['subject']: ex.split for ex in examples} == {1: 'train', 2: 'validation'}
    for ex in examples:
        tag = f's{ex.extra["subject"]:02d}_a01_r01'
        world_fixture, images, masks = truth[tag]
        c = int(ex.camera_id[1:3]) - 1
        assert ex.camera_id == f'l{c + 1:02d}c01'
        assert ex.extra['mocap_frame'] == CORR[ex.frame]
        # World = c3d turned by (x, y, z) -> (-x, z, y), millimetres.
        expected = world_fixture[ex.frame] * [-1, 1, 1]
        expected = expected[:, [0, 2, 1]]
        np.testing.assert_allclose(ex.world_coords, expected, atol=1e-2)
        # The composed calibration projects like the camera that rendered the frame...
        projected = ex.camera.world_to_image(ex.world_coords.astype(np.float64))
        reference = cams[c].world_to_image(world_fixture[ex.frame].astype(np.float64))
        assert np.max(np.abs(projected - reference)) < 0.01
        # ...the demosaiced frame is the rendered one, and the pelvis lands on the body.
        frame = ex.image()
        assert frame.shape == (*IMSHAPE, 3) and frame.dtype == np.uint8
        assert np.mean(np.abs(frame.astype(float) - images[c][ex.frame])) < 15
        x, y = np.round(projected[0]).astype(int)
        assert masks[c][ex.frame][y, x]
    tracks = {ex.track_key for ex in examples}
    assert ('bmhad', 's01/a01/r01', 0, 'l03c01') in tracks and len(tracks) == 8


def test_build_cli_dedups(dataset, tmp_path):
    root = dataset[0]
    out = tmp_path / 'out'
    assert build.main(['--dataset=bmhad', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['bmhad']
    assert info['num_before_dedup'] == 32 and info['num_after_dedup'] == 16
    assert info['after_dedup'] == {'train': 16}
    # s04 a08 r05 has mocap but no correspondences: one recording of each of the 4 cameras.
    assert info['skipped'] == {'recording missing from the release (camera recordings)': 4}


def test_bad_inputs(dataset, tmp_path):
    root = tmp_path / 'bad'
    shutil.copytree(dataset[0], root)

    with pytest.raises(common.DatasetFormatError, match='missing directory .*OpticalData'):
        next(bmhad.convert(tmp_path / 'nothing'))

    rwtw = root / 'Calibration/RwTw_l02.txt'
    good = rwtw.read_text()
    rwtw.write_text('Rw=1 0 0 0 1 0 0 0\nTw=0 0 0\n')
    with pytest.raises(common.DatasetFormatError, match=r"RwTw_l02\.txt: expected two lines"):
        next(bmhad.convert(root))
    rwtw.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*RwTw_l02\.txt'):
        next(bmhad.convert(root))
    rwtw.write_text(good)

    import cv2
    yml = root / 'Calibration/camcfg_l03.yml'
    good_yml = yml.read_bytes()
    fs = cv2.FileStorage(str(yml), cv2.FILE_STORAGE_WRITE)
    fs.write('Number of cameras', 1)
    fs.startWriteStruct('Camera_1', cv2.FileNode_MAP)
    fs.write('K', np.eye(3))
    fs.write('Dist', DIST.reshape(1, 4))
    fs.endWriteStruct()
    fs.release()
    with pytest.raises(common.DatasetFormatError,
                       match=r"camcfg_l03\.yml \[Camera_1\]: missing field 'PosRel'"):
        next(bmhad.convert(root))
    yml.write_text('%YAML:1.0\nNumber of cameras: [1\n')
    with pytest.raises(common.DatasetFormatError, match=r'camcfg_l03\.yml: not a readable'):
        next(bmhad.convert(root))
    yml.write_bytes(good_yml)

    corr = root / 'Camera/Correspondences/corr_moc_img_s01_a01_r01.txt'
    good_corr = corr.read_text()
    corr.write_text('0 1\n1 3\n')
    with pytest.raises(common.DatasetFormatError,
                       match=r'corr_moc_img_s01_a01_r01\.txt: has shape \(2, 2\)'):
        next(bmhad.convert(root))
    corr.write_text('0 0 1\n1 0 99\n')
    with pytest.raises(common.DatasetFormatError, match=r'span 1\.\.99, but moc_s01_a01_r01'):
        next(bmhad.convert(root))
    corr.write_text(good_corr)

    c3d = root / 'Mocap/OpticalData/moc_s01_a01_r01.c3d'
    good_c3d = c3d.read_bytes()
    write_c3d(c3d, np.zeros((8, 42, 3)), [f'M{i}' for i in range(42)])
    with pytest.raises(common.DatasetFormatError, match=r'has 42 points per frame, expected 43'):
        next(bmhad.convert(root))
    c3d.write_bytes(good_c3d)

    frame = root / 'Camera/Cluster01/Cam01/S01/A01/R01/img_l01_c01_s01_a01_r01_00000.pgm'
    frame.write_bytes(b'P5 garbage')
    with pytest.raises(common.DatasetFormatError, match=r'_00000\.pgm: not a single-channel'):
        next(bmhad.convert(root)).image()
    shutil.rmtree(root / 'Camera/Cluster04/Cam01/S01')
    with pytest.raises(common.DatasetFormatError, match=r'missing directory .*Cluster04/Cam01'):
        list(bmhad.convert(root))
