"""RICH as released, with rendered people: scan_calibration/<setup>/calibration/<cam:03d>.xml
(OpenCV), <phase>_body/<seq>/<frame:05d>/<subject:03d>.pkl SMPL-X fits ([1, n] arrays, 12-component
hand PCA), <phase>/<seq>/cam_XX/ BMP/PNG frames; plus a tiny SMPL-X model in the official npz
layout. Real frames are 4112x3008; these are 160x120 with intrinsics to match. The model has one
vertex per joint and a one-hot joint regressor; frame t's betas select the shape direction holding
that frame's joints before the fit's global rotation and translation."""
from __future__ import annotations

import pathlib
import pickle

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from posepile import body_models
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import rich

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


def write(root: pathlib.Path, model_dir: pathlib.Path):
    root = pathlib.Path(root)
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
    return model_dir, cams, truth
