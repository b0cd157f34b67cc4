"""Rendered moving people for dataset-format writers: real images whose 3D joints are known.

Converter tests write a tiny dataset in its authors' real format; the images in it come from here,
so a projection check through the parsed camera lands on an actual rendered body.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from posepile.camera import Camera
from posepile.synthetic import body as body_lib
from posepile.synthetic import poses as poses_lib
from posepile.synthetic import render as render_lib


@dataclasses.dataclass
class PeopleSequence:
    """joints: [T, J, 3] world mm (z up, ground z = 0), J = `n_joints` points of the hidden body
    (joint centres first, then landmarks); images: [T, H, W, 3] uint8 RGB; masks: [T, H, W] bool."""
    joints: np.ndarray
    images: np.ndarray
    masks: np.ndarray


def default_camera(imshape=(240, 320), distance_mm=4500.0, height_mm=1000.0,
                   yaw_deg=0.0, focal=None) -> Camera:
    """A camera `distance_mm` from the world origin at `height_mm`, looking at (0, 0, 900) mm
    (roughly a standing person's middle), in a z-up world."""
    h, w = imshape
    focal = focal or 1.1 * w
    yaw = np.deg2rad(yaw_deg)
    position = np.array([distance_mm * np.sin(yaw), -distance_mm * np.cos(yaw), height_mm])
    cam = Camera(optical_center=position,
                 intrinsic_matrix=[[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1]],
                 world_up=(0, 0, 1))
    # Start looking along +y with z up: camera x = world x, camera y = -world z, camera z = world y.
    cam.R = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]) @ _rot_z(-yaw)
    cam.turn_towards(target_world_point=np.array([0.0, 0.0, 900.0]))
    return cam


def studio_cameras(n, distortion=None, imshape=(120, 160)) -> list[Camera]:
    """`n` cameras on a widening arc around the origin (yaw -20, 15, 50, ... deg, 4 m + 0.3 m per
    camera), all with the OpenCV `distortion` coefficients if given: a multi-camera studio."""
    cams = [default_camera(imshape, yaw_deg=35.0 * i - 20, distance_mm=4000.0 + 300 * i)
            for i in range(n)]
    if distortion is not None:
        for cam in cams:
            cam.distortion_coeffs = np.asarray(distortion, np.float64)
    return cams


def _rot_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def make_people_sequence(cameras: list[Camera], imshape=(240, 320), n_frames=4, n_joints=17,
                         seed=0, step_mm_per_frame=0.0) -> list[PeopleSequence]:
    """One person moving for `n_frames` frames, seen by each camera in `cameras`.

    `step_mm_per_frame` adds a steady walk along x on top of the motion, so tests can control
    how many frames survive the 100 mm dedup rule. Returns one PeopleSequence per camera (same
    joints, different images).
    """
    rng = np.random.default_rng(seed)
    body = body_lib.sample_body(rng)
    motion = poses_lib.sample_motion(rng, body, n_frames)
    root_pos = motion.root_pos - motion.root_pos[:1] * [1, 1, 0]
    root_pos = root_pos + np.arange(n_frames)[:, None] * [step_mm_per_frame, 0, 0]
    hidden = body_lib.forward_kinematics(body, motion.pose_deg, motion.root_rot, root_pos)
    appearance = render_lib.sample_appearance(rng)
    out = []
    for cam in cameras:
        background = render_lib.random_background(rng, *imshape)
        renders = [render_lib.render_person(h, body, appearance, cam, background, rng,
                                            occluder_prob=0.0) for h in hidden]
        out.append(PeopleSequence(
            joints=hidden[:, :n_joints].astype(np.float32),
            images=np.stack([r.image for r in renders]),
            masks=np.stack([r.mask for r in renders])))
    return out
