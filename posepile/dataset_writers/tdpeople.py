"""3DPeople as released, with rendered people: rgb/<subject>/<action>/camera0c/<dir>/NNNN.jpg,
skeleton txt with 67 rows of x2D y2D X Y Z in decimetres, clothes segmentation png on a grey
background, at the real 640x480, f = 700 px."""
from __future__ import annotations

import pathlib

import cv2
import numpy as np

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import tdpeople

IMSHAPE = (480, 640)
N_FRAMES = 3
SEQ = 'woman17/02_04_jump'


def rig_rows(selected_mm):
    """67 rig rows: the 29 selected ones, the others midpoints of selected pairs (affine)."""
    rows = np.zeros((67, 3))
    rows[list(tdpeople.SELECTED_ROWS)] = selected_mm
    others = [r for r in range(67) if r not in tdpeople.SELECTED_ROWS]
    rows[others] = (selected_mm[np.arange(len(others)) % 29] +
                    selected_mm[(np.arange(len(others)) * 7 + 3) % 29]) / 2
    return rows


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    cams = {f'camera0{c}': default_camera(IMSHAPE, distance_mm=4000, yaw_deg=90 * (c - 1),
                                          focal=700.0) for c in (1, 2)}
    people = dict(zip(cams, make_people_sequence(list(cams.values()), IMSHAPE,
                                                 n_frames=N_FRAMES, n_joints=29, seed=12,
                                                 step_mm_per_frame=150.0)))
    for name, cam in cams.items():
        for t in range(N_FRAMES):
            stem = f'{t + 1:04d}'
            write_jpeg(root / 'rgb' / SEQ / name / 'frames' / f'{stem}.jpg', people[name].images[t])
            world = rig_rows(people[name].joints[t].astype(np.float64))
            table = np.concatenate([cam.world_to_image(world), world / 100], axis=1)
            skel_dir = root / 'skeleton' / SEQ / name
            skel_dir.mkdir(parents=True, exist_ok=True)
            np.savetxt(skel_dir / f'{stem}.txt', table, fmt='%.6f')
            seg = np.full((*IMSHAPE, 3), 153, np.uint8)
            seg[people[name].masks[t]] = (40, 200, 90)
            seg_dir = root / 'segmentation_clothes' / SEQ / name
            seg_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(seg_dir / f'{stem}.png'), seg)
        # The rest-pose file without an image.
        np.savetxt(root / 'skeleton' / SEQ / name / '0000.txt', np.zeros((67, 5)))
    return cams, people
