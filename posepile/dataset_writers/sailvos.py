"""SAIL-VOS as the reference PosePile loader reads it, with rendered people:
<sequence>/images/<t:06d>.bmp frames, <sequence>/visible/<t:06d>.npz (visible_ids), and per person
<id>_<class>/ <t:06d>_3d.txt (350 rig points, metres, GTA world), _2d.txt, _camera.npz (extrinsics,
intrinsics) and .png amodal masks. Real frames are 1280x800; these are 160x120 with intrinsics to
match."""
from __future__ import annotations

import pathlib

import cv2
import numpy as np

from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import sailvos

IMSHAPE = (120, 160)
N_FRAMES = 4
OFFSET_MM = np.array([1.2e6, -3.4e5, 5.0e4])  # GTA worlds are kilometres wide
PERSON, OCCLUDED_PERSON = 123, 45


def raw_points(joints_mm, missing=()):
    """[350, 3] metres: each group's points average to its joint (pairs straddle it)."""
    points = np.zeros((350, 3))
    for j, group in enumerate(sailvos.JOINT_POINT_GROUPS):
        if j in missing:
            continue
        target = joints_mm[j] / 1000
        points[list(group)] = target
        if len(group) >= 2:
            points[group[0]] = target + [0.05, -0.02, 0.01]
            points[group[1]] = target - [0.05, -0.02, 0.01]
    return points


def write_camera(path, cam, valid=True):
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = cam.R
    extrinsics[:3, 3] = -cam.R @ (cam.t + OFFSET_MM) / 1000
    intrinsics = cam.intrinsic_matrix if valid else np.full((3, 3), np.nan)
    np.savez(path, extrinsics=extrinsics, intrinsics=intrinsics)


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    cam = default_camera(IMSHAPE, distance_mm=3000)
    people = make_people_sequence([cam], IMSHAPE, n_frames=N_FRAMES, n_joints=26, seed=6,
                                  step_mm_per_frame=150.0)[0]
    seq = root / 'ah_3b_mcs_4'
    for name in ('images', 'visible', f'{PERSON}_Ped_walker', f'{OCCLUDED_PERSON}_Ped_hidden'):
        (seq / name).mkdir(parents=True)
    (seq / '7_car').mkdir()  # a non-person object: no *_3d.txt files
    for t in range(N_FRAMES):
        cv2.imwrite(str(seq / 'images' / f'{t:06d}.bmp'), people.images[t][..., ::-1])
        ids = np.where(people.masks[t], PERSON, 0).astype(np.int32)
        ids[:3, :3] = OCCLUDED_PERSON  # the hidden person shows only 9 pixels
        np.savez_compressed(seq / 'visible' / f'{t:06d}.npz', visible_ids=ids)
        for pid in (PERSON, OCCLUDED_PERSON):
            pdir = seq / f'{pid}_Ped_{"walker" if pid == PERSON else "hidden"}'
            np.savetxt(pdir / f'{t:06d}_3d.txt',
                       raw_points(people.joints[t] + OFFSET_MM, missing=(17,)), fmt='%.6f')
            np.savetxt(pdir / f'{t:06d}_2d.txt', cam.world_to_image(people.joints[t]))
            write_camera(pdir / f'{t:06d}_camera.npz', cam, valid=(t != 2))
            cv2.imwrite(str(pdir / f'{t:06d}.png'), people.masks[t].astype(np.uint8) * 255)
    return cam, people
