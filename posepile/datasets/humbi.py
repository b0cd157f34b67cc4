"""Converter for HUMBI body (multiview; 107 synchronised 1920x1080 cameras; OpenPose BODY_25
keypoints triangulated per frame).

Expected layout under `root`: the per-subject archives subject_<N>.zip from humbi-data.net
extracted in place (the body part):

    <root>/subject_<N>/body/
        extrinsic.txt                 3 header lines, then per camera 5 lines:
                                        '<label> <camera index>', optical centre (3 numbers, m,
                                        world), world->camera rotation (3 rows of 3)
        intrinsic.txt                 3 header lines, then per camera 4 lines:
                                        '<label> <camera index>', K (3 rows of 3, px)
        <frame:08d>/image/image<camera index>.jpg
        <frame:08d>/reconstruction/keypoints.txt     [25, 3] BODY_25 keypoints, m, world
        <frame:08d>/reconstruction/smpl_parameter.txt   (not read)

Joints: the 25 OpenPose BODY_25 keypoints in file order ('humbi' skeleton, 'coco' tag, as
DESIGN.md: HUMBI contributes its COCO-like joints only; the SMPL fit is not read because it
needs the SMPL model). Metres -> millimetres. World up is taken as -y (as the reference loader).
No distortion (none is distributed).

Boxes: the projected keypoints' extent plus 10 % per side (no boxes ship with HUMBI).

Split: everything is 'train' (the paper uses HUMBI for training only). Images listed in
`ignore_images` (paths relative to root) are skipped: the release contains a few hundred broken
JPEGs, which the reference loader lists beforehand in the same way.

Tracks: sequence = 'subject_<N>', person = N, camera_id = camera index, frame = the frame
directory's number. Images whose camera index is missing from the calibration files are skipped
(the release has such gaps).

Not read: face/hand/garment parts, smpl_parameter.txt.
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

SKELETON = 'humbi'
DESCRIPTION = 'HUMBI body: BODY_25 keypoints (m) per frame, 107-camera calibration, jpg frames'
N_JOINTS = 25
_SUBJECT_DIR = re.compile(r'^subject_(\d+)$')
_IMAGE_FILE = re.compile(r'^image(\d+)\.jpg$')
_HEADER_LINES = 3


def _numbers(line: str, count: int, path: pathlib.Path, line_no: int) -> np.ndarray:
    try:
        values = np.array([float(v) for v in line.split()])
    except ValueError:
        values = np.zeros(0)
    if values.size != count:
        raise common.DatasetFormatError(
            f'{path}: line {line_no + 1} should hold {count} numbers, got {line.strip()!r}')
    return values


def _camera_blocks(path: pathlib.Path, block_lines: int) -> dict[int, list[np.ndarray]]:
    """{camera index: [rows of numbers]} from a HUMBI calibration file."""
    lines = [l for l in common.require_file(path, 'HUMBI camera calibration').read_text()
             .splitlines()]
    body = lines[_HEADER_LINES:]
    while body and not body[-1].strip():
        body.pop()
    if len(body) % block_lines:
        raise common.DatasetFormatError(
            f'{path}: {len(body)} lines after the {_HEADER_LINES}-line header, expected blocks '
            f'of {block_lines}')
    blocks = {}
    for start in range(0, len(body), block_lines):
        line_no = _HEADER_LINES + start
        label = body[start].split()
        try:
            index = int(label[-1])
        except (ValueError, IndexError):
            raise common.DatasetFormatError(
                f'{path}: line {line_no + 1} should be "<label> <camera index>", got '
                f'{body[start].strip()!r}') from None
        blocks[index] = [_numbers(body[start + k], 3, path, line_no + k)
                         for k in range(1, block_lines)]
    return blocks


def load_cameras(body_dir: pathlib.Path) -> dict[int, Camera]:
    """Cameras of one subject in mm, by camera index (only those in both files)."""
    extrinsics = _camera_blocks(body_dir / 'extrinsic.txt', 5)
    intrinsics = _camera_blocks(body_dir / 'intrinsic.txt', 4)
    cameras = {}
    for index in sorted(set(extrinsics) & set(intrinsics)):
        centre, *rotation = extrinsics[index]
        try:
            cameras[index] = Camera(optical_center=centre * 1000.0,
                                    rot_world_to_cam=np.stack(rotation),
                                    intrinsic_matrix=np.stack(intrinsics[index]),
                                    world_up=(0, -1, 0))
        except ValueError as e:
            raise common.DatasetFormatError(
                f'{body_dir}/extrinsic.txt, intrinsic.txt: camera {index} is invalid ({e})'
            ) from None
    return cameras


def load_keypoints(path: pathlib.Path) -> np.ndarray:
    """[25, 3] keypoints in mm (NaN where the file has none)."""
    common.require_file(path, 'BODY_25 keypoints, 25 rows of x y z in metres')
    try:
        coords = np.genfromtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: not a number table ({e})') from None
    if coords.shape != (N_JOINTS, 3):
        raise common.DatasetFormatError(
            f'{path}: has shape {coords.shape}, expected [{N_JOINTS}, 3] (BODY_25, metres)')
    return coords * 1000.0


def convert(root, ignore_images: Iterable[str] = ()) -> Iterator[Pose3DExample]:
    """Yields one example per (subject, frame, camera image).

    Args:
        root: the directory holding the extracted subject_<N> folders.
        ignore_images: image paths relative to `root` to skip (known-broken JPEGs).
    """
    root = common.require_dir(root, 'the HUMBI directory (subject_<N>/body/...)')
    ignored = {str(pathlib.PurePosixPath(p)) for p in ignore_images}
    names = joints.union_names(SKELETON)
    subjects = sorted((int(m.group(1)), p) for p in root.iterdir()
                      if p.is_dir() and (m := _SUBJECT_DIR.match(p.name)))
    if not subjects:
        raise common.DatasetFormatError(f'{root}: no subject_<N> directories')
    for subject, subject_dir in subjects:
        body_dir = subject_dir / 'body'
        if not body_dir.is_dir():
            continue
        cameras = load_cameras(body_dir)
        frame_dirs = sorted((int(p.name), p) for p in body_dir.iterdir()
                            if p.is_dir() and p.name.isdigit())
        for frame, frame_dir in frame_dirs:
            image_dir = frame_dir / 'image'
            if not image_dir.is_dir():
                continue
            images = sorted((int(m.group(1)), p) for p in image_dir.iterdir()
                            if (m := _IMAGE_FILE.match(p.name)))
            if not images:
                continue
            world = load_keypoints(frame_dir / 'reconstruction' / 'keypoints.txt')
            if not np.isfinite(world).any():
                count_skipped('humbi', 'frame without any valid joint', len(images))
                continue
            for camera_index, image_path in images:
                relative = image_path.relative_to(root).as_posix()
                if relative in ignored:
                    count_skipped('humbi', 'image on the ignore_images list')
                    continue
                if camera_index not in cameras:
                    count_skipped('humbi', 'camera missing from the calibration files')
                    continue
                camera = cameras[camera_index]
                finite = np.all(np.isfinite(world), axis=1)
                yield Pose3DExample(
                    image=str(image_path), camera=camera.copy(), world_coords=world,
                    joint_names=names,
                    box=common.box_around_points(camera.world_to_image(world[finite])),
                    dataset='humbi', sequence=subject_dir.name, person=subject,
                    camera_id=str(camera_index), frame=frame, split='train')
