"""BEHAVE converter on a tiny fixture in the real format (info.json, calibs/, per-frame SMPL+H fit
pickles, k<k>.color.jpg, person masks) plus a tiny SMPL+H model in the official npz layout.

Real Kinect colour images are 2048x1536; the fixture's are 160x120 with intrinsics to match.
The fixture model has one vertex per joint and a one-hot joint regressor; each frame's betas
select a shape direction that holds that frame's (un-rotated, un-translated) joints, so the
forward pass must apply the fit's global orientation and translation to reproduce the rendered
person.
"""
import json
import pickle
import shutil

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile import body_models, build, joints
from posepile.dataset_writers import behave as writer
from posepile.dataset_writers.behave import KINECTS, N_FRAMES, SEQUENCES
from posepile.datasets import behave, common
from posepile.safe_unpickle import UnsafePickleError


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('behave')
    model_dir = tmp_path_factory.mktemp('body_models')
    model_dir, truth, cams = writer.write(root, model_dir)
    return root, model_dir, truth, cams, list(behave.convert(root, body_model_dir=model_dir))


def test_examples(dataset):
    root, model_dir, truth, cams, examples = dataset
    assert len(examples) == len(SEQUENCES) * N_FRAMES * len(KINECTS)
    assert examples[0].joint_names == tuple(joints.union_names('smpl'))
    assert [(ex.sequence, ex.frame, ex.camera_id) for ex in examples[:4]] == [
        ('Date01_Sub01_backpack_back', 0, 'k0'), ('Date01_Sub01_backpack_back', 0, 'k1'),
        ('Date01_Sub01_backpack_back', 1, 'k0'), ('Date01_Sub01_backpack_back', 1, 'k1')]
    for ex in examples:
        world_mm, fixture_joints, masks, split = truth[ex.sequence]
        assert ex.split == split
        np.testing.assert_allclose(ex.world_coords[:22], world_mm[ex.frame], atol=1e-2)
        assert np.isnan(ex.world_coords[22:]).all()  # SMPL's hand joints: not in SMPL+H
        k = int(ex.camera_id[1:])
        projected = ex.camera.world_to_image(ex.world_coords[:22])
        expected = cams[k].world_to_image(fixture_joints[ex.frame])
        assert np.max(np.abs(projected - expected)) < 1e-3
        x, y = np.round(projected[0]).astype(int)
        assert masks[k][ex.frame][y, x]
        from pycocotools import mask as mask_lib
        decoded = mask_lib.decode({'size': ex.mask['size'], 'counts': ex.mask['counts']})
        assert np.mean(decoded.astype(bool) != masks[k][ex.frame]) < 0.01
        np.testing.assert_allclose(ex.camera.world_up, [0, -1, 0])


def test_distortion_order_matches_opencv(tmp_path):
    coeffs = {'k1': 0.1, 'k2': -0.05, 'p1': 0.002, 'p2': -0.001, 'k3': 0.01, 'k4': 0.05,
              'k5': -0.02, 'k6': 0.004}
    intr = tmp_path / 'calibration.json'
    intr.write_text(json.dumps({'color': {'fx': 900.0, 'fy': 910.0, 'cx': 1020.0, 'cy': 770.0,
                                          **coeffs}}))
    config = tmp_path / 'config.json'
    rot = Rotation.from_rotvec([0.1, -0.3, 0.2]).as_matrix()  # camera -> world
    config.write_text(json.dumps({'rotation': rot.ravel().tolist(),
                                  'translation': [0.5, -0.2, 1.0]}))
    camera = behave.load_camera(intr, config)
    points = np.array([[300.0, 200.0, 2500.0], [-400.0, 100.0, 3000.0]])  # world mm
    ours = camera.world_to_image(points)
    rvec = cv2.Rodrigues(rot.T)[0]
    tvec = -rot.T @ np.array([500.0, -200.0, 1000.0])
    reference = cv2.projectPoints(points, rvec, tvec, camera.intrinsic_matrix,
                                  np.array(list(coeffs.values())))[0][:, 0]
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_build_cli(dataset, tmp_path, monkeypatch):
    root, model_dir = dataset[:2]
    monkeypatch.delenv(body_models.ENV_VAR, raising=False)  # the flag alone must suffice
    out = tmp_path / 'out'
    assert build.main(['--dataset=behave', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1', f'--body-model-dir={model_dir}']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['behave']
    assert info['before_dedup'] == {'train': 6, 'test': 6}
    # The walking sequence keeps all 3 frames per Kinect; the frozen one keeps 1 per Kinect.
    assert info['num_after_dedup'] == 6 + 2
    assert info['skipped'] == {} and info['num_skipped'] == 0  # the body is always in view


def test_bad_inputs(dataset, tmp_path, monkeypatch):
    root, model_dir = dataset[:2]
    monkeypatch.delenv(body_models.ENV_VAR, raising=False)
    with pytest.raises(ValueError, match='BEHAVE .* needs the licensed body models'):
        next(behave.convert(root))
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    seq = bad / 'sequences' / 'Date03_Sub03_chairwood_sit'
    fit = seq / 't0003.000' / 'person' / 'fit02' / 'person_fit.pkl'
    fit.write_bytes(pickle.dumps({'pose': np.zeros(72), 'betas': np.zeros(10),
                                  'trans': np.zeros(3)}))
    with pytest.raises(common.DatasetFormatError,
                       match=r"person_fit\.pkl: field 'pose' has shape \(72,\), expected \[156\]"):
        list(behave.convert(bad, model_dir, splits=['test']))
    fit.write_bytes(pickle.dumps(shutil.rmtree))
    with pytest.raises(UnsafePickleError, match='person_fit.pkl'):
        list(behave.convert(bad, model_dir, splits=['test']))
    fit.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*t0003\.000/person/fit02'):
        list(behave.convert(bad, model_dir, splits=['test']))
    (bad / 'calibs/intrinsics/1/calibration.json').unlink()
    with pytest.raises(common.DatasetFormatError,
                       match=r'missing file .*calibs/intrinsics/1/calibration\.json'):
        list(behave.convert(bad, model_dir, splits=['test']))
    info = json.loads((seq / 'info.json').read_text())
    (seq / 'info.json').write_text(json.dumps({**info, 'intrinsic': '../../../../etc'}))
    with pytest.raises(common.DatasetFormatError, match='escapes the dataset root'):
        list(behave.convert(bad, model_dir, splits=['test']))
    (bad / 'split.json').write_text(json.dumps({'train': ['Date09_Sub99_missing']}))
    with pytest.raises(common.DatasetFormatError, match=r"split\.json: missing field 'test'"):
        list(behave.convert(bad, model_dir, splits=['test']))
    with pytest.raises(common.DatasetFormatError, match=r'missing directory .*Date09_Sub99'):
        list(behave.convert(bad, model_dir, splits=['train']))
