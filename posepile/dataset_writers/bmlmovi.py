"""BML-MoVi as released, with rendered people: Calib/ (camera extrinsics and intrinsics
.mat/.npz), F_Subjects_*/ joint and marker .mat files and the F_PG1 video files (in the root
or in Videos/; the layout posepile/datasets/bmlmovi.py documents). The lens has radial
distortion."""
from __future__ import annotations

import pathlib

import numpy as np
import scipy.io

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import make_people_sequence, studio_cameras

IMSHAPE = (120, 160)
MOVI_RADIAL = [-0.04, 0.02]


def write(root: pathlib.Path):
    """Subjects 3 (F_Subjects_1_45, videos in root) and 50 (F_Subjects_46_90, videos in Videos/)."""
    cams = studio_cameras(2, MOVI_RADIAL + [0, 0, 0])
    (root / 'Calib').mkdir(parents=True)
    for name, cam in zip(('PG1', 'PG2'), cams):
        np.savez(root / 'Calib' / f'Extrinsics_{name}.npz', rotationMatrix=cam.R.T,
                 translationVector=(-cam.R @ cam.t).reshape(1, 3))
        np.savez(root / 'Calib' / f'cameraParams_{name}.npz',
                 IntrinsicMatrix=cam.intrinsic_matrix.T, RadialDistortion=np.array(MOVI_RADIAL))
    truth = {}
    for k, subject in enumerate((3, 50)):
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=87, seed=60 + k,
                                      step_mm_per_frame=40.0)
        mocap = np.full((14, 87, 3), 9999.0)  # 120 Hz; only every 4th frame meets a 30 fps frame
        mocap[0:13:4] = people[0].joints
        mocap[4, 10] = 0.0  # a missing marker at video frame 1
        sub = 'F_Subjects_1_45' if subject <= 45 else 'F_Subjects_46_90'
        (root / sub).mkdir(exist_ok=True)
        scipy.io.savemat(root / sub / f'F_v3d_Subject_{subject}.mat', {
            f'Subject_{subject}_F': {
                'move': {'markerLocation': mocap, 'virtualMarkerLocation': mocap[:, 67:],
                         'flags30': np.array([[1, 4]]), 'flags120': np.array([[1, 14]]),
                         'motions_list': np.array(['walking'], dtype=object)},
                'subject': {'id': f'Subject_{subject}'}}})
        video_dir = root if subject <= 45 else root / 'Videos'
        for name, p in zip(('PG1', 'PG2'), people):
            write_video(video_dir / f'F_{name}_Subject_{subject}_L.avi', p.images, 'MJPG', fps=30)
        truth[subject] = people
    return dict(cams=cams, people=truth)
