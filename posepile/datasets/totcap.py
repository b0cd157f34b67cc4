"""Converter for TotalCapture (Trumble et al. 2017): Vicon skeleton joints seen by 8 HD cameras.

Expected layout under `root` (the per-subject archives of the dataset's site extracted into one
directory; both the 'vicon'/'video' sub-directory form and the flat form are accepted):

    <root>/
        calibration.cal                          all 8 cameras (format below)
        S1/ ... S5/                              (or s1/ ... s5/)
            vicon/<action>/gt_skel_gbl_pos.txt   or <S>/<action>/gt_skel_gbl_pos.txt
            video/<action>/TC_S1_<action>_cam<N>.mp4   or <S>/<action>/TC_S1_<action>_cam<N>.mp4

Actions: rom1-3, walking1-3, freestyle1-3, acting1-3 (not every subject has every action).

gt_skel_gbl_pos.txt: a header line of tab-separated joint names (Hips, Spine, ..., LeftFoot),
then one line per 60 fps frame with one tab-separated field per joint holding 'x y z' in
INCHES. Joints are matched to the 'totcap' skeleton by these header names.

calibration.cal: line 1 '<n cameras> <n distortion coefficients>'; per camera seven text lines:
'min_row max_row min_col max_col' (image extent, px), 'fx fy cx cy' (px), the radial
distortion coefficient(s) (k1 [k2 ...], OpenCV order), three lines of the world-to-camera
rotation R, one line of the translation t (x_cam = R @ x_world + t). t is taken to be in METRES
(`translation_unit_mm`=1000 by default): this rests on the public reader code, not on an official
statement, so the converter verifies it: if the subject's joints do not project into most images,
it raises an error that suggests another unit.

Units and frames: world coordinates in millimetres (inches x 25.4) in the Vicon world frame; world
up = mean image-up direction of the cameras. Frame i of the Vicon file is frame i of each video.

Split (the literature's, e.g. Trumble et al., Gilbert et al.): 'train' = subjects S1-S3 on rom1-3,
walking1, walking3, freestyle1-2, acting1-2; 'test' = subjects S1-S5 on walking2, freestyle3,
acting3. The remaining sequences (S4, S5 training actions) are unused in that protocol and
skipped unless `include_unused=True` (then split 'train').

Not read: gt_skel_gbl_ori.txt, the IMU (Xsens) files, the MVV matte videos, the BVH files.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'totcap'
DESCRIPTION = 'TotalCapture: Vicon gt_skel_gbl_pos (21 joints, inches), 8 cameras, 60 fps mp4'
INCH_TO_MM = 25.4
# Header names of gt_skel_gbl_pos.txt -> base names of the 'totcap' skeleton.
HEADER_TO_JOINT = {
    'Hips': 'pelv', 'Spine': 'spin', 'Spine1': 'spin1', 'Spine2': 'spin2', 'Spine3': 'spin3',
    'Neck': 'neck', 'Head': 'head', 'RightShoulder': 'rcla', 'RightArm': 'rsho',
    'RightForeArm': 'relb', 'RightHand': 'rwri', 'LeftShoulder': 'lcla', 'LeftArm': 'lsho',
    'LeftForeArm': 'lelb', 'LeftHand': 'lwri', 'RightUpLeg': 'rhip', 'RightLeg': 'rkne',
    'RightFoot': 'rank', 'LeftUpLeg': 'lhip', 'LeftLeg': 'lkne', 'LeftFoot': 'lank'}
ACTIONS = tuple(f'{a}{i}' for a in ('rom', 'walking', 'freestyle', 'acting') for i in (1, 2, 3))
TRAIN_SUBJECTS = (1, 2, 3)
TRAIN_ACTIONS = ('rom1', 'rom2', 'rom3', 'walking1', 'walking3', 'freestyle1', 'freestyle2',
                 'acting1', 'acting2')
TEST_ACTIONS = ('walking2', 'freestyle3', 'acting3')


def split_of(subject: int, action: str) -> str | None:
    """'train', 'test', or None for sequences outside the protocol."""
    if action in TEST_ACTIONS:
        return 'test'
    if subject in TRAIN_SUBJECTS and action in TRAIN_ACTIONS:
        return 'train'
    return None


def load_calibration(path: pathlib.Path, translation_unit_mm: float = 1000.0
                     ) -> list[tuple[Camera, tuple[int, int]]]:
    """calibration.cal -> [(Camera in mm without world up, (H, W))] for cam1, cam2, ..."""
    path = common.require_file(path, 'the TotalCapture camera calibration (calibration.cal)')
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]

    def numbers(i: int, n: int | None, what: str) -> np.ndarray:
        if i >= len(lines):
            raise common.DatasetFormatError(f'{path}: ends before line {i + 1} ({what})')
        try:
            values = np.array([float(v) for v in lines[i]])
        except ValueError:
            raise common.DatasetFormatError(
                f'{path}: line {i + 1} ({what}) is not numeric: {" ".join(lines[i])}') from None
        if n is not None and len(values) != n:
            raise common.DatasetFormatError(
                f'{path}: line {i + 1} ({what}) has {len(values)} numbers, expected {n}')
        return values

    n_cams, n_dist = numbers(0, 2, 'number of cameras, number of distortion coefficients')
    if not 0 <= n_dist <= 3:
        raise common.DatasetFormatError(
            f'{path}: line 1 declares {int(n_dist)} distortion coefficients; only radial k1, '
            f'k2, k3 (up to 3) are understood')
    cameras = []
    for c in range(int(n_cams)):
        first = 1 + 7 * c
        row0, row1, col0, col1 = numbers(first, 4, f'camera {c + 1} min/max row/col')
        fx, fy, cx, cy = numbers(first + 1, 4, f'camera {c + 1} fx fy cx cy')
        dist = numbers(first + 2, int(n_dist), f'camera {c + 1} distortion')
        R = np.stack([numbers(first + 3 + r, 3, f'camera {c + 1} rotation row {r + 1}')
                      for r in range(3)])
        t = numbers(first + 6, 3, f'camera {c + 1} translation') * translation_unit_mm
        coeffs = np.zeros(5)
        coeffs[:min(len(dist), 2)] = dist[:2]
        coeffs[4:4 + max(len(dist) - 2, 0)] = dist[2:3]  # k3 sits after p1, p2
        try:
            camera = Camera(optical_center=-R.T @ t, rot_world_to_cam=R,
                            intrinsic_matrix=[[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                            distortion_coeffs=coeffs)
        except ValueError as e:
            raise common.DatasetFormatError(f'{path}: camera {c + 1} is invalid ({e})') from None
        cameras.append((camera, (int(row1 - row0 + 1), int(col1 - col0 + 1))))
    world_up = -np.sum([cam.R[1] for cam, _ in cameras], axis=0)
    for cam, _ in cameras:
        cam.world_up = world_up / np.linalg.norm(world_up)
    return cameras


def load_positions(path: pathlib.Path) -> np.ndarray:
    """gt_skel_gbl_pos.txt -> [T, 21, 3] world mm in the 'totcap' skeleton's joint order."""
    path = common.require_file(path, 'Vicon joint positions (gt_skel_gbl_pos.txt)')
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise common.DatasetFormatError(f'{path}: empty file (expected a header of joint names)')
    header = [h.strip() for h in lines[0].split('\t') if h.strip()]
    missing = [h for h in HEADER_TO_JOINT if h not in header]
    if missing:
        raise common.DatasetFormatError(f'{path}: header lacks joints {missing}')
    try:
        values = np.array([[float(v) for v in line.split()] for line in lines[1:]])
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: non-numeric joint position ({e})') from None
    if values.ndim != 2 or values.shape[1] != 3 * len(header):
        raise common.DatasetFormatError(
            f'{path}: every line must hold 3 numbers for each of the {len(header)} header joints')
    values = values.reshape(len(values), len(header), 3) * INCH_TO_MM
    base_names = joints.get_skeleton(SKELETON).names
    joint_of = {HEADER_TO_JOINT[h]: i for i, h in enumerate(header) if h in HEADER_TO_JOINT}
    return values[:, [joint_of[n] for n in base_names]]


