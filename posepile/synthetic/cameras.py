"""Camera placement for the synthetic datasets (all camera maths is in `posepile.camera`).

World frame: z up, ground z = 0, millimetres. A camera is placed at a position, levelled (image
y along world -z), aimed at a target with `Camera.turn_towards`, then optionally rolled.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from posepile.camera import Camera, rotation_z

WORLD_UP = (0.0, 0.0, 1.0)
# Camera looking along world +x with image y pointing down (world -z): rows are the camera's
# x, y, z axes in world coordinates.
_LEVEL_ALONG_X = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


@dataclasses.dataclass(frozen=True)
class CameraRig:
    """A dataset's camera distribution.

    Attributes:
        kind: 'ring' (fixed cameras shared by all sequences, studio), 'static' (new fixed
            cameras per sequence) or 'handheld' (one camera per sequence that follows the person
            with shake).
        n_cameras: cameras per sequence.
        distance_mm: (min, max) horizontal distance from the capture-area centre / the person.
        height_mm: (min, max) camera height above the ground.
        fov_deg: (min, max) horizontal field of view.
        image_size: (height, width) pixels.
        k1_range: radial distortion k1 range, (0, 0) for none; k2 = 0.5 k1^2 keeps the radial
            distortion monotone at every radius (9 k1^2 < 20 k2), so it is invertible.
        aim_jitter: std of the aim offset as a fraction of the distance (moves the person off
            centre, sometimes partly out of frame).
        roll_deg: std of the camera roll.
        off_frame_prob: probability that a camera is panned/tilted away from the person by
            0.5-0.9 of its half field of view, so that the person is partly out of frame.
    """
    kind: str
    n_cameras: int
    distance_mm: tuple[float, float]
    height_mm: tuple[float, float]
    fov_deg: tuple[float, float]
    image_size: tuple[int, int]
    k1_range: tuple[float, float] = (0.0, 0.0)
    aim_jitter: float = 0.05
    roll_deg: float = 1.0
    off_frame_prob: float = 0.0


def make_camera(position, target, fov_deg: float, image_size: tuple[int, int],
                distortion=None, roll_rad: float = 0.0, principal_offset=(0.0, 0.0),
                pan_tilt_rad=(0.0, 0.0)) -> Camera:
    """A camera at `position` (3,) world mm looking at `target` (3,) world mm.

    The horizontal field of view `fov_deg` spans the image width; pixels are square; the
    principal point is the image centre plus `principal_offset` px. After aiming, the camera is
    panned/tilted by `pan_tilt_rad` (yaw, pitch) and rolled by `roll_rad`.
    """
    position = np.asarray(position, np.float64)
    direction = np.asarray(target, np.float64) - position
    yaw = np.arctan2(direction[1], direction[0])
    height, width = image_size
    focal = (width / 2) / np.tan(np.deg2rad(fov_deg) / 2)
    intrinsics = np.array([[focal, 0, (width - 1) / 2 + principal_offset[0]],
                           [0, focal, (height - 1) / 2 + principal_offset[1]], [0, 0, 1]])
    camera = Camera(position, _LEVEL_ALONG_X @ rotation_z(-yaw), intrinsics, distortion,
                    world_up=WORLD_UP)
    camera.turn_towards(target_world_point=target)
    camera.rotate(yaw=pan_tilt_rad[0], pitch=pan_tilt_rad[1], roll=roll_rad)
    return camera


def _off_frame_pan_tilt(rng: np.random.Generator, rig: CameraRig, fov_deg: float) -> np.ndarray:
    """(yaw, pitch) radians: usually zero; with `rig.off_frame_prob` a turn of 0.5-0.9 half
    fields of view in a random direction."""
    if rng.uniform() >= rig.off_frame_prob:
        return np.zeros(2)
    height, width = rig.image_size
    half_fov = np.deg2rad(fov_deg) / 2 * np.array([1.0, height / width])
    direction = rng.uniform(0, 2 * np.pi)
    return rng.uniform(0.5, 0.9) * half_fov * np.array([np.cos(direction), np.sin(direction)])


def sample_camera(rng: np.random.Generator, rig: CameraRig, center_mm, azimuth: float | None = None
                  ) -> Camera:
    """One camera of `rig` around the ground point `center_mm` (2,) (at `azimuth` radians if
    given, else random)."""
    azimuth = rng.uniform(0, 2 * np.pi) if azimuth is None else azimuth
    distance = rng.uniform(*rig.distance_mm)
    center = np.asarray(center_mm, np.float64)
    position = np.array([center[0] + distance * np.cos(azimuth),
                         center[1] + distance * np.sin(azimuth), rng.uniform(*rig.height_mm)])
    target = np.array([center[0], center[1], rng.uniform(800, 1100)])
    target += rng.normal(0, rig.aim_jitter * distance, 3) * np.array([1, 1, 0.5])
    k1 = rng.uniform(*rig.k1_range)
    distortion = None if k1 == 0 else np.array([k1, 0.5 * k1 * k1, 0.0, 0.0, 0.0])
    fov = rng.uniform(*rig.fov_deg)
    return make_camera(position, target, fov, rig.image_size, distortion,
                       np.deg2rad(rng.normal(0, rig.roll_deg)), rng.normal(0, 2.0, 2),
                       _off_frame_pan_tilt(rng, rig, fov))


def handheld_track(rng: np.random.Generator, rig: CameraRig, person_ground: np.ndarray
                   ) -> list[Camera]:
    """One camera per frame for a handheld operator following the person ([T, 2] ground track,
    mm): a slowly drifting position and aim with small shake."""
    n_frames = len(person_ground)
    t = np.arange(n_frames)
    azimuth = rng.uniform(0, 2 * np.pi) + 0.3 * np.sin(t / rng.uniform(20, 60))
    distance = rng.uniform(*rig.distance_mm)
    cam_height = rng.uniform(*rig.height_mm)
    fov = rng.uniform(*rig.fov_deg)
    aim = rng.normal(0, rig.aim_jitter * distance, 2)
    smooth_center = np.cumsum(person_ground, axis=0) / (t[:, None] + 1)  # lags behind
    shake = 0.004 * np.cumsum(rng.normal(0, 1, (n_frames, 3)), axis=0)
    roll = np.deg2rad(rng.normal(0, rig.roll_deg) + 0.5 * np.sin(t / 7.0))
    offset = rng.normal(0, 2.0, 2)
    # The operator sometimes frames badly for a while: a smooth excursion of the aim.
    pan_tilt = _off_frame_pan_tilt(rng, rig, fov)[None] * np.sin(
        np.pi * np.clip(t / max(n_frames - 1, 1) * rng.uniform(1, 2), 0, 1))[:, None]
    cameras = []
    for i in range(n_frames):
        position = np.array([smooth_center[i, 0] + distance * np.cos(azimuth[i]),
                             smooth_center[i, 1] + distance * np.sin(azimuth[i]), cam_height])
        target = np.array([person_ground[i, 0] + aim[0], person_ground[i, 1] + aim[1], 950.0])
        target = target + shake[i] * distance
        cameras.append(make_camera(position, target, fov, rig.image_size, None, roll[i], offset,
                                   pan_tilt[i]))
    return cameras
