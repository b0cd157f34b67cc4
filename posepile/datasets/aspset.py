"""Converter for ASPset-510 (Australian Sports Pose dataset; 17 subjects x 30 clips, 3 cameras).

Expected layout under `root`: the archives aspset510_v1_{trainval,test}-{cameras,joints_3d,
videos}.tar.gz extracted as the official toolkit (github.com/anibali/aspset-510) does it, plus
the toolkit's splits.csv:

    <root>/
        splits.csv                                     rows '<subject>,<clip>,<train|val|test>'
        trainval/ and test/
            cameras/<subject>/<subject>-<camera>.json  {'intrinsic_matrix': 3x4 (12 numbers),
                                                         'extrinsic_matrix': 4x4 (16 numbers)}
            joints_3d/<subject>/<subject>-<clip>.c3d   17 joints per frame, 50 fps
            videos/<subject>/<subject>-<clip>-<camera>.mkv   camera in left, mid, right

Clips of the 'test' split live under test/, the others under trainval/ (as in the toolkit).

Units and frames: the C3D points are converted to millimetres through their POINT:UNITS; the
extrinsic matrix maps world to camera coordinates (x_cam = E[:3, :3] @ x + E[:3, 3]) and is
taken to be in millimetres like the joints (the toolkit projects the C3D points with it without
conversion). Images come undistorted, so cameras have no distortion. World up is the mean
image-up direction of the subject's cameras.

Joints: the 17 'aspset' joints in the C3D's row order (right ankle, knee, hip, wrist, elbow,
shoulder, left ditto, head top, head, neck, spine, pelvis); the labels stored in the file are
kept in `extra['c3d_labels']`.

Split: splits.csv ('val' -> 'validation'). Tracks: sequence = '<subject>-<clip>', person = 0,
camera_id = 'left' / 'mid' / 'right'. Frame i of the C3D is frame i of each video; frames
beyond the shorter of the two, and frames without any valid joint, are skipped.

Not read: boxes/ (the per-frame person boxes are recomputed from the projected joints).
"""
from __future__ import annotations

import csv
import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.datasets._c3d import read_c3d
from posepile.example import Pose3DExample

SKELETON = 'aspset'
DESCRIPTION = 'ASPset-510: joints_3d C3D (17 joints), 3 cameras (left/mid/right), 50 fps mkv'
CAMERA_IDS = ('left', 'mid', 'right')
N_JOINTS = 17
_SPLITS = {'train': 'train', 'val': 'validation', 'test': 'test'}


def load_splits(root: pathlib.Path) -> list[tuple[str, str, str]]:
    """[(subject, clip, split)] from splits.csv, split in train / validation / test."""
    path = common.require_file(root / 'splits.csv', 'rows "<subject>,<clip>,<train|val|test>"')
    rows = []
    with open(path, newline='') as f:
        for i, row in enumerate(csv.reader(f)):
            if not row:
                continue
            if len(row) != 3 or row[2] not in _SPLITS:
                raise common.DatasetFormatError(
                    f'{path}: line {i + 1} should be "<subject>,<clip>,<train|val|test>", '
                    f'got {row}')
            rows.append((row[0], row[1], _SPLITS[row[2]]))
    return rows


def load_camera(path: pathlib.Path) -> Camera:
    """One <subject>-<camera>.json: the camera in mm, world up still the default."""
    record = common.load_json(path)
    intrinsic = common.get_field(record, 'intrinsic_matrix', path, (None,)).reshape(-1)
    extrinsic = common.get_field(record, 'extrinsic_matrix', path, (None,)).reshape(-1)
    if intrinsic.size != 12:
        raise common.DatasetFormatError(
            f'{path}: field "intrinsic_matrix" has {intrinsic.size} numbers, expected 3x4 = 12')
    if extrinsic.size != 16:
        raise common.DatasetFormatError(
            f'{path}: field "extrinsic_matrix" has {extrinsic.size} numbers, expected 4x4 = 16')
    intrinsic, extrinsic = intrinsic.reshape(3, 4), extrinsic.reshape(4, 4)
    R, t = extrinsic[:3, :3], extrinsic[:3, 3]
    try:
        return Camera(optical_center=-R.T @ t, rot_world_to_cam=R,
                      intrinsic_matrix=intrinsic[:, :3])
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: invalid camera ({e})') from None


def _subject_cameras(part_dir: pathlib.Path, subject: str,
                     camera_ids: list[str]) -> dict[str, Camera]:
    cameras = {c: load_camera(common.safe_path(part_dir / 'cameras',
                                               f'{subject}/{subject}-{c}.json'))
               for c in camera_ids}
    world_up = -np.sum([cam.R[1] for cam in cameras.values()], axis=0)
    for cam in cameras.values():
        cam.world_up = world_up / np.linalg.norm(world_up)
    return cameras


def convert(root, splits: Iterable[str] = ('train', 'validation', 'test'),
            cameras: Iterable[str] = CAMERA_IDS) -> Iterator[Pose3DExample]:
    """Yields one example per (clip, camera, frame).

    Args:
        root: the extracted ASPset-510 directory (see module docstring).
        splits: which of 'train', 'validation', 'test' to read.
        cameras: which of 'left', 'mid', 'right' to read.
    """
    root = common.require_dir(root, 'the ASPset-510 data directory')
    splits, camera_ids = set(splits), list(cameras)
    unknown = [c for c in camera_ids if c not in CAMERA_IDS]
    if unknown:
        raise ValueError(f'unknown ASPset cameras {unknown}; expected some of {CAMERA_IDS}')
    names = joints.union_names(SKELETON)
    camera_cache: dict[tuple[str, str], dict[str, Camera]] = {}
    for subject, clip, split in load_splits(root):
        if split not in splits:
            continue
        part_dir = common.require_dir(root / ('test' if split == 'test' else 'trainval'),
                                      f'the ASPset-510 {split} files')
        key = (str(part_dir), subject)
        if key not in camera_cache:
            camera_cache[key] = _subject_cameras(part_dir, subject, camera_ids)
        c3d_path = common.safe_path(part_dir / 'joints_3d', f'{subject}/{subject}-{clip}.c3d',
                                    root / 'splits.csv')
        mocap = read_c3d(c3d_path)
        if mocap.points.shape[1] != N_JOINTS:
            raise common.DatasetFormatError(
                f'{c3d_path}: has {mocap.points.shape[1]} points per frame, expected {N_JOINTS}')
        coords = mocap.points
        labelled = np.isfinite(coords).all(axis=2)
        for camera_id in camera_ids:
            camera = camera_cache[key][camera_id]
            video = common.safe_path(part_dir / 'videos',
                                     f'{subject}/{subject}-{clip}-{camera_id}.mkv')
            n_frames = min(common.video_frame_count(video), len(coords))
            count_skipped('aspset', 'frame beyond the end of the video', len(coords) - n_frames)
            for frame in range(n_frames):
                if not labelled[frame].any():
                    count_skipped('aspset', 'frame without any valid joint')
                    continue
                projected = camera.world_to_image(coords[frame][labelled[frame]])
                yield Pose3DExample(
                    image=common.VideoFrame(video, frame), camera=camera.copy(),
                    world_coords=coords[frame], joint_names=names,
                    box=common.box_around_points(projected), dataset='aspset',
                    sequence=f'{subject}-{clip}', person=0, camera_id=camera_id, frame=frame,
                    split=split, extra={'subject': subject, 'c3d_labels': mocap.labels})
