"""IKEA-ASM as released, with rendered people: Calibration/camera_parameters.pkl, per-frame pose3d
json (OpenPose-style keypoints in cm, camera frame) and images/scan_video.avi per camera. Real
videos are 1920x1080; these are 160x120 with intrinsics to match."""
from __future__ import annotations

import json
import pathlib
import pickle

import numpy as np

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import default_camera, make_people_sequence

IMSHAPE = (120, 160)
N_FRAMES = 4
SCAN = '0001_black_table_02_01_2019_08_16_14_00'


def pose_json(cam_coords_mm, missing=()):
    values = np.concatenate([cam_coords_mm / 10, np.ones((17, 1))], axis=1)
    values[list(missing)] = 0
    return {'version': 1.3, 'pose_keypoints_3d': values.reshape(-1).tolist()}


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    cams = {'dev1': default_camera(IMSHAPE, distance_mm=3000, yaw_deg=10),
            'dev2': default_camera(IMSHAPE, distance_mm=3000, yaw_deg=-60)}
    people = dict(zip(cams, make_people_sequence(list(cams.values()), IMSHAPE, n_frames=N_FRAMES,
                                                 n_joints=17, seed=9, step_mm_per_frame=150.0)))
    (root / 'Calibration').mkdir()
    params = {'02': {name: {'K': cam.intrinsic_matrix.copy(), 'R': cam.R.copy(),
                            'T': np.zeros(3)} for name, cam in cams.items()}}
    (root / 'Calibration/camera_parameters.pkl').write_bytes(pickle.dumps(params, protocol=2))
    for name, cam in cams.items():
        cam_dir = root / 'Lack_TV_Bench' / SCAN / name
        write_video(cam_dir / 'images' / 'scan_video.avi', people[name].images, fourcc='MJPG')
        (cam_dir / 'pose3d').mkdir(parents=True)
        for t in range(N_FRAMES):
            cam_coords = cam.world_to_camera(people[name].joints[t])
            if t == 1 and name == 'dev2':  # keypoints 3..16 missing: too few in view
                data = pose_json(cam_coords, missing=range(3, 17))
            else:
                data = pose_json(cam_coords, missing=(4,))
            (cam_dir / 'pose3d' / f'{t:06d}.json').write_text(json.dumps(data))
    # A 'special_test' scan: no calibration entry, skipped without reading its (absent) video.
    special = root / 'Lack_TV_Bench' / 'special_test' / 'dev1' / 'pose3d'
    special.mkdir(parents=True)
    for t in range(2):
        (special / f'{t:06d}.json').write_text(json.dumps(pose_json(np.ones((17, 3)), ())))
    return cams, people
