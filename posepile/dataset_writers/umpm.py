"""UMPM as released, with rendered people: the calibration archive and one archive per sequence
extracted side by side (C3D marker/joint files, per-camera calibration .ini, .avi videos; the
layout posepile/datasets/umpm.py documents). The second person of a two-person sequence is
annotated, not drawn."""
from __future__ import annotations

import pathlib

import cv2
import numpy as np

from posepile.dataset_writers.media import write_c3d, write_video
from posepile.dataset_writers.people import make_people_sequence, studio_cameras

IMSHAPE = (120, 160)
UMPM_SEQS = {'p2_chair_1': 2, 'p1_grab_3': 1}  # sequence -> number of people
UMPM_DIST = [-0.03, 0.01, 0.0005, -0.0003]
UMPM_OFFSET = np.array([900.0, 300.0, 0.0])  # the second person (not drawn) stands here


def write(root: pathlib.Path):
    cams = studio_cameras(4, UMPM_DIST + [0.0])
    cam_ids = ('l', 'r', 's', 'f')
    (root / 'Calib').mkdir(parents=True)
    for cam_id, cam in zip(cam_ids, cams):
        rows = [*cam.intrinsic_matrix, UMPM_DIST, cv2.Rodrigues(cam.R)[0][:, 0], -cam.R @ cam.t]
        (root / 'Calib' / f'calib_l06_{cam_id}.ini').write_text(
            '\n'.join(' '.join(f'{v:.10f}' for v in row) for row in rows) + '\n')
    truth = {}
    for k, (seq, n_people) in enumerate(UMPM_SEQS.items()):
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=15, seed=40 + k,
                                      step_mm_per_frame=40.0)
        per_person = [people[0].joints + p * UMPM_OFFSET for p in range(n_people)]
        video_rate = np.concatenate(per_person, axis=1)  # [4, 15 * n_people, 3]
        mocap = np.repeat(video_rate, 2, axis=0)
        mocap[1::2] += 5000.0  # the in-between 100 Hz frames must not be used
        invalid = np.zeros(mocap.shape[:2], bool)
        if n_people == 2:
            invalid[2 * 3, 15:] = True  # person 1 lost in video frame 3 (mocap 6): skipped
        write_c3d(root / seq / 'Groundtruth' / f'{seq}_vm.c3d', mocap,
                  [f'V{j}' for j in range(mocap.shape[1])], rate=100.0, invalid=invalid)
        (root / seq / f'{seq}.json').write_text(
            f'{{"id": "{seq}", "calib": "calib_l06", "persons": {n_people},}}\n')
        for cam_id, p in zip(cam_ids, people):
            write_video(root / seq / 'Video' / f'{seq}_{cam_id}.avi', p.images, 'MJPG', fps=50)
        truth[seq] = dict(people=people, per_person=per_person)
    return dict(cams=cams, cam_ids=cam_ids, seqs=truth)
