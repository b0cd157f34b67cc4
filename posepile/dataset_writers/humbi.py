"""HUMBI body as released, with rendered people: subject_<n>/body/{extrinsic,intrinsic}.txt, per-
frame <frame:08d>/reconstruction/keypoints.txt (BODY_25 in metres) and image/image<camera:07d>.jpg.
Real frames are 1920x1080; these are 160x120 with intrinsics to match."""
from __future__ import annotations

import pathlib

import numpy as np

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence

IMSHAPE = (120, 160)
N_FRAMES = 3
CAMERA_INDICES = (3, 17)
# One image the converter is told to ignore (the release lists such images).
IGNORED = 'subject_12/body/00000011/image/image0000017.jpg'


def write_calibration(body_dir, cams):
    extrinsic = ['# HUMBI extrinsic parameters', '# camera center and rotation',
                 f'# {len(cams)} cameras']
    intrinsic = ['# HUMBI intrinsic parameters', '# K', f'# {len(cams)} cameras']
    for index, cam in cams.items():
        extrinsic += [f'camera {index}', ' '.join(f'{v:.9f}' for v in cam.t / 1000)]
        extrinsic += [' '.join(f'{v:.12f}' for v in row) for row in cam.R]
        intrinsic += [f'camera {index}']
        intrinsic += [' '.join(f'{v:.9f}' for v in row) for row in cam.intrinsic_matrix]
    (body_dir / 'extrinsic.txt').write_text('\n'.join(extrinsic) + '\n')
    (body_dir / 'intrinsic.txt').write_text('\n'.join(intrinsic) + '\n')


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    cams = {i: default_camera(IMSHAPE, distance_mm=3500, yaw_deg=50 * k)
            for k, i in enumerate(CAMERA_INDICES)}
    sequences = make_people_sequence(list(cams.values()), IMSHAPE, n_frames=N_FRAMES,
                                     n_joints=25, seed=7, step_mm_per_frame=40.0)
    people = dict(zip(CAMERA_INDICES, sequences))
    body_dir = root / 'subject_12' / 'body'
    body_dir.mkdir(parents=True)
    write_calibration(body_dir, cams)
    for t in range(N_FRAMES):
        frame_dir = body_dir / f'{t * 5 + 1:08d}'
        (frame_dir / 'reconstruction').mkdir(parents=True)
        np.savetxt(frame_dir / 'reconstruction' / 'keypoints.txt',
                   people[3].joints[t] / 1000, fmt='%.7f')
        (frame_dir / 'reconstruction' / 'smpl_parameter.txt').write_text('1 0 0 0\n')
        for index in CAMERA_INDICES:
            write_jpeg(frame_dir / 'image' / f'image{index:07d}.jpg', people[index].images[t])
        # A camera without calibration: skipped.
        write_jpeg(frame_dir / 'image' / 'image0000099.jpg', people[3].images[t])
    return cams, people
