"""The MPI-INF-3DHP training set as released, with rendered people: S<n>/Seq<m>/annot.mat (14x1
cells of [T, 84] camera-frame mm and [T, 56] px), camera.calibration (Skeletool format) and
imageSequence/video_<c>.avi for the 14 cameras. Real videos are 2048x2048; these are 160x120 with
intrinsics to match ('size' in camera.calibration says so)."""
from __future__ import annotations

import pathlib

import numpy as np
import scipy.io

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import mpi_inf_3dhp

IMSHAPE = (120, 160)
FRAME_OF_ROW = [0, 0, 1]  # the repeated row is a duplicate for the 100 mm rule


def fixture_cameras():
    return [default_camera(IMSHAPE, distance_mm=4000 + 50 * i, height_mm=800 + 100 * (i % 3),
                           yaw_deg=25.7 * i) for i in range(14)]


def write_calibration(path, cams):
    lines = ['Skeletool Camera Calibration File V1.0']
    for i, cam in enumerate(cams):
        intrinsic = np.eye(4)
        intrinsic[:3, :3] = cam.intrinsic_matrix
        extrinsic = np.eye(4)
        extrinsic[:3, :3] = cam.R
        extrinsic[:3, 3] = -cam.R @ cam.t
        lines += [f'name          {i}', '  sensor      10 10',
                  f'  size        {IMSHAPE[1]} {IMSHAPE[0]}', '  animated    0',
                  '  intrinsic   ' + ' '.join(f'{v:.10g}' for v in intrinsic.ravel()) + ' ',
                  '  extrinsic   ' + ' '.join(f'{v:.10g}' for v in extrinsic.ravel()) + ' ',
                  '  radial      0']
    pathlib.Path(path).write_text('\n'.join(lines) + '\n')


def write_annot(path, world, cams):
    """annot.mat as distributed: 14x1 cells of [T, 84] camera-frame mm (and [T, 56] pixels)."""
    annot3 = np.empty((14, 1), object)
    annot2 = np.empty((14, 1), object)
    for i, cam in enumerate(cams):
        annot3[i, 0] = cam.world_to_camera(world).reshape(len(world), -1)
        annot2[i, 0] = cam.world_to_image(world).reshape(len(world), -1)
    scipy.io.savemat(str(path), {
        'annot3': annot3, 'annot2': annot2, 'univ_annot3': annot3,
        'cameras': np.arange(14)[None], 'frames': np.arange(len(world))[:, None]})


def write(root: pathlib.Path, subject: str = 'S1'):
    """`subject`'s Seq1 and Seq2, 14 cameras, two rendered frames in three annotation rows
    (FRAME_OF_ROW). Returns (cameras, truth[sequence] = (world joints [3, 28, 3] mm, masks per
    camera))."""
    root = pathlib.Path(root)
    cams = fixture_cameras()
    truth = {}
    for seed, seq in enumerate(mpi_inf_3dhp.SEQUENCES):
        seq_dir = root / subject / seq
        (seq_dir / 'imageSequence').mkdir(parents=True)
        people = make_people_sequence(cams, IMSHAPE, n_frames=2, n_joints=28, seed=seed,
                                      step_mm_per_frame=300.0)
        world = people[0].joints[FRAME_OF_ROW].astype(np.float64)
        write_annot(seq_dir / 'annot.mat', world, cams)
        write_calibration(seq_dir / 'camera.calibration', cams)
        for i, p in enumerate(people):
            write_video(seq_dir / f'imageSequence/video_{i}.avi', p.images[FRAME_OF_ROW],
                        fourcc='MJPG')
        truth[seq] = (world, [p.masks[FRAME_OF_ROW] for p in people])
    return cams, truth
