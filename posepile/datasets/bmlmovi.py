"""Converter for BML-MoVi (Ghorbani et al. 2021), round F, the two calibrated cameras PG1/PG2.

Expected layout under `root` (the released tar files extracted as published):

    <root>/
        F_Subjects_1_45/F_v3d_Subject_<i>.mat     MATLAB v5; struct 'Subject_<i>_F' with
        F_Subjects_46_90/F_v3d_Subject_<i>.mat      .move.markerLocation [T, 87, 3] (120 Hz, mm;
                                                    67 skin markers then the 20 virtual joints)
        Calib/Extrinsics_PG1.npz, Extrinsics_PG2.npz       'rotationMatrix', 'translationVector'
        Calib/cameraParams_PG1.npz, cameraParams_PG2.npz   'IntrinsicMatrix', 'RadialDistortion'
        F_PG1_Subject_<i>_L.avi, F_PG2_Subject_<i>_L.avi   30 fps (in <root>/ or <root>/Videos/)

Camera conventions: the calibration comes from MATLAB, which multiplies row vectors, so the
stored 'IntrinsicMatrix' and 'rotationMatrix' are the transposes of the column-vector K and R;
x_cam = R @ x_world + t with t = 'translationVector' in mm; distortion = radial k1, k2.

Time: the PG videos start with the mocap (no offset), so video frame i shows mocap time i / fps,
i.e. mocap index i * 120 / fps (linearly interpolated when fractional; 4i at 30 fps).
Markers stored as (0, 0, 0) are missing -> NaN. Frames beyond the mocap's end are dropped;
frames with no valid point are skipped.

Units and frames: millimetres in the mocap world frame; world up = mean image-up direction of
the two cameras. Joints: the 87 'bmlmovi' points in the file's row order.

Split: MoVi defines no train/test split for pose estimation; every example is 'train'.
Tracks: sequence = 'F_Subject_<i>', person = i, camera_id = 'PG1' / 'PG2'.

Not read: rounds S1/S2/I1/I2 (no calibrated PG extrinsics for the moving phones), the CP
(phone) cameras, the AMASS files, IMU data. The whole untrimmed video is used (flags30/flags120
per-motion trimming is not needed for pose estimation; dedup drops the still periods).
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np
import scipy.io

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'bmlmovi'
DESCRIPTION = 'BML-MoVi round F: v3d markerLocation (87 points, 120 Hz), cameras PG1/PG2'
CAMERA_IDS = ('PG1', 'PG2')
MOCAP_FPS = 120.0
N_POINTS = 87


def _load_npz(path: pathlib.Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    path = common.require_file(path, f'a .npz with {", ".join(keys)}')
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise common.DatasetFormatError(f'{path}: missing field(s) {missing}')
            return {k: np.asarray(data[k], np.float64) for k in keys}
    except (ValueError, OSError) as e:
        raise common.DatasetFormatError(f'{path}: not a readable numeric .npz ({e})') from None


def load_camera(calib_dir: pathlib.Path, name: str) -> Camera:
    """Camera PG1/PG2 from Calib/Extrinsics_<name>.npz and cameraParams_<name>.npz (mm)."""
    extr_path = calib_dir / f'Extrinsics_{name}.npz'
    intr_path = calib_dir / f'cameraParams_{name}.npz'
    extr = _load_npz(extr_path, ('rotationMatrix', 'translationVector'))
    intr = _load_npz(intr_path, ('IntrinsicMatrix', 'RadialDistortion'))
    for path, key, value in [(extr_path, 'rotationMatrix', extr['rotationMatrix']),
                             (intr_path, 'IntrinsicMatrix', intr['IntrinsicMatrix'])]:
        if value.shape != (3, 3):
            raise common.DatasetFormatError(
                f'{path}: field {key!r} has shape {value.shape}, expected [3, 3]')
    t = extr['translationVector'].reshape(-1)
    radial = intr['RadialDistortion'].reshape(-1)
    if t.size != 3 or radial.size not in (2, 3):
        raise common.DatasetFormatError(
            f'{extr_path} / {intr_path}: translationVector must have 3 values and '
            f'RadialDistortion 2 or 3')
    R = extr['rotationMatrix'].T
    coeffs = np.zeros(5)
    coeffs[:2] = radial[:2]
    coeffs[4] = radial[2] if radial.size == 3 else 0.0
    try:
        return Camera(optical_center=-R.T @ t, rot_world_to_cam=R,
                      intrinsic_matrix=intr['IntrinsicMatrix'].T, distortion_coeffs=coeffs)
    except ValueError as e:
        raise common.DatasetFormatError(f'{extr_path}: invalid camera ({e})') from None


def load_markers(path: pathlib.Path, subject: int) -> np.ndarray:
    """[T, 87, 3] mm (NaN for missing markers) from F_v3d_Subject_<i>.mat."""
    path = common.require_file(path, 'the subject\'s Visual3D mocap (MATLAB v5 .mat)')
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except (ValueError, NotImplementedError, OSError) as e:
        raise common.DatasetFormatError(f'{path}: not a readable MATLAB v5 file ({e})') from None
    key = f'Subject_{subject}_F'
    try:
        markers = getattr(mat[key].move, 'markerLocation')
    except (KeyError, AttributeError):
        raise common.DatasetFormatError(
            f'{path}: missing field {key}.move.markerLocation') from None
    markers = np.asarray(markers, np.float64)
    if markers.ndim != 3 or markers.shape[1:] != (N_POINTS, 3):
        raise common.DatasetFormatError(
            f'{path}: field {key}.move.markerLocation has shape {markers.shape}, '
            f'expected [T, {N_POINTS}, 3]')
    markers = markers.copy()
    markers[np.all(np.abs(markers) < 1e-3, axis=2)] = np.nan
    return markers


def mocap_at_video_frames(markers: np.ndarray, n_video_frames: int, video_fps: float) -> np.ndarray:
    """[N, 87, 3] markers at the times of video frames 0..N-1 (linear interpolation; a NaN
    neighbour gives NaN), N limited by the mocap's length."""
    positions = np.arange(n_video_frames) * (MOCAP_FPS / video_fps)
    positions = positions[positions <= len(markers) - 1]
    lo = np.floor(positions).astype(int)
    hi = np.minimum(lo + 1, len(markers) - 1)
    w = (positions - lo)[:, None, None]
    exact = w == 0
    return np.where(exact, markers[lo], markers[lo] * (1 - w) + markers[hi] * w)


