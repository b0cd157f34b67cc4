"""HUMAN4D as released, with rendered people: device_repository.json, .extrinsics, offsets.txt,
Dump/color pngs, Dump/gposes3d npy. Real frames are 1280x720; these are 160x120 with intrinsics to
match."""
from __future__ import annotations

import json
import pathlib

import cv2
import numpy as np

from posepile.dataset_writers.people import default_camera, make_people_sequence

IMSHAPE = (120, 160)
N_FRAMES = 4
RECORDING = '19-07-12-09-09-06'
OFFSET1 = 3  # frame f shows pose f - 2


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    cams = {'M72h': default_camera(IMSHAPE, distance_mm=3500, yaw_deg=0),
            'M72j': default_camera(IMSHAPE, distance_mm=3500, yaw_deg=80)}
    people = dict(zip(cams, make_people_sequence(list(cams.values()), IMSHAPE,
                                                 n_frames=N_FRAMES, n_joints=33, seed=10,
                                                 step_mm_per_frame=150.0)))
    subject = root / 'S2'
    (subject / 'pose').mkdir(parents=True)
    devices = [{'Device': name, 'Serial': '0', 'Color Intrinsics': [
        {INTR: cam.intrinsic_matrix.reshape(-1).tolist()
         for INTR in ('1280x720', '640x480')}]} for name, cam in cams.items()]
    devices.append({'Device': 'M72x',
                    'Color Intrinsics': [{'1280x720': [1, 0, 0, 0, 1, 0, 0, 0, 1]}]})
    (subject / 'device_repository.json').write_text(json.dumps(devices))
    for name, cam in cams.items():
        np.savetxt(subject / 'pose' / f'{name}.extrinsics', np.vstack([cam.R.T, cam.t]))
    (subject / 'offsets.txt').write_text(f'{RECORDING}\t{OFFSET1}\t7\n')
    dump = subject / RECORDING / 'Dump'
    (dump / 'color').mkdir(parents=True)
    (dump / 'gposes3d').mkdir()
    # Pose index p is frame p + 2. Pose 1 is missing (a gap in the release).
    for p in (0, 2, 3):
        np.save(dump / 'gposes3d' / f'{p}.npy', people['M72h'].joints[p][None].astype(np.float64))
    for name in cams:
        for p in range(N_FRAMES):
            image = people[name].images[p][..., ::-1]
            cv2.imwrite(str(dump / 'color' / f'{p + 2}_{name}_color_{4000 + p}.png'), image)
        # Frame 1 precedes the first pose: skipped. Camera M72x has no extrinsics: skipped.
        cv2.imwrite(str(dump / 'color' / f'1_{name}_color_3999.png'), image)
    cv2.imwrite(str(dump / 'color' / '2_M72x_color_1.png'), image)
    return cams, people
