"""BEHAVE as released, with rendered people: sequences/<name>/info.json, calibs/
(intrinsics/<k>/calibration.json, <date>/config/<k>/config.json), per-frame
person/fit02/person_fit.pkl SMPL+H fits, k<k>.color.jpg and k<k>.person_mask.jpg, split.json; plus a
tiny SMPL+H model in the official npz layout. Real Kinect colour images are 2048x1536; these are
160x120 with intrinsics to match. The model has one vertex per joint and a one-hot joint regressor;
each frame's betas select a shape direction that holds that frame's (un-rotated, un-translated)
joints, so the forward pass must apply the fit's global orientation and translation to reproduce the
rendered person."""
from __future__ import annotations

import json
import pathlib
import pickle

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from posepile import body_models
from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import behave

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


def write(root: pathlib.Path, model_dir: pathlib.Path):
    root = pathlib.Path(root)
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
    return model_dir, truth, cams