def _subject_files(root: pathlib.Path) -> dict[int, pathlib.Path]:
    found = {}
    for sub in ('F_Subjects_1_45', 'F_Subjects_46_90'):
        d = root / sub
        if d.is_dir():
            for p in d.glob('F_v3d_Subject_*.mat'):
                match = re.fullmatch(r'F_v3d_Subject_(\d+)\.mat', p.name)
                if match:
                    found[int(match.group(1))] = p
    if not found:
        raise common.DatasetFormatError(
            f'{root}: no F_Subjects_1_45/F_v3d_Subject_<i>.mat files (or F_Subjects_46_90/)')
    return dict(sorted(found.items()))


def _video_path(root: pathlib.Path, camera_id: str, subject: int) -> pathlib.Path:
    name = f'F_{camera_id}_Subject_{subject}_L.avi'
    for candidate in (root / name, root / 'Videos' / name):
        if candidate.is_file():
            return candidate
    raise common.DatasetFormatError(
        f'missing file {root / name} (expected: the {camera_id} video of subject {subject}; '
        f'also looked in {root / "Videos"})')


def convert(root, subjects: Iterable[int] | None = None,
            cameras: Iterable[str] = CAMERA_IDS) -> Iterator[Pose3DExample]:
    """Yields one example per (subject, camera, video frame) with at least one valid point.

    Args:
        root: the MoVi directory (see module docstring).
        subjects: subject numbers 1..90 (default: all whose F_v3d file is present).
        cameras: 'PG1' and/or 'PG2'.
    """
    root = common.require_dir(root, 'the BML-MoVi root')
    camera_ids = list(cameras)
    unknown = [c for c in camera_ids if c not in CAMERA_IDS]
    if unknown:
        raise ValueError(f'unknown MoVi cameras {unknown}; expected some of {CAMERA_IDS}')
    calib_dir = common.require_dir(root / 'Calib', 'the PG camera calibration (.npz)')
    cams = {c: load_camera(calib_dir, c) for c in CAMERA_IDS}
    world_up = -np.sum([cam.R[1] for cam in cams.values()], axis=0)
    for cam in cams.values():
        cam.world_up = world_up / np.linalg.norm(world_up)
    files = _subject_files(root)
    wanted = list(files) if subjects is None else list(subjects)
    names = joints.union_names(SKELETON)
    for subject in wanted:
        if subject not in files:
            raise common.DatasetFormatError(f'{root}: no F_v3d_Subject_{subject}.mat')
        markers = load_markers(files[subject], subject)
        for camera_id in camera_ids:
            camera = cams[camera_id]
            video = _video_path(root, camera_id, subject)
            fps = _video_fps(video)
            n_video_frames = common.video_frame_count(video)
            coords = mocap_at_video_frames(markers, n_video_frames, fps)
            # Video-rate frames the mocap covers but the video does not reach.
            n_mocap_frames = int(np.floor((len(markers) - 1) / (MOCAP_FPS / fps))) + 1
            count_skipped('bmlmovi', 'frame beyond the end of the video',
                          max(0, n_mocap_frames - n_video_frames))
            labelled = np.isfinite(coords).all(axis=2)
            for frame in range(len(coords)):
                if not labelled[frame].any():
                    count_skipped('bmlmovi', 'frame without any valid marker')
                    continue
                projected = camera.world_to_image(coords[frame][labelled[frame]])
                yield Pose3DExample(
                    image=common.VideoFrame(video, frame), camera=camera.copy(),
                    world_coords=coords[frame], joint_names=names,
                    box=common.box_around_points(projected),
                    dataset='bmlmovi', sequence=f'F_Subject_{subject}', person=subject,
                    camera_id=camera_id, frame=frame, split='train')


def _video_fps(path: pathlib.Path) -> float:
    import cv2
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    finally:
        cap.release()
    if not fps or fps <= 0:
        raise common.DatasetFormatError(f'{path}: cannot read the frame rate (corrupt video?)')
    return float(fps)
