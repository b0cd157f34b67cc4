"""SPEC-SYN as released, with rendered people: annotations/{train,test}.npz with the keys the
official loader and the reference PosePile loader read, PNG renders at the imgname paths; plus a
tiny SMPL model in the official npz layout. Real renders are 1920x1080; these are 192x108 with
intrinsics to match. The model has one vertex per joint and a one-hot joint regressor; each row's
betas select the shape direction holding that person's rest joints, built by undoing the row's
(random) pose along the SMPL tree, so the forward pass must apply the full 72-d pose to reproduce
the rendered person. The npz holds no body position, as the release: the converter must recover it
from openpose_gt."""
from __future__ import annotations

import pathlib

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from posepile import body_models
from posepile.dataset_writers.body_models import model_arrays
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import spec
from posepile.synthetic.body import JOINT_IDS

IMSHAPE = (108, 192)
# The fixture body's joint centres in SMPL's joint order.
SMPL_FROM_FIXTURE = [JOINT_IDS[n] for n in (
    'pelvis lhip rhip spine1 lknee rknee spine2 lankle rankle spine3 ltoe rtoe neck lclavicle '
    'rclavicle head lshoulder rshoulder lelbow relbow lwrist rwrist lhand rhand').split()]
# Other BODY_25 entries (nose, eyes, ears, feet), filled from nearby SMPL joints.
OPENPOSE_OTHERS = {0: 15, 15: 15, 16: 15, 17: 15, 18: 15, 19: 10, 20: 10, 21: 7, 22: 11, 23: 11,
                   24: 8}
# z-up fixture world -> SPEC's gravity-aligned, y-down posing frame.
Z_UP_TO_Y_DOWN = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
REST_PELVIS = np.array([0.003, -0.35, 0.012])  # metres, like SMPL's template
PREFIX = 'images/{split}/ag_{split}set_renderpeople_bfh_archviz_5_10_cam{cam:02d}_00001.png'
# (split, camera yaw, fixture seed, [(frame, kind), ...]) per image; kind: 'ok', 'noisy'
# (openpose_gt off by ~25 px: skipped), 'sparse' (2 labelled keypoints: skipped).
IMAGES = (
    ('train', -20.0, 0, [(0, 'ok'), (2, 'ok')]),
    ('train', 25.0, 1, [(0, 'ok')]),
    ('train', 5.0, 2, [(0, 'noisy'), (2, 'sparse')]),
    ('test', -10.0, 3, [(0, 'ok'), (2, 'ok')]),
)


def chain_rotations(pose):
    """Global rotation of every SMPL joint [24, 3, 3] for one 72-d pose."""
    local = Rotation.from_rotvec(pose.reshape(24, 3)).as_matrix()
    parents = body_models.OFFICIAL_PARENTS['smpl']
    glob = np.empty_like(local)
    for k in range(24):  # reference, deliberately a plain loop over the tree
        glob[k] = local[k] if parents[k] < 0 else glob[parents[k]] @ local[k]
    return glob


def rest_joints(posed_m, pose):
    """Rest joints [24, 3] whose forward pass with `pose` gives `posed_m` (pelvis fixed)."""
    glob = chain_rotations(pose)
    parents = body_models.OFFICIAL_PARENTS['smpl']
    rest = np.empty_like(posed_m)
    rest[0] = posed_m[0]
    for k in range(1, 24):
        p = parents[k]
        rest[k] = rest[p] + glob[p].T @ (posed_m[k] - posed_m[p])
    return rest


def euler_pitch_roll(rot):
    pitch, _, roll = Rotation.from_matrix(rot).as_euler('xyz')
    return pitch, roll


