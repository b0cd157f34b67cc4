"""Converter for HUMAN4D (4 subjects, 4 RGBD cameras, Vicon mocap; 33-joint global poses).

Expected layout under `root` (the release from tofis.github.io/human4d_dataset, extracted so
that frames have paths like S2/19-07-12-09-09-06/Dump/color/438_M72h_color_46613.png):

    <root>/S<k>/
        device_repository.json                list of {'Device': camera name,
                                               'Color Intrinsics': [{'1280x720': 9 numbers}]}
        pose/<camera name>.extrinsics         4 rows of 3: rows 0-2 = R^T (R world->camera),
                                               row 3 = optical centre (world, mm)
        offsets.txt                           '<recording>\\t<offset1>\\t<offset2>' per line
        <recording>/Dump/color/<frame>_<camera>_color_<n>.png
        <recording>/Dump/gposes3d/<index>.npy  [1, 33, 3] joints, mm, world

Frame <frame> of a recording shows pose <frame> - (offset1 - 1) (offset1 from offsets.txt);
frames before the first pose or without a pose file are skipped (the release has gaps; the
reference loader skips them the same way).

Joints: all 33 rows of gposes3d ('human4d' skeleton; the reference loader drops row 15, one of
the two points between spine and shoulders, which is kept here as 'lcla'). Units: mm, as the
reference loader uses them together with the unscaled extrinsic translations.
No distortion (none is distributed). World up is not documented; cameras keep the default
(-y), as in the reference loader. Boxes: projected joints + 10 % per side; boxes whose
larger side is below `min_box_side_px` = 30 px are skipped (reference threshold).

Split: everything is 'train' (the paper uses HUMAN4D for training only).
Tracks: sequence = 'S<k>/<recording>', person = 0, camera_id = camera name.

Not read: depth, the mocap marker files, offset2, cameras lacking a .extrinsics file.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'human4d'
DESCRIPTION = 'HUMAN4D: Dump/gposes3d (33 joints, mm) with RGB png frames of 4 cameras'
N_JOINTS = 33
INTRINSICS_KEY = '1280x720'
_COLOR_FILE = re.compile(r'^(\d+)_([^_]+)_color_\d+\.png$')
_SUBJECT = re.compile(r'^S\d+$')


def load_cameras(subject_dir: pathlib.Path) -> dict[str, Camera]:
    """Cameras of one subject's session, by name (those with a .extrinsics file)."""
    path = subject_dir / 'device_repository.json'
    devices = common.load_json(common.require_file(path, 'the camera device repository'))
    if not isinstance(devices, list):
        raise common.DatasetFormatError(f'{path}: expected a list of devices')
    cameras = {}
    for i, device in enumerate(devices):
        where = f'{path} [device {i}]'
        name = str(common.get_field(device, 'Device', where))
        intrinsics = common.get_field(device, 'Color Intrinsics', where)
        try:
            K = np.asarray(intrinsics[0][INTRINSICS_KEY], np.float64).reshape(3, 3)
        except (KeyError, IndexError, TypeError, ValueError):
            raise common.DatasetFormatError(
                f'{where}: field "Color Intrinsics" lacks 9 numbers under '
                f'[0][{INTRINSICS_KEY!r}]') from None
        extrinsics_path = subject_dir / 'pose' / f'{name}.extrinsics'
        if not extrinsics_path.is_file():
            continue
        try:
            matrix = np.loadtxt(extrinsics_path, dtype=np.float64, ndmin=2)
        except ValueError as e:
            raise common.DatasetFormatError(
                f'{extrinsics_path}: not a number table ({e})') from None
        if matrix.shape != (4, 3):
            raise common.DatasetFormatError(
                f'{extrinsics_path}: has shape {matrix.shape}, expected [4, 3] (R^T rows, then '
                f'the optical centre)')
        try:
            cameras[name] = Camera(optical_center=matrix[3], rot_world_to_cam=matrix[:3].T,
                                   intrinsic_matrix=K)
        except ValueError as e:
            raise common.DatasetFormatError(f'{extrinsics_path}: invalid camera ({e})') from None
    return cameras


