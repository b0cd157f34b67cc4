"""JTA as released, with rendered people: annotations/<split>/<seq>.json (rows of frame, person,
joint, x2D, y2D, x3D, y3D, z3D (camera metres), occluded, self-occluded) and
videos/<split>/<seq>.mp4. Real videos are 1920x1080 with the fixed K of the README; these are
192x108 (a uniform 0.1 resize), so the rendering camera uses K resized by 0.1: f = 115.8, c = 0.1 *
(960 + 0.5) - 0.5 = 95.55 and 0.1 * (540 + 0.5) - 0.5 = 53.55."""
from __future__ import annotations

import json
import pathlib

import numpy as np

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import jta

IMSHAPE = (108, 192)
N_FRAMES = 4
SMALL_K = np.array([[115.8, 0, 95.55], [0, 115.8, 53.55], [0, 0, 1]])
FULL_K = np.array(jta.INTRINSIC_MATRIX)


def rows_for(frame, person, coords_cam_m, occluded):
    """Rows [frame, person, joint, x2D, y2D, x3D, y3D, z3D, occluded, self_occluded]."""
    coords_cam_m = np.asarray(coords_cam_m, np.float64)
    full_res = (FULL_K @ coords_cam_m.T).T
    xy = full_res[:, :2] / full_res[:, 2:]
    return [[frame, person, j, *xy[j].tolist(), *coords_cam_m[j].tolist(), int(occluded[j]), 0]
            for j in range(jta.N_JOINTS)]


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    cam = default_camera(IMSHAPE, distance_mm=3000)
    cam.intrinsic_matrix = SMALL_K.copy()
    people = make_people_sequence([cam], IMSHAPE, n_frames=N_FRAMES, n_joints=jta.N_JOINTS,
                                  seed=5, step_mm_per_frame=150.0)[0]
    truth = {}
    for subdir, seq in (('train', 'seq_3'), ('test', 'seq_10')):
        write_video(root / 'videos' / subdir / f'{seq}.mp4', people.images, fps=30)
        cam_m = cam.world_to_camera(people.joints) / 1000
        rows = []
        for t in range(N_FRAMES):
            rows += rows_for(t + 1, 7, cam_m[t], np.zeros(jta.N_JOINTS))
            # A second pedestrian standing still 0.6 m behind (not drawn): dedup keeps 1 frame.
            rows += rows_for(t + 1, 8, cam_m[0] + [0, 0, 0.6], np.zeros(jta.N_JOINTS))
            # A fully occluded pedestrian: skipped.
            rows += rows_for(t + 1, 9, cam_m[t] + [0.3, 0, 1.0], np.ones(jta.N_JOINTS))
            # A pedestrian 6 m further away (box < 32 px) and one behind the camera: skipped.
            rows += rows_for(t + 1, 10, cam_m[t] + [0, 0, 6.0], np.zeros(jta.N_JOINTS))
            rows += rows_for(t + 1, 11, cam_m[t] * [1, 1, -1], np.zeros(jta.N_JOINTS))
        rows = rows[::-1]  # the converter must not rely on row order
        (root / 'annotations' / subdir).mkdir(parents=True)
        (root / 'annotations' / subdir / f'{seq}.json').write_text(json.dumps(rows))
        truth[f'{subdir}/{seq}'] = cam_m * 1000
    (root / 'annotations/val').mkdir()
    return cam, people, truth