def _first_existing(candidates: list[pathlib.Path], what: str) -> pathlib.Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise common.DatasetFormatError(
        f'missing file {candidates[0]} (expected: {what}; also looked for '
        f'{", ".join(str(c) for c in candidates[1:])})')


def _subject_dirs(root: pathlib.Path) -> dict[int, pathlib.Path]:
    found = {}
    for d in root.iterdir():
        match = re.fullmatch(r'[sS](\d+)', d.name)
        if d.is_dir() and match:
            found[int(match.group(1))] = d
    if not found:
        raise common.DatasetFormatError(f'{root}: no subject directories S1 ... S5')
    return dict(sorted(found.items()))


def _check_units(positions: np.ndarray, cameras, pos_path: pathlib.Path,
                 translation_unit_mm: float) -> None:
    """The subject must appear in front of and inside most cameras, else the units are off."""
    frame = positions[len(positions) // 2]
    hits = 0
    for camera, (h, w) in cameras:
        depth = camera.world_to_camera(frame)[:, 2]
        uv = camera.world_to_image(frame)
        inside = (uv[:, 0] > 0) & (uv[:, 0] < w) & (uv[:, 1] > 0) & (uv[:, 1] < h)
        hits += bool(np.median(depth) > 0 and np.all(np.isfinite(uv)) and np.mean(inside) > 0.5)
    if hits < (len(cameras) + 1) // 2:
        raise common.DatasetFormatError(
            f'{pos_path}: the joints project into only {hits} of {len(cameras)} camera images '
            f'with calibration.cal translations read as {translation_unit_mm} mm per unit; '
            f'pass translation_unit_mm= with the file\'s real unit (1000 for metres, 25.4 for '
            f'inches, 10 for cm)')


def convert(root, include_unused: bool = False, translation_unit_mm: float = 1000.0,
            subjects: Iterable[int] | None = None,
            cameras: Iterable[int] | None = None) -> Iterator[Pose3DExample]:
    """Yields one example per (subject, action, camera, frame) of the protocol's sequences.

    Args:
        root: the TotalCapture directory (see module docstring).
        include_unused: also yield the sequences outside the train/test protocol (as 'train').
        translation_unit_mm: millimetres per unit of the calibration's translations.
        subjects: subject numbers to read (default: all present).
        cameras: camera numbers 1..8 to read (default: all in calibration.cal).
    """
    root = common.require_dir(root, 'the TotalCapture root')
    calibration = load_calibration(root / 'calibration.cal', translation_unit_mm)
    cam_numbers = list(range(1, len(calibration) + 1)) if cameras is None else list(cameras)
    bad = [c for c in cam_numbers if not 1 <= c <= len(calibration)]
    if bad:
        raise ValueError(f'{root / "calibration.cal"}: has {len(calibration)} cameras, not {bad}')
    names = joints.union_names(SKELETON)
    subject_dirs = _subject_dirs(root)
    wanted = list(subject_dirs) if subjects is None else list(subjects)
    for subject in wanted:
        if subject not in subject_dirs:
            raise common.DatasetFormatError(f'{root}: no directory for subject S{subject}')
        s_dir = subject_dirs[subject]
        for action in ACTIONS:
            pos_candidates = [s_dir / 'vicon' / action / 'gt_skel_gbl_pos.txt',
                              s_dir / action / 'gt_skel_gbl_pos.txt']
            if not any(p.exists() for p in pos_candidates):
                continue  # not every subject performed every action
            split = split_of(subject, action)
            if split is None and not include_unused:
                # Whole sequences, counted before their files are read (the unit here).
                count_skipped('totcap', 'sequence outside the train/test protocol (sequences)')
                continue
            split = split or 'train'
            pos_path = _first_existing(pos_candidates, 'Vicon joint positions')
            positions = load_positions(pos_path)
            _check_units(positions, calibration, pos_path, translation_unit_mm)
            sequence = f'S{subject}/{action}'
            for cam_number in cam_numbers:
                camera, imshape = calibration[cam_number - 1]
                video_name = f'TC_S{subject}_{action}_cam{cam_number}.mp4'
                video = _first_existing([s_dir / 'video' / action / video_name,
                                         s_dir / action / video_name],
                                        f'camera {cam_number} video of {sequence}')
                n_frames = min(common.video_frame_count(video), len(positions))
                count_skipped('totcap', 'frame beyond the end of the video',
                              len(positions) - n_frames)
                projected = camera.world_to_image(positions[:n_frames])
                for frame in range(n_frames):
                    yield Pose3DExample(
                        image=common.VideoFrame(video, frame), camera=camera.copy(),
                        world_coords=positions[frame], joint_names=names,
                        box=common.box_around_points(projected[frame], imshape=imshape),
                        dataset='totcap', sequence=sequence, person=subject,
                        camera_id=f'cam{cam_number}', frame=frame, split=split)
