"""RICH converter on a tiny fixture in the real format (OpenCV XML calibrations, per-frame SMPL-X
fit pickles of [1, n] arrays with 12-component hand PCA, BMP/PNG frames in cam_XX folders) plus a
tiny SMPL-X model in the official npz layout.

Real RICH frames are 4112x3008; the fixture's are 160x120 with intrinsics to match. The fixture
model has one vertex per joint and a one-hot joint regressor; frame t's betas select the shape
direction holding that frame's joints before the fit's global rotation and translation.
"""
import json
import pickle
import shutil

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile import body_models, build, joints
from posepile.dataset_writers import rich as writer
from posepile.dataset_writers.rich import CAMS, FRAMES, SEQUENCES
from posepile.datasets import common, rich
from posepile.safe_unpickle import UnsafePickleError


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('rich')
    model_dir = tmp_path_factory.mktemp('body_models')
    model_dir, cams, truth = writer.write(root, model_dir)
    return root, model_dir, cams, truth, list(rich.convert(root, body_model_dir=model_dir))


def test_examples(dataset):
    root, model_dir, cams, truth, examples = dataset
    assert len(examples) == len(SEQUENCES) * len(FRAMES) * len(CAMS)
    assert examples[0].joint_names == tuple(joints.union_names('smplx'))
    assert examples[0].joint_names[:2] == ('pelv_smplx', 'lhip_smplx')
    assert [(ex.sequence, ex.camera_id, ex.frame, ex.split) for ex in examples[:4]] == [
        ('train/Gym_013_pushup1', 'cam_00', 0, 'train'),
        ('train/Gym_013_pushup1', 'cam_00', 5, 'train'),
        ('train/Gym_013_pushup1', 'cam_00', 10, 'train'),
        ('train/Gym_013_pushup1', 'cam_01', 0, 'train')]
    assert {ex.split for ex in examples if 'ParkingLot1' in ex.sequence} == {'validation'}
    for ex in examples:
        seq = truth[ex.sequence]
        t = FRAMES.index(ex.frame)
        assert ex.person == seq['subject']
        # The body, face and first finger joints follow from orientation + translation alone.
        first = [*range(25), *range(25, 55, 3)]
        np.testing.assert_allclose(ex.world_coords[first], seq['world_mm'][t][first], atol=1e-2)
        # The second left-index joint turns with the hand pose (PCA -> axis-angle, + mean).
        components, mean = seq['arrays']['hands_componentsl'], seq['arrays']['hands_meanl']
        hand = seq['hand'][t] @ components[:12] + mean
        rot_root = Rotation.from_rotvec(seq['orient'][t]).as_matrix()
        rot_finger = Rotation.from_rotvec(hand[:3]).as_matrix()
        x = seq['world_mm'][t]
        expected = x[25] + rot_root @ rot_finger @ rot_root.T @ (x[26] - x[25])
        np.testing.assert_allclose(ex.world_coords[26], expected, atol=1e-2)
        k = int(ex.camera_id[4:])
        projected = ex.camera.world_to_image(ex.world_coords[:22])
        assert np.max(np.abs(projected - cams[k].world_to_image(seq['body'][t]))) < 1e-2
        px, py = np.round(projected[0]).astype(int)
        assert seq['masks'][k][t][py, px]


def test_build_cli(dataset, tmp_path, monkeypatch):
    root, model_dir = dataset[:2]
    monkeypatch.setenv(body_models.ENV_VAR, str(model_dir))
    out = tmp_path / 'out'
    assert build.main(['--dataset=rich', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['rich']
    assert info['before_dedup'] == {'train': 6, 'validation': 6}
    assert info['num_after_dedup'] == 6 + 2  # the frozen sequence keeps 1 frame per camera
    # The moving cam 2 has an image of each of the 6 person-frames (2 sequences x 3 fits).
    assert info['skipped'] == {'camera without a calibration file (moving camera)': 6}


def test_bad_inputs(dataset, tmp_path):
    root, model_dir = dataset[:2]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    fit = bad / 'val_body/ParkingLot1_002_stretching2/00005/002.pkl'
    data = pickle.loads(fit.read_bytes())
    fit.write_bytes(pickle.dumps({**data, 'body_pose': np.zeros((1, 60))}))
    with pytest.raises(common.DatasetFormatError,
                       match=r"002\.pkl: field 'body_pose' has shape \(60,\), expected \[63\]"):
        list(rich.convert(bad, model_dir, splits=['val']))
    fit.write_bytes(pickle.dumps({k: v for k, v in data.items() if k != 'transl'}))
    with pytest.raises(common.DatasetFormatError, match=r"002\.pkl: missing field 'transl'"):
        list(rich.convert(bad, model_dir, splits=['val']))
    fit.write_bytes(pickle.dumps(shutil.rmtree))
    with pytest.raises(UnsafePickleError, match='002.pkl'):
        list(rich.convert(bad, model_dir, splits=['val']))
    fit.write_bytes(pickle.dumps(data))
    xml = bad / 'scan_calibration/ParkingLot1/calibration/001.xml'
    xml.write_text(xml.read_text().replace('Intrinsics', 'Intrinsix'))
    with pytest.raises(common.DatasetFormatError, match=r"001\.xml: missing field 'Intrinsics'"):
        list(rich.convert(bad, model_dir, splits=['val']))
    xml.write_text('<opencv_storage><CameraMatrix>')
    with pytest.raises(common.DatasetFormatError, match=r'001\.xml: not valid XML'):
        list(rich.convert(bad, model_dir, splits=['val']))
    xml.unlink()
    (bad / 'val/ParkingLot1_002_stretching2/cam_00/00010_00.png').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'cam_00: missing image 00010_00'):
        list(rich.convert(bad, model_dir, splits=['val']))
    first = bad / 'train_body/Gym_013_pushup1/00000'
    (first / '013.pkl').rename(first / '099.pkl')
    with pytest.raises(common.DatasetFormatError, match='gender of subject 99 unknown'):
        list(rich.convert(bad, model_dir, splits=['train']))
    shutil.rmtree(bad / 'train_body')
    with pytest.raises(common.DatasetFormatError, match=r'missing directory .*train_body'):
        list(rich.convert(bad, model_dir, splits=['train']))