def load_offsets(subject_dir: pathlib.Path) -> dict[str, int]:
    """{recording: offset1} from offsets.txt."""
    path = common.require_file(subject_dir / 'offsets.txt',
                               'lines "<recording>\\t<offset1>\\t<offset2>"')
    offsets = {}
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        fields = line.split('\t')
        try:
            offsets[fields[0].strip()] = int(fields[1])
        except (IndexError, ValueError):
            raise common.DatasetFormatError(
                f'{path}: line {i + 1} should be "<recording>\\t<offset1>\\t<offset2>", got '
                f'{line!r}') from None
    return offsets


def load_pose(path: pathlib.Path) -> np.ndarray:
    try:
        pose = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise common.DatasetFormatError(f'{path}: not a readable .npy array ({e})') from e
    if pose.shape not in ((1, N_JOINTS, 3), (N_JOINTS, 3)):
        raise common.DatasetFormatError(
            f'{path}: has shape {pose.shape}, expected [1, {N_JOINTS}, 3]')
    return pose.reshape(N_JOINTS, 3).astype(np.float64)


def convert(root, min_box_side_px: float = 30.0) -> Iterator[Pose3DExample]:
    """Yields one example per (recording, camera, frame with a pose), tracks in frame order."""
    root = common.require_dir(root, 'the HUMAN4D directory (S1..S4)')
    names = joints.union_names(SKELETON)
    subjects = sorted(p for p in root.iterdir() if p.is_dir() and _SUBJECT.match(p.name))
    if not subjects:
        raise common.DatasetFormatError(f'{root}: no S<k> subject directories')
    for subject_dir in subjects:
        cameras = load_cameras(subject_dir)
        offsets = load_offsets(subject_dir)
        recordings = sorted(p.parent for p in subject_dir.glob('*/Dump') if p.is_dir())
        for dump_parent in recordings:
            recording = dump_parent.name
            if recording not in offsets:
                raise common.DatasetFormatError(
                    f'{subject_dir / "offsets.txt"}: no line for recording {recording!r}')
            delta = offsets[recording] - 1
            color_dir = dump_parent / 'Dump' / 'color'
            if not color_dir.is_dir():
                count_skipped('human4d', 'recording without Dump/color images (recordings)')
                continue
            by_camera: dict[str, list[tuple[int, pathlib.Path]]] = {}
            for path in color_dir.iterdir():
                if m := _COLOR_FILE.match(path.name):
                    by_camera.setdefault(m.group(2), []).append((int(m.group(1)), path))
            for camera_name in sorted(by_camera):
                if camera_name not in cameras:
                    count_skipped('human4d', 'camera without a .extrinsics file',
                                  len(by_camera[camera_name]))
                    continue
                camera = cameras[camera_name]
                for frame, image_path in sorted(by_camera[camera_name]):
                    pose_path = dump_parent / 'Dump' / 'gposes3d' / f'{frame - delta}.npy'
                    if frame - delta < 0 or not pose_path.is_file():
                        count_skipped('human4d', 'frame without a pose file')
                        continue
                    world = load_pose(pose_path)
                    finite = np.all(np.isfinite(world), axis=1)
                    box = common.box_around_points(camera.world_to_image(world[finite]))
                    if not np.isfinite(box).all():
                        count_skipped('human4d', 'frame without any valid joint')
                        continue
                    if max(box[2:]) < min_box_side_px:
                        count_skipped('human4d', 'box smaller than min_box_side_px')
                        continue
                    yield Pose3DExample(
                        image=str(image_path), camera=camera.copy(), world_coords=world,
                        joint_names=names, box=box, dataset='human4d',
                        sequence=f'{subject_dir.name}/{recording}', person=0,
                        camera_id=camera_name, frame=frame, split='train',
                        extra={'pose_index': frame - delta})
