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

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import body_models, build, joints
from posepile.datasets import common, rich
from posepile.safe_unpickle import UnsafePickleError

IMSHAPE = (120, 160)
FRAMES = (0, 5, 10)
N_JOINTS = 55
CAMS = (0, 1)
# (phase, sequence, subject, image extension, frozen)
SEQUENCES = (('train', 'Gym_013_pushup1', 13, '.bmp', False),
             ('val', 'ParkingLot1_002_stretching2', 2, '.png', True))


def write_xml(path, cam):
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    extrinsics = np.concatenate([cam.R, (-cam.R @ cam.t)[:, None] / 1000], axis=1)
    storage.write('CameraMatrix', extrinsics)
    storage.write('Intrinsics', cam.intrinsic_matrix)
    storage.write('Distortion', np.zeros((1, 5)))
    storage.release()


def all_joints(body_mm):
    """55 SMPL-X joint positions (mm) from 22 body joints: face joints near the head, finger
    chains hanging off the wrists."""
    head, wrists = body_mm[15], body_mm[20:22]
    face = head + np.array([[0, 0, -60.0], [-30, 0, 30], [30, 0, 30]])
    steps = np.array([[f * 8.0, 0, -30.0 * s] for f in range(5) for s in (1, 2, 3)])
    return np.concatenate([body_mm, face, wrists[0] + steps, wrists[1] + steps])


def smplx_model(frame_joints_m, orient, trans, rng):
    n_verts = N_JOINTS
    shapedirs = np.zeros((n_verts, 3, 20))  # the original layout: 10 shape + 10 expression
    for t, (x, rotvec, tr) in enumerate(zip(frame_joints_m, orient, trans)):
        shapedirs[:, :, t] = (x[0] - tr) + (x - x[0]) @ Rotation.from_rotvec(rotvec).as_matrix()
    parents = np.array(body_models.OFFICIAL_PARENTS['smplx'])
    weights = np.zeros((n_verts, N_JOINTS))
    weights[:, 0] = 1
    arrays = dict(v_template=np.zeros((n_verts, 3)), shapedirs=shapedirs,
                  posedirs=np.zeros((n_verts, 3, 9 * (N_JOINTS - 1))),
                  J_regressor=np.eye(N_JOINTS, n_verts), weights=weights,
                  kintree_table=np.stack([parents, np.arange(N_JOINTS)]).astype(np.uint32),
                  f=np.zeros((1, 3), np.uint32))
    for side in 'lr':
        arrays[f'hands_components{side}'] = np.linalg.qr(rng.normal(size=(45, 45)))[0] * 0.5
        arrays[f'hands_mean{side}'] = rng.normal(0, 0.1, 45)
    return arrays


def fit_dict(t, orient, trans, hand_coeffs):
    betas = np.zeros((1, 10), np.float32)
    betas[0, t] = 1
    return {'betas': betas, 'global_orient': orient[None].astype(np.float32),
            'body_pose': np.zeros((1, 63), np.float32), 'jaw_pose': np.zeros((1, 3), np.float32),
            'leye_pose': np.zeros((1, 3), np.float32), 'reye_pose': np.zeros((1, 3), np.float32),
            'left_hand_pose': hand_coeffs[None].astype(np.float32),
            'right_hand_pose': np.zeros((1, 12), np.float32),
            'expression': np.zeros((1, 10), np.float32), 'transl': trans[None].astype(np.float32)}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('rich')
    model_dir = tmp_path_factory.mktemp('body_models')
    cams = [default_camera(IMSHAPE, distance_mm=3500, yaw_deg=yaw) for yaw in (-20.0, 35.0)]
    rng = np.random.default_rng(3)
    truth = {}
    for seed, (phase, seq, subject, ext, frozen) in enumerate(SEQUENCES):
        setup = seq.split('_')[0]
        for cam_id, cam in zip(CAMS, cams):
            write_xml(root / 'scan_calibration' / setup / 'calibration' / f'{cam_id:03d}.xml', cam)
        people = make_people_sequence(cams, IMSHAPE, n_frames=len(FRAMES), n_joints=22,
                                      seed=seed, step_mm_per_frame=150.0)
        images = [p.images for p in people]
        masks = [p.masks for p in people]
        body = people[0].joints.astype(np.float64)
        if frozen:
            body = np.repeat(body[:1], len(FRAMES), axis=0)
            images = [np.repeat(im[:1], len(FRAMES), axis=0) for im in images]
            masks = [np.repeat(m[:1], len(FRAMES), axis=0) for m in masks]
        world_mm = np.stack([all_joints(b) for b in body])
        orient = rng.normal(0, 0.5, (len(FRAMES), 3))
        trans = rng.normal(0, 0.3, (len(FRAMES), 3))
        hand_coeffs = rng.normal(0, 1, (len(FRAMES), 12))
        gender = rich.SUBJECT_GENDERS[subject]
        model_path = body_models.body_model_path(model_dir, 'smplx', gender)
        model_path.parent.mkdir(parents=True, exist_ok=True)
        arrays = smplx_model(world_mm / 1000, orient, trans, rng)
        np.savez(model_path, **arrays)
        for t, frame in enumerate(FRAMES):
            fit_path = root / f'{phase}_body' / seq / f'{frame:05d}' / f'{subject:03d}.pkl'
            fit_path.parent.mkdir(parents=True, exist_ok=True)
            fit_path.write_bytes(pickle.dumps(fit_dict(t, orient[t], trans[t], hand_coeffs[t]),
                                              protocol=2))
            for cam_id in (*CAMS, 2):  # cam 2 plays a moving camera: images, no calibration
                cam_dir = root / phase / seq / f'cam_{cam_id:02d}'
                cam_dir.mkdir(parents=True, exist_ok=True)
                image_path = cam_dir / f'{frame:05d}_{cam_id:02d}{ext}'
                cv2.imwrite(str(image_path), images[min(cam_id, 1)][t][..., ::-1])
        truth[f'{phase}/{seq}'] = dict(world_mm=world_mm, body=body, masks=masks, orient=orient,
                                       hand=hand_coeffs, arrays=arrays, subject=subject)
    (root / 'test').mkdir()  # no test sequences in the fixture
    (root / 'test_body').mkdir()
    examples = list(rich.convert(root, body_model_dir=model_dir))
    return root, model_dir, cams, truth, examples


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
