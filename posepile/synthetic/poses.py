"""Pose and motion sampling for the hidden body: archetypal poses, smooth sequences, walking.

A sequence's pose is a smooth (cosine-eased) blend between random keyframes, each an archetype
(standing, walking, arms raised, sitting, bending, squatting, ...) plus noise, with a gait
oscillation for walking segments; every frame is clipped to the joint limits. The root moves
smoothly over the ground and the feet are kept on the ground plane (z = 0).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from posepile.synthetic import body as body_lib

_J = len(body_lib.JOINT_NAMES)


def _pose(**angles) -> np.ndarray:
    """A pose from left-side/trunk angles in degrees; 'both_' mirrors onto the right side."""
    pose = np.zeros((_J, 3))
    for key, value in angles.items():
        names = [key[5:], 'r' + key[6:]] if key.startswith('both_') else [key]
        for k, name in enumerate(names):
            x, y, z = value
            sign = -1 if k == 1 else 1  # mirror: y and z change sign on the right
            pose[body_lib.JOINT_IDS[name]] = (x, sign * y, sign * z)
    return pose


# Key poses (Euler angles, degrees). Arms hang down at rest; negative hip/shoulder x = forward.
ARCHETYPES: dict[str, np.ndarray] = {
    'stand': _pose(both_lshoulder=(0, 0, 10), both_lelbow=(-10, 0, 0)),
    'walk': _pose(both_lshoulder=(0, 0, 8), both_lelbow=(-20, 0, 0)),
    'arms_raised': _pose(both_lshoulder=(0, 0, 160), both_lelbow=(-10, 0, 0),
                         neck=(-10, 0, 0)),
    'arms_forward': _pose(both_lshoulder=(-85, 0, 5), both_lelbow=(-20, 0, 0)),
    't_pose': _pose(both_lshoulder=(0, 0, 90), both_lclavicle=(0, 0, 5)),
    'sit': _pose(both_lhip=(-90, 0, 8), both_lknee=(90, 0, 0), both_lshoulder=(-30, 0, 10),
                 both_lelbow=(-60, 0, 0), spine1=(5, 0, 0)),
    'bend': _pose(spine1=(35, 0, 0), spine2=(30, 0, 0), spine3=(20, 0, 0), both_lhip=(-35, 0, 0),
                  both_lshoulder=(-40, 0, 5), neck=(-20, 0, 0)),
    'squat': _pose(both_lhip=(-110, 0, 20), both_lknee=(130, 0, 0), both_lankle=(30, 0, 0),
                   spine1=(20, 0, 0), both_lshoulder=(-70, 0, 10), both_lelbow=(-30, 0, 0)),
    'reach_left': _pose(lshoulder=(-30, 0, 150), rshoulder=(0, 0, -10), spine2=(0, 0, -12),
                        lelbow=(-15, 0, 0), head=(0, 20, 0)),
    'lunge': _pose(lhip=(-70, 0, 5), lknee=(80, 0, 0), rhip=(20, 0, -5), rknee=(15, 0, 0),
                   spine1=(10, 0, 0), both_lshoulder=(-20, 0, 15)),
    'wave_right': _pose(rshoulder=(-20, 0, -120), relbow=(-90, 30, 0), lshoulder=(0, 0, 8)),
    'kick': _pose(rhip=(-80, 0, 0), rknee=(20, 0, 0), lknee=(10, 0, 0),
                  both_lshoulder=(-10, 0, 35), spine1=(-5, 0, 0)),
}
ARCHETYPE_NAMES = tuple(ARCHETYPES)


def clip_to_limits(pose_deg: np.ndarray) -> np.ndarray:
    """[..., J, 3] degrees -> the same clipped into `body.JOINT_LIMITS_DEG`."""
    limits = body_lib.JOINT_LIMITS_DEG
    return np.clip(pose_deg, limits[..., 0], limits[..., 1])


@dataclasses.dataclass(frozen=True)
class Motion:
    """A sequence of body configurations.

    Attributes:
        pose_deg: [T, J, 3] local Euler angles within the joint limits.
        root_rot: [T, 3, 3] body->world rotation (heading).
        root_pos: [T, 3] pelvis position in world mm (z up; feet on the ground plane z = 0).
        archetypes: [T] name of the keyframe archetype that dominates each frame.
    """
    pose_deg: np.ndarray
    root_rot: np.ndarray
    root_pos: np.ndarray
    archetypes: tuple[str, ...]


def _smooth_noise(rng: np.random.Generator, n_frames: int, shape, period: float) -> np.ndarray:
    """Band-limited noise [T, *shape] in [-1, 1]: random sinusoids with periods ~`period` frames."""
    t = np.arange(n_frames)[:, None]
    n_waves = 3
    freq = rng.uniform(0.5, 1.5, (n_waves,) + tuple(shape)) / period
    phase = rng.uniform(0, 2 * np.pi, (n_waves,) + tuple(shape))
    waves = np.sin(2 * np.pi * freq[None] * t.reshape((n_frames, 1) + (1,) * len(shape))
                   + phase[None])
    return waves.mean(axis=1)


def sample_motion(rng: np.random.Generator, body: body_lib.BodyShape, n_frames: int,
                  fps: float = 25.0, area_radius_mm: float = 1500.0) -> Motion:
    """A smooth random motion of `n_frames` frames at `fps` for one person.

    Keyframes every 1.6-3.2 s; between them the pose eases with a cosine blend, so consecutive
    frames differ by a few millimetres to centimetres (as in real video).
    """
    key_spacing = rng.uniform(1.6, 3.2) * fps
    n_keys = int(np.ceil(n_frames / key_spacing)) + 2
    names = rng.choice(ARCHETYPE_NAMES, n_keys)
    keys = np.stack([ARCHETYPES[n] for n in names])
    # Per-keyframe variation, stronger on the loose joints (shoulders, elbows, neck).
    spread = np.maximum(0.12 * np.ptp(body_lib.JOINT_LIMITS_DEG, axis=-1), 0)
    keys = clip_to_limits(keys + rng.normal(0, 1, keys.shape) * spread * 0.6)

    pos = np.arange(n_frames) / key_spacing
    idx = np.floor(pos).astype(int)
    frac = pos - idx
    ease = (0.5 - 0.5 * np.cos(np.pi * frac))[:, None, None]
    pose = (1 - ease) * keys[idx] + ease * keys[idx + 1]
    dominant = np.where(frac < 0.5, idx, idx + 1)

    # Walking: a gait cycle whose amplitude follows how much the 'walk' keyframes dominate.
    is_walk = (names == 'walk').astype(np.float64)
    walk_amount = (1 - ease[:, 0, 0]) * is_walk[idx] + ease[:, 0, 0] * is_walk[idx + 1]
    gait_hz = rng.uniform(0.8, 1.1)
    phase = 2 * np.pi * gait_hz * np.arange(n_frames) / fps + rng.uniform(0, 2 * np.pi)
    swing = np.sin(phase)
    gait = np.zeros((n_frames, _J, 3))
    ids = body_lib.JOINT_IDS
    gait[:, ids['lhip'], 0] = -25 * swing
    gait[:, ids['rhip'], 0] = 25 * swing
    gait[:, ids['lknee'], 0] = 30 * np.maximum(0, np.sin(phase + 1.2)) + 5
    gait[:, ids['rknee'], 0] = 30 * np.maximum(0, np.sin(phase + 1.2 + np.pi)) + 5
    gait[:, ids['lshoulder'], 0] = 20 * swing
    gait[:, ids['rshoulder'], 0] = -20 * swing
    pose = pose + walk_amount[:, None, None] * gait
    # Small continuous fidgeting so that no two frames are exactly identical.
    pose = pose + 4.0 * _smooth_noise(rng, n_frames, (_J, 3), period=2.0 * fps)
    pose = clip_to_limits(pose)

    # Heading turns slowly; the person drifts around, faster while walking.
    yaw = (rng.uniform(0, 2 * np.pi) + np.deg2rad(rng.uniform(-40, 40))
           * np.arange(n_frames) / fps + 0.3 * _smooth_noise(rng, n_frames, (), 4.0 * fps))
    root_rot = body_lib.yaw_to_root_rotation(yaw)
    speed = 200.0 + 1100.0 * walk_amount  # mm/s
    forward = np.stack([np.cos(yaw), np.sin(yaw)], -1)
    steps = forward * (speed / fps)[:, None]
    start = rng.uniform(-0.5, 0.5, 2) * area_radius_mm
    ground = start + np.cumsum(steps, axis=0) - steps[0]
    # Stay in the capture area: squash the path radially (smooth, so no jumps between frames).
    radius = np.linalg.norm(ground, axis=-1, keepdims=True)
    ground = ground * (area_radius_mm * np.tanh(radius / area_radius_mm)
                       / np.maximum(radius, 1e-9))

    root_pos = np.concatenate([ground, np.zeros((n_frames, 1))], axis=-1)
    points = body_lib.forward_kinematics(body, pose, root_rot, root_pos)
    # Feet on the floor: lift so that the lowest point touches z = 0 (sitting = invisible chair).
    root_pos[:, 2] -= points[..., 2].min(axis=1)
    return Motion(pose, root_rot, root_pos, tuple(str(names[i]) for i in dominant))
