"""Fit3D, CHI3D and HumanSC3D (the IMAR datasets) as released, with rendered people:
train/<subject>/joints3d_25/<action>.json (world metres), camera_parameters/<camera>/<action>.json
(extrinsics R, T metres; intrinsics with and without distortion, k and p as the release stores
them), videos/<camera>/<action>.mp4, a test subject with videos and cameras only, and info.json.
CHI3D holds two people per frame."""
from __future__ import annotations

import json
import pathlib

import numpy as np

from posepile.camera import h36m_distortion_to_opencv
from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import chi3d, fit3d, humansc3d

IMSHAPE = (120, 160)
CAMERA_IDS = ('50591643', '58860488')
# Of the magnitude of a released Fit3D camera (k1, k2, k3; p as stored).
K_RADIAL = np.array([-0.145, 0.112, 0.0034])
P_TANGENTIAL = np.array([-0.0072, 0.0062])
# Joints rows per rendered frame: each frame's pose appears twice, so dedup keeps 2 of 4.
FRAME_OF_ROW = [0, 0, 1, 1]
# Persons of CHI3D stand this far apart (mm, world x) so that neither hides the other.
CHI3D_OFFSETS = (np.array([-750.0, 0, 0]), np.array([750.0, 0, 0]))
DATASETS = {  # name: (module, train subjects (the last is the default validation one), action)
    'fit3d': (fit3d, ('s03', 's11'), 'squat'),
    'chi3d': (chi3d, ('s02', 's04'), 'Grab 4'),
    'humansc3d': (humansc3d, ('s01', 's06'), '001'),
}


def fixture_cameras():
    cams = [default_camera(IMSHAPE, distance_mm=4500, yaw_deg=yaw) for yaw in (15, 195)]
    for cam in cams:
        cam.distortion_coeffs = h36m_distortion_to_opencv(K_RADIAL, P_TANGENTIAL)
    return cams


def camera_json(cam):
    K = cam.intrinsic_matrix
    f, c = [[K[0, 0], K[1, 1]]], [[K[0, 2], K[1, 2]]]
    return {'extrinsics': {'R': cam.R.tolist(), 'T': [(cam.t / 1000).tolist()]},
            'intrinsics_w_distortion': {'f': f, 'c': c, 'k': [K_RADIAL.tolist()],
                                        'p': [P_TANGENTIAL.tolist()]},
            'intrinsics_wo_distortion': {'f': f, 'c': c}}


def write_json(path, data):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def render_subject(cams, seed, n_persons):
    """(world joints [P, 2, 25, 3] mm, images per camera [2, H, W, 3], masks [P][cam] [2, H, W])."""
    if n_persons == 1:
        seqs = make_people_sequence(cams, IMSHAPE, n_frames=2, n_joints=25, seed=seed,
                                    step_mm_per_frame=300.0)
        return (seqs[0].joints[np.newaxis], [s.images for s in seqs],
                [[s.masks for s in seqs]])
    people = []
    for i, offset in enumerate(CHI3D_OFFSETS):
        # A person moved by `offset` looks to a camera like the original person to a camera
        # moved by -offset.
        shifted = []
        for cam in cams:
            moved = cam.copy()
            moved.t = cam.t - offset
            shifted.append(moved)
        seqs = make_people_sequence(shifted, IMSHAPE, n_frames=2, n_joints=25,
                                    seed=seed * 10 + i, step_mm_per_frame=300.0)
        people.append((seqs[0].joints + offset.astype(np.float32), seqs))
    images, masks = [], [[], []]
    for c in range(len(cams)):
        front = people[1][1][c]
        images.append(np.where(front.masks[..., None], front.images, people[0][1][c].images))
        masks[0].append(people[0][1][c].masks & ~front.masks)
        masks[1].append(front.masks)
    return np.stack([p[0] for p in people]), images, masks


def write(root: pathlib.Path, name: str, with_test_subject: bool = True):
    """One IMAR dataset `name` (a DATASETS key). Returns (cameras, truth[subject] = (world joints
    [P, 4, 25, 3] mm, frames per camera, masks per person and camera))."""
    root = pathlib.Path(root)
    module, subjects, action = DATASETS[name]
    n_persons = getattr(module, 'N_PERSONS', 1)
    cams = fixture_cameras()
    truth = {}
    for seed, subject in enumerate(subjects):
        world, images, masks = render_subject(cams, seed, n_persons)
        rows = world[:, FRAME_OF_ROW] / 1000.0
        write_json(root / f'train/{subject}/joints3d_25/{action}.json',
                   {'joints3d_25': (rows[0] if n_persons == 1 else rows).tolist()})
        for cam, cam_id, frames in zip(cams, CAMERA_IDS, images):
            write_json(root / f'train/{subject}/camera_parameters/{cam_id}/{action}.json',
                       camera_json(cam))
            write_video(root / f'train/{subject}/videos/{cam_id}/{action}.mp4',
                        frames[FRAME_OF_ROW])
        truth[subject] = (world[:, FRAME_OF_ROW],
                          [frames[FRAME_OF_ROW] for frames in images],
                          [[m[FRAME_OF_ROW] for m in per_person] for per_person in masks])
    if with_test_subject:  # as released: videos and cameras, no joints3d_25
        write_json(root / f'test/s99/camera_parameters/{CAMERA_IDS[0]}/{action}.json',
                   camera_json(cams[0]))
        write_video(root / f'test/s99/videos/{CAMERA_IDS[0]}/{action}.mp4', images[0])
    write_json(root / 'info.json', {})
    return cams, truth