def make_rows(split, imgname, cam, world_mm, kind, rng, shape_index):
    """One npz row (dict of per-person arrays) of a person with fixture joints `world_mm`."""
    cam_rotmat = cam.R @ Z_UP_TO_Y_DOWN.T  # posing frame -> camera
    camera_mm = cam.world_to_camera(world_mm)
    posed = Z_UP_TO_Y_DOWN @ (world_mm - world_mm[0]).T / 1000
    posed = posed.T + REST_PELVIS  # the SMPL output: posing frame, no translation
    pose = rng.normal(0, 0.3, 72)
    shape = np.zeros(10)
    shape[shape_index] = 1.0
    keypoints = np.zeros((25, 3))
    projected = cam.world_to_image(world_mm)
    keypoints[spec.OPENPOSE_BODY, :2] = projected[spec.OPENPOSE_BODY_TO_SMPL]
    for op, smpl in OPENPOSE_OTHERS.items():
        keypoints[op, :2] = projected[smpl]
    keypoints[:, 2] = 1.0
    if kind == 'noisy':
        keypoints[spec.OPENPOSE_BODY, :2] += rng.normal(0, 25.0, (14, 2))
    if kind == 'sparse':
        keypoints[spec.OPENPOSE_BODY[2:], 2] = 0.0
    K = cam.intrinsic_matrix
    pitch, roll = euler_pitch_roll(cam_rotmat)
    box = np.concatenate([projected.min(0), projected.max(0)])
    row = {
        'imgname': imgname,
        'center': (box[:2] + box[2:]) / 2, 'scale': 1.2 * np.max(box[2:] - box[:2]) / 200,
        'pose': pose, 'shape': shape, 'cam_rotmat': cam_rotmat, 'cam_int': K,
        'cam_pitch': pitch, 'cam_roll': roll, 'focal_length': K[[0, 1], [0, 1]],
        'openpose_gt': keypoints, 'openpose': keypoints + [1.5, -2.0, -0.3],
        'part': np.concatenate([projected[[8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20, 12, 15, 0,
                                           9, 6, 15, 15, 15, 15, 15, 15, 15]],
                                np.ones((24, 1))], axis=1),
        'S': np.concatenate([camera_mm[:24] / 1000, np.ones((24, 1))], axis=1),
        'gender': 'm' if shape_index % 2 else 'f',
    }
    if split == 'test':
        row.update(camcalib_pitch=pitch + 0.05, camcalib_roll=roll - 0.02,
                   camcalib_vfov=2 * np.arctan(IMSHAPE[0] / 2 / K[1, 1]), camcalib_f_pix=K[0, 0])
    return row, rest_joints(posed, pose), {
        'camera_mm': camera_mm, 'world_mm': world_mm, 'cam_rotmat': cam_rotmat}


def write_npz(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {key: np.stack([np.asarray(r[key]) for r in rows]) for key in rows[0]}
    for key, value in arrays.items():
        if value.dtype.kind == 'f':
            arrays[key] = value.astype(np.float32)  # the release's float width is not known
    np.savez(path, **arrays)


def write(root: pathlib.Path, model_dir: pathlib.Path):
    root = pathlib.Path(root)
    rng = np.random.default_rng(7)
    rows = {'train': [], 'test': []}
    rests, truth = [], []
    for i_image, (split, yaw, seed, persons) in enumerate(IMAGES):
        cam = default_camera(IMSHAPE, distance_mm=4000, yaw_deg=yaw)
        people = make_people_sequence([cam], IMSHAPE, n_frames=3, n_joints=25, seed=seed,
                                      step_mm_per_frame=700.0)[0]
        image = people.images[persons[-1][0]].copy()
        for frame, _ in persons:  # composite the people (no overlap: 1.4 m apart)
            image[people.masks[frame]] = people.images[frame][people.masks[frame]]
        imgname = PREFIX.format(split=split, cam=i_image)
        for frame, kind in persons:
            world_mm = people.joints[frame][SMPL_FROM_FIXTURE].astype(np.float64)
            row, rest, info = make_rows(split, imgname, cam, world_mm, kind, rng, len(rests))
            rows[split].append(row)
            rests.append(rest)
            truth.append({**info, 'split': split, 'kind': kind, 'cam': cam,
                          'mask': people.masks[frame], 'imgname': imgname})
        (root / imgname).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / imgname), np.ascontiguousarray(image[..., ::-1]))
    for split, split_rows in rows.items():
        write_npz(root / 'annotations' / f'{split}.npz', split_rows)
    arrays = model_arrays('smpl', seed=3, one_hot_joints=True)
    n_verts = arrays['v_template'].shape[0]
    arrays['v_template'] = np.zeros((n_verts, 3))
    arrays['shapedirs'] = np.zeros((n_verts, 3, 10))
    for i, rest in enumerate(rests):
        arrays['shapedirs'][:24, :, i] = rest
    path = body_models.body_model_path(model_dir, 'smpl', 'neutral')
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)
    return model_dir, truth
