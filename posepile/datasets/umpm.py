"""Converter for UMPM (Utrecht Multi-Person Motion benchmark): 1-2 people, 4 cameras, mocap.

Expected layout under `root` (the calibration archive umpm_camcalib1.zip and one archive per
sequence, e.g. p2_chair_1.zip, extracted side by side; .avi.xz videos decompressed):

    <root>/
        Calib/<calibration>_<camera>.ini       camera in l, r, s, f; six text lines: 3 rows of K,
                                               distortion 'k1 k2 p1 p2', Rodrigues rotation
                                               vector, translation (mm; x_cam = R @ x + t)
        <sequence>/                            e.g. p2_chair_1
            <sequence>.json                    {'id': <sequence>, 'calib': <calibration>, ...}
                                               (a trailing comma, present in some released files,
                                               is tolerated)
            Groundtruth/<sequence>_vm.c3d      15 virtual-marker joints per person (30 rows for
                                               two people), 100 Hz, mm
            Video/<sequence>_<camera>.avi      50 fps, 644x486

Frames: the ground truth runs at twice the video rate; video frame i shows C3D frame 2i (the
public loaders drop every second mocap frame the same way). Frames beyond the shorter of the two
are skipped.

Units and frames: millimetres, the mocap world frame (z up). Joints: the 15 'umpm' joints in the
C3D's order (pelvis, neck, head, right shoulder/elbow/wrist, left ditto, right hip, left hip,
right knee, left knee, right ankle, left ankle).

Split: UMPM defines no train/test split in its release and the 3D pose literature uses it as
training data only, so every example is 'train'. Tracks: sequence = the sequence name,
person = 0 or 1 (row block of the C3D), camera_id = l / r / s / f. A person is skipped in frames
where none of their joints is valid.

Not read: Groundtruth/*_ik.c3d (the fitted skeleton), the marker c3d files, backgrounds.
"""
from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np
from scipy.spatial.transform import Rotation

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.datasets._c3d import read_c3d
from posepile.example import Pose3DExample

SKELETON = 'umpm'
DESCRIPTION = 'UMPM: Groundtruth/*_vm.c3d (15 joints per person, 100 Hz), 4 cameras at 50 fps'
CAMERA_IDS = ('l', 'r', 's', 'f')
N_JOINTS = 15
MOCAP_FRAMES_PER_VIDEO_FRAME = 2


def load_sequence_info(path: pathlib.Path) -> dict:
    """<sequence>.json, tolerating the trailing comma some released files have."""
    path = common.require_file(path, "the sequence's settings ({'id': ..., 'calib': ...})")
    text = path.read_text()
    try:
        info = json.loads(re.sub(r',\s*([}\]])', r'\1', text))
    except json.JSONDecodeError as e:
        raise common.DatasetFormatError(f'{path}: not valid JSON ({e})') from e
    common.get_field(info, 'calib', path)
    return info


def load_camera(path: pathlib.Path) -> Camera:
    """One Calib/<calibration>_<camera>.ini (see module docstring) as a Camera in mm, z up."""
    path = common.require_file(path, 'UMPM camera calibration (K, distortion, rvec, t)')
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 6:
        raise common.DatasetFormatError(
            f'{path}: has {len(lines)} lines, expected 6 (3 rows of K, distortion, rotation, '
            f'translation)')
    try:
        rows = [np.array([float(v) for v in line]) for line in lines[:6]]
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: non-numeric calibration value ({e})') from None
    whats = ('K', 'K', 'K', 'distortion', 'rotation', 'translation')
    for i, (row, n, what) in enumerate(zip(rows, (3, 3, 3, None, 3, 3), whats)):
        if n is not None and len(row) != n:
            raise common.DatasetFormatError(
                f'{path}: line {i + 1} ({what}) has {len(row)} numbers, expected {n}')
    R = Rotation.from_rotvec(rows[4]).as_matrix()
    try:
        return Camera(optical_center=-R.T @ rows[5], rot_world_to_cam=R,
                      intrinsic_matrix=np.stack(rows[:3]), distortion_coeffs=rows[3],
                      world_up=(0, 0, 1))
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: invalid camera ({e})') from None


def _sequence_dirs(root: pathlib.Path, sequences: Iterable[str] | None) -> list[pathlib.Path]:
    if sequences is not None:
        return [common.require_dir(common.safe_path(root, s), f'UMPM sequence {s}')
                for s in sequences]
    found = sorted(d for d in root.iterdir() if d.is_dir() and (d / f'{d.name}.json').is_file())
    if not found:
        raise common.DatasetFormatError(f'{root}: no sequence directories with <sequence>.json')
    return found


def convert(root, sequences: Iterable[str] | None = None,
            cameras: Iterable[str] = CAMERA_IDS) -> Iterator[Pose3DExample]:
    """Yields one example per (sequence, camera, person, video frame).

    Args:
        root: the UMPM directory (see module docstring).
        sequences: sequence names (default: every directory with a <sequence>.json).
        cameras: any of 'l', 'r', 's', 'f'.
    """
    root = common.require_dir(root, 'the UMPM root')
    camera_ids = list(cameras)
    unknown = [c for c in camera_ids if c not in CAMERA_IDS]
    if unknown:
        raise ValueError(f'unknown UMPM cameras {unknown}; expected some of {CAMERA_IDS}')
    names = joints.union_names(SKELETON)
    for seq_dir in _sequence_dirs(root, sequences):
        seq = seq_dir.name
        info_path = seq_dir / f'{seq}.json'
        calib = str(load_sequence_info(info_path)['calib'])
        c3d_path = seq_dir / 'Groundtruth' / f'{seq}_vm.c3d'
        points = read_c3d(c3d_path).points[::MOCAP_FRAMES_PER_VIDEO_FRAME]
        if points.shape[1] % N_JOINTS or points.shape[1] == 0:
            raise common.DatasetFormatError(
                f'{c3d_path}: has {points.shape[1]} points per frame, expected {N_JOINTS} per '
                f'person (15 or 30)')
        per_person = points.reshape(len(points), -1, N_JOINTS, 3)
        labelled = np.isfinite(per_person).all(axis=3)
        for camera_id in camera_ids:
            camera = load_camera(common.safe_path(root / 'Calib', f'{calib}_{camera_id}.ini',
                                                  info_path))
            video = seq_dir / 'Video' / f'{seq}_{camera_id}.avi'
            n_frames = min(common.video_frame_count(video), len(per_person))
            count_skipped('umpm', 'frame beyond the end of the video (person-frames)',
                          (len(per_person) - n_frames) * per_person.shape[1])
            for frame in range(n_frames):
                for person in range(per_person.shape[1]):
                    ok = labelled[frame, person]
                    if not ok.any():
                        count_skipped('umpm', 'person-frame without any valid joint')
                        continue
                    coords = per_person[frame, person]
                    yield Pose3DExample(
                        image=common.VideoFrame(video, frame), camera=camera.copy(),
                        world_coords=coords, joint_names=names,
                        box=common.box_around_points(camera.world_to_image(coords[ok])),
                        dataset='umpm', sequence=seq, person=person, camera_id=camera_id,
                        frame=frame, split='train', extra={'calib': calib})
