"""Converter for 3DPeople (synthetic dressed humans, 4 cameras, 640x480 renders).

Expected layout under `root`: the per-modality archives from the 3DPeople page
(albertpumarola.com/research/3DPeople), extracted in place, as the dataset's own visualisation
notebook (github.com/albertpumarola/3DPeople-Dataset, vis_dataset.ipynb) reads them:

    <root>/
        rgb/<subject>/<action>/camera0<c>/<one subdirectory>/<frame:04d>.jpg
        skeleton/<subject>/<action>/camera0<c>/<frame:04d>.txt
        segmentation_clothes/<subject>/<action>/camera0<c>/<frame:04d>.png

e.g. subject 'woman17', action '02_04_jump'. A skeleton file has one row per rig joint (67
rows) of 5 columns: x2D y2D (px of that camera's image) and X Y Z (world, decimetres); the
notebook skips a leading 0000.txt, which has no image (rest pose).

Joints: the 29 body joints at rows 0-13, 33-36, 53, 57-66 ('3dpeople' skeleton; the rows of the
reference loader). The joint-id list in the dataset repository (skeleton_joints_ids_order)
disagrees for rows 6-8 and the legs: its order would put 'HeadTop_End' at row 6, but in the
repository's own example data row 8 is the highest point, so the reference's reading is used.
Units: decimetres -> millimetres (x 100).

Cameras: the release ships no calibration. The renders use a 640x480 pinhole with f = 700 px
and the principal point at the centre (the reference loader's values); the extrinsics of each
image are solved from its own 2D-3D rows (OpenCV solvePnP). Fits with an RMS reprojection error
above `max_fit_rms_px` = 2 px are refused as not matching that camera model.

Mask: segmentation_clothes pixels differing from the grey background (153, 153, 153) by more
than 10 in some channel; box = the mask's extent.

Split: everything is 'train' (the paper trains on 3DPeople only).
Tracks: sequence = '<subject>/<action>', person = 0, camera_id = 'camera0<c>', frame = file
number. Not read: depth, normals, optical flow, body segmentation.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera, camera_pose_from_projection
from posepile.cropping import encode_rle
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = '3dpeople'
DESCRIPTION = '3DPeople: skeleton txt (67 rig joints, dm) per camera, 640x480 renders'
N_ROWS = 67
SELECTED_ROWS = (*range(14), *range(33, 37), 53, *range(57, 67))
IMAGE_SHAPE = (480, 640)
FOCAL_PX = 700.0
INTRINSIC_MATRIX = ((FOCAL_PX, 0.0, (IMAGE_SHAPE[1] - 1) / 2),
                    (0.0, FOCAL_PX, (IMAGE_SHAPE[0] - 1) / 2), (0.0, 0.0, 1.0))
MM_PER_UNIT = 100.0
BACKGROUND_GREY = 153
_FRAME = re.compile(r'^(\d+)\.jpg$')
_CAMERA = re.compile(r'^camera\d+$')


def load_skeleton(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """([67, 2] px, [67, 3] world mm) from one skeleton txt."""
    common.require_file(path, f'a 3DPeople skeleton ({N_ROWS} rows: x2D y2D X Y Z)')
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: not a number table ({e})') from None
    if table.shape != (N_ROWS, 5):
        raise common.DatasetFormatError(
            f'{path}: has shape {table.shape}, expected [{N_ROWS}, 5] (x2D y2D X Y Z)')
    return table[:, :2], table[:, 2:] * MM_PER_UNIT


def solve_camera(points2d: np.ndarray, points3d: np.ndarray, where: str,
                 max_rms_px: float) -> Camera:
    """The fixed-intrinsics camera whose pose best projects points3d (mm) onto points2d (px)."""
    try:
        camera = camera_pose_from_projection(points3d, points2d, INTRINSIC_MATRIX)
    except ValueError as e:
        raise common.DatasetFormatError(f'{where}: {e}') from None
    rms = np.sqrt(np.mean(np.sum((camera.world_to_image(points3d) - points2d) ** 2, axis=1)))
    if not rms <= max_rms_px:
        raise common.DatasetFormatError(
            f'{where}: the 2D rows are not a {IMAGE_SHAPE[1]}x{IMAGE_SHAPE[0]}, f={FOCAL_PX:g} '
            f'projection of the 3D rows (RMS {rms:.2f} px > {max_rms_px} px)')
    return camera


def load_mask(path: pathlib.Path) -> np.ndarray:
    import cv2
    common.require_file(path, 'a 3DPeople clothes segmentation (png)')
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise common.DatasetFormatError(f'{path}: not a readable PNG image')
    return np.any(np.abs(image.astype(np.int32) - BACKGROUND_GREY) > 10, axis=2)


def convert(root, max_fit_rms_px: float = 2.0) -> Iterator[Pose3DExample]:
    """Yields one example per (sequence, camera, frame image)."""
    root = common.require_dir(root, 'the 3DPeople directory (rgb/, skeleton/, ...)')
    rgb_root = common.require_dir(root / 'rgb', 'the 3DPeople rgb images')
    names = joints.union_names(SKELETON)
    rows = list(SELECTED_ROWS)
    camera_dirs = sorted(p for p in rgb_root.glob('*/*/*') if p.is_dir() and _CAMERA.match(p.name))
    for camera_dir in camera_dirs:
        relative = camera_dir.relative_to(rgb_root)
        subject, action = relative.parts[0], relative.parts[1]
        frames = sorted((int(m.group(1)), p) for p in camera_dir.glob('*/*.jpg')
                        if (m := _FRAME.match(p.name)))
        for frame, image_path in frames:
            stem = image_path.stem
            skeleton_path = root / 'skeleton' / relative / f'{stem}.txt'
            points2d, world = load_skeleton(skeleton_path)
            camera = solve_camera(points2d, world, str(skeleton_path), max_fit_rms_px)
            mask = load_mask(root / 'segmentation_clothes' / relative / f'{stem}.png')
            if not mask.any():
                count_skipped('tdpeople', 'empty person mask')
                continue
            ys, xs = np.nonzero(mask)
            box = np.array([xs.min() - 0.5, ys.min() - 0.5, xs.max() - xs.min() + 1,
                            ys.max() - ys.min() + 1], np.float32)
            yield Pose3DExample(
                image=str(image_path), camera=camera, world_coords=world[rows],
                joint_names=names, box=box, dataset='tdpeople',
                sequence=f'{subject}/{action}', person=0, camera_id=camera_dir.name,
                frame=frame, split='train', mask=encode_rle(mask))
