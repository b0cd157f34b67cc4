"""SURREAL as released, with rendered people: cmu/<split>/<run>/<seq>/<seq>_c<clip>_info.mat
(joints3D [3, 24, T] world metres, joints2D, camLoc, ...), _segm.mat (segm_<t+1> part labels) and
the 320x240 mp4, at SURREAL's real resolution and fixed intrinsics (f = 600 px). People are
rendered in a z-up world by a camera whose pose is then expressed in a SURREAL world in which that
camera has SURREAL's constant rotation; joints3D/camLoc are written in that world, in metres."""
from __future__ import annotations

import pathlib

import numpy as np
import scipy.io

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import surreal

IMSHAPE = (240, 320)
N_FRAMES = 4
# (split folder, run, seq, clip, yaw, step mm/frame, frozen): a frozen clip repeats frame 0, so
# the 100 mm rule keeps only its first frame.
CLIPS = (('train', 'run0', '01_01', 1, 0.0, 150.0, False),
         ('train', 'run0', '01_01', 2, 40.0, 150.0, True),
         ('val', 'run1', '02_03', 1, -30.0, 150.0, False),
         ('test', 'run2', '05_02', 3, 20.0, 150.0, False))


def write_clip(root, split, run, seq, clip, yaw, step, frozen, seed):
    cam = default_camera(IMSHAPE, distance_mm=5000, yaw_deg=yaw, focal=surreal.FOCAL_PX)
    if not np.allclose(cam.intrinsic_matrix, surreal.INTRINSICS):
        raise AssertionError('the fixture camera must have SURREAL\'s intrinsics')
    people = make_people_sequence([cam], IMSHAPE, n_frames=N_FRAMES, n_joints=24, seed=seed,
                                  step_mm_per_frame=step)[0]
    pts, images, masks = people.joints.astype(np.float64), people.images, people.masks
    if frozen:
        pts, images, masks = (np.repeat(a[:1], N_FRAMES, axis=0) for a in (pts, images, masks))
    to_surreal = surreal.ROT_WORLD_TO_CAM.T @ cam.R  # fixture world -> SURREAL world
    world = pts @ to_surreal.T
    cam_loc = to_surreal @ cam.t
    # Released joints2D use Blender's pixel-corner convention: ours + 0.5 px.
    joints2d = cam.world_to_image(pts) + 0.5
    folder = pathlib.Path(root) / 'cmu' / split / run / seq
    folder.mkdir(parents=True, exist_ok=True)
    stem = f'{seq}_c{clip:04d}'
    scipy.io.savemat(folder / f'{stem}_info.mat', {
        'joints3D': world.transpose(2, 1, 0) / 1000, 'joints2D': joints2d.transpose(2, 1, 0),
        'camLoc': cam_loc / 1000, 'camDist': np.linalg.norm(cam_loc) / 1000,
        'gender': np.zeros(N_FRAMES, np.uint8), 'pose': np.zeros((72, N_FRAMES)),
        'shape': np.zeros((10, N_FRAMES)), 'zrot': np.zeros(N_FRAMES), 'clipNo': clip,
        'sequence': seq, 'source': 'cmu', 'stride': 50})
    scipy.io.savemat(folder / f'{stem}_segm.mat', {
        f'segm_{i + 1}': (masks[i] * 7).astype(np.uint8) for i in range(N_FRAMES)})
    write_video(folder / f'{stem}.mp4', images)
    return {'world': world, 'joints2d': joints2d, 'images': images, 'masks': masks}


def write(root: pathlib.Path):
    """The clips of CLIPS; truth[(sequence, 'c<clip>')] = write_clip's dict."""
    truth = {}
    for seed, (split, run, seq, clip, yaw, step, frozen) in enumerate(CLIPS):
        truth[(f'{split}/{run}/{seq}', f'c{clip:04d}')] = write_clip(
            root, split, run, seq, clip, yaw, step, frozen, seed)
    return truth
