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

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import body_models, build, joints
from posepile.datasets import behave, common
from posepile.safe_unpickle import UnsafePickleError

IMSHAPE = (120, 160)
N_FRAMES = 3
N_SMPLH = 52
KINECTS = (0, 1)
# (name, split, gender, date, frozen, calibration paths as the released info.json may hold them)
SEQUENCES = (
    ('Date01_Sub01_backpack_back', 'train', 'male', 'Date01', False,
     ('../../calibs/intrinsics', '../../calibs/Date01/config')),
    ('Date03_Sub03_chairwood_sit', 'test', 'female', 'Date03', True,
     ('/BS/someone/static00/behave-release/calibs/intrinsics',
      '/BS/someone/static00/behave-release/calibs/Date03/config')),
)


def fixture_cameras():
    return [default_camera(IMSHAPE, distance_mm=3200, yaw_deg=yaw) for yaw in (-25.0, 30.0)]


def to_behave_world(cams):
    """BEHAVE's world is a Kinect's camera frame; here the second camera's: p_b = R1 (p - c1)."""
    rot, centre = cams[1].R, cams[1].t
    return lambda p: (np.asarray(p) - centre) @ rot.T


def write_calibration(root, date, cams):
    to_world = to_behave_world(cams)
    for k, cam in zip(KINECTS, cams):
        K = cam.intrinsic_matrix
        color = {'fx': K[0, 0], 'fy': K[1, 1], 'cx': K[0, 2], 'cy': K[1, 2], 'codx': 0.0,
                 'cody': 0.0, 'metric_radius': 0.0, **{c: 0.0 for c in behave._DISTORTION_KEYS}}
        intr = root / 'calibs' / 'intrinsics' / str(k) / 'calibration.json'
        intr.parent.mkdir(parents=True, exist_ok=True)
        intr.write_text(json.dumps({'color': color, 'depth': color}))
        rot_cam_to_world = (cam.R @ cams[1].R.T).T
        config = root / 'calibs' / date / 'config' / str(k) / 'config.json'
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps({'rotation': rot_cam_to_world.ravel().tolist(),
                                      'translation': (to_world(cam.t) / 1000).tolist()}))


def model_with_frames(world_joints_m, orient, trans):
    """A tiny SMPL+H npz whose shape direction t holds frame t's joints before the fit's global
    rotation `orient[t]` (about the pelvis) and translation `trans[t]`."""
    n_verts = N_SMPLH
    shapedirs = np.zeros((n_verts, 3, 16))
    for t, (x, rotvec, tr) in enumerate(zip(world_joints_m, orient, trans)):
        body = np.concatenate([x[:22], np.repeat(x[20:22], 15, axis=0)])  # hand joints at wrists
        pelvis = body[0] - tr
        shapedirs[:, :, t] = pelvis + (body - body[0]) @ Rotation.from_rotvec(rotvec).as_matrix()
    parents = np.array(body_models.OFFICIAL_PARENTS['smplh'])
    rng = np.random.default_rng(0)
    weights = np.zeros((n_verts, N_SMPLH))
    weights[:, 0] = 1
    return dict(v_template=np.zeros((n_verts, 3)), shapedirs=shapedirs,
                posedirs=rng.normal(0, 0.01, (n_verts, 3, 9 * (N_SMPLH - 1))),
                J_regressor=np.eye(N_SMPLH, n_verts), weights=weights,
                kintree_table=np.stack([parents, np.arange(N_SMPLH)]).astype(np.uint32),
                f=np.zeros((1, 3), np.uint32))


def fit_pickle(frame, orient, trans):
    pose = np.zeros(156, np.float32)
    pose[:3] = orient
    betas = np.zeros(10, np.float32)
    betas[frame] = 1.0
    return pickle.dumps({'pose': pose, 'betas': betas, 'trans': trans.astype(np.float32)},
                        protocol=2)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('behave')
    model_dir = tmp_path_factory.mktemp('body_models')
    cams = fixture_cameras()
    to_world = to_behave_world(cams)
    truth = {}
    split = {'train': [], 'test': []}
    rng = np.random.default_rng(5)
    for seed, (name, split_name, gender, date, frozen, (intr, conf)) in enumerate(SEQUENCES):
        split[split_name].append(name)
        write_calibration(root, date, cams)
        people = make_people_sequence(cams, IMSHAPE, n_frames=N_FRAMES, n_joints=22, seed=seed,
                                      step_mm_per_frame=150.0)
        fixture_joints = people[0].joints.astype(np.float64)
        images = [p.images for p in people]
        masks = [p.masks for p in people]
        if frozen:
            fixture_joints = np.repeat(fixture_joints[:1], N_FRAMES, axis=0)
            images = [np.repeat(im[:1], N_FRAMES, axis=0) for im in images]
            masks = [np.repeat(m[:1], N_FRAMES, axis=0) for m in masks]
        world_m = to_world(fixture_joints) / 1000
        orient = rng.normal(0, 0.5, (N_FRAMES, 3))
        trans = rng.normal(0, 0.3, (N_FRAMES, 3))
        path = body_models.body_model_path(model_dir, 'smplh', gender)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **model_with_frames(world_m, orient, trans))
        seq_dir = root / 'sequences' / name
        seq_dir.mkdir(parents=True)
        (seq_dir / 'info.json').write_text(json.dumps({
            'config': conf, 'intrinsic': intr, 'cat': name.split('_')[2], 'gender': gender,
            'empty': None, 'kinects': list(KINECTS)}))
        for i in range(N_FRAMES):
            frame_dir = seq_dir / f't{i * 0.5 + 3:08.3f}'  # e.g. t0003.000, t0003.500
            (frame_dir / 'person' / 'fit02').mkdir(parents=True)
            (frame_dir / 'person' / 'fit02' / 'person_fit.pkl').write_bytes(
                fit_pickle(i, orient[i], trans[i]))
            for k in KINECTS:
                write_jpeg(frame_dir / f'k{k}.color.jpg', images[k][i])
                cv2.imwrite(str(frame_dir / f'k{k}.person_mask.jpg'),
                            masks[k][i].astype(np.uint8) * 255)
        truth[name] = (world_m * 1000, fixture_joints, masks, split_name)
    (root / 'split.json').write_text(json.dumps(split))
    examples = list(behave.convert(root, body_model_dir=model_dir))
    return root, model_dir, truth, cams, examples


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
