"""MADS as released, with rendered people: multi_view_data/<group>/<seq>_GT.mat (a cell of poses,
mm), Caltech Calib_Cam<i>.mat files and MJPG avi views. Real videos are 1024x768; these are 160x120
with intrinsics to match."""
from __future__ import annotations

import pathlib

import cv2
import numpy as np
import scipy.io

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import mads

IMSHAPE = (120, 160)
N_FRAMES = 5


def write_calibration(path, cam, kc=np.zeros(5)):
    om = cv2.Rodrigues(cam.R)[0].reshape(3)
    scipy.io.savemat(str(path), {'om_ext': om.reshape(3, 1),
                                 'T_ext': (-cam.R @ cam.t).reshape(3, 1),
                                 'KK': cam.intrinsic_matrix, 'kc': kc.reshape(5, 1),
                                 'fc': np.diag(cam.intrinsic_matrix)[:2].reshape(2, 1)})


def write_gt(path, frames):
    cell = np.empty((len(frames), 1), dtype=object)
    for i, f in enumerate(frames):
        cell[i, 0] = f
    scipy.io.savemat(str(path), {'GTpose2': cell, 'GTpose': cell})


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    cams = [default_camera(IMSHAPE, distance_mm=3500, yaw_deg=yaw) for yaw in (0, 70)]
    people = make_people_sequence(cams, IMSHAPE, n_frames=N_FRAMES, n_joints=19, seed=8,
                                  step_mm_per_frame=150.0)
    group = root / 'multi_view_data' / 'Kata'
    group.mkdir(parents=True)
    for i, (cam, seq) in enumerate(zip(cams, people)):
        write_video(group / f'Kata_P1_C{i}.avi', seq.images, fourcc='MJPG')
        write_calibration(group / f'Calib_Cam{i}.mat', cam)
    poses = people[0].joints.astype(np.float64)
    frames = [poses[0], np.full((19, 3), np.nan), poses[2][list(mads.ROWS_OF_15)],
              np.zeros((0, 0)), poses[4]]
    write_gt(group / 'Kata_P1_GT.mat', frames)
    return cams, people
