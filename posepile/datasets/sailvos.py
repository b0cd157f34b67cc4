"""Converter for SAIL-VOS 3D human poses (GTA-V; the per-person pose release).

The pose files are not public: the SAIL-VOS maintainers hand them out on request. Their format
is not documented anywhere public, so this converter follows the file layout and conventions of
the reference (PosePile) loader of the paper's authors:

    <root>/
        <sequence>/
            images/<frame:06d>.bmp                 (or .jpg) the video frames
            visible/<frame:06d>.npz                'visible_ids' [H, W] int: object id per pixel
            <object id>_<name>/                    one directory per object; people have
                <frame:06d>_3d.txt                 a *_3d.txt per frame: [K, 3] game-rig points,
                                                   metres, world frame; all-zero rows = missing
                <frame:06d>_camera.npz             'extrinsics' [4, 4] world -> camera (metres),
                                                   'intrinsics' [3, 3] px (NaN: no camera)
                <frame:06d>_2d.txt                 (not read)
                <frame:06d>.png                    amodal mask (255 = the person incl. occluded
                                                   parts), used for the occlusion fraction

Joints: the 26 'sailvos' joints, each the mean of a fixed group of raw rig point indices
(`JOINT_POINT_GROUPS`, the reference loader's groups; raw points have no public names).
Missing (all-zero) points are ignored in the mean; a joint with none is NaN.

Units and frames: metres -> millimetres. The GTA world is z-up. Raw world coordinates reach
several kilometres, so each sequence's world origin is moved to the mean camera position of
that sequence (a pure translation, applied to cameras and joints alike; `extra['origin_mm']`).

Masks and boxes: the person's modal mask is `visible_ids == object id`; the box is that mask's
extent. (The reference replaces it with detector boxes, which are not part of the release.)

Skipped: frames whose camera intrinsics are NaN; persons with fewer than `min_joints` = 6
joints, an empty modal mask, an occluded fraction (1 - modal area / amodal area) above
`max_occlusion` = 0.75, or a box whose shorter side is below `min_box_side_px` = 32 px (the
reference uses 50 px on its 1280x800 frames).

Split: SAIL-VOS poses serve only as training data in the paper; everything is 'train'.
Tracks: sequence = directory name, person = object id, camera_id = '' (one game camera).
"""
from __future__ import annotations

import pathlib
import re
import zipfile
from collections.abc import Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.cropping import encode_rle
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'sailvos'
DESCRIPTION = 'SAIL-VOS 3D (GTA-V) person poses: rig points averaged into 26 joints'
# For each of the 26 joints (skeleton order), the raw rig point rows averaged into it.
JOINT_POINT_GROUPS = (
    (341, 8), (61,), (216, 234), (171,), (164, 309), (255, 39), (330,), (108,), (45, 294),
    (215, 131, 253), (295,), (144, 315), (147, 342, 27), (85,), (152,), (206, 128, 102),
    (307, 312), (130,), (11,), (167, 188, 191, 310), (194, 193, 236, 78), (227, 304, 58, 229),
    (37, 260, 195), (47, 148, 232), (323,), (160,))
MIN_RAW_POINTS = max(max(g) for g in JOINT_POINT_GROUPS) + 1
_PERSON_DIR = re.compile(r'^(\d+)_.+$')
_FRAME_FILE = re.compile(r'^(\d{6})_3d\.txt$')
_GROUP_MATRIX = np.zeros((len(JOINT_POINT_GROUPS), MIN_RAW_POINTS))
for _j, _group in enumerate(JOINT_POINT_GROUPS):
    _GROUP_MATRIX[_j, list(_group)] = 1.0


def joints_from_points(points_m: np.ndarray) -> np.ndarray:
    """[K, 3] raw rig points (metres, all-zero = missing) -> [26, 3] joints in mm (NaN where a
    group has no valid point), as a masked mean (one matrix product, no loop over joints)."""
    points = points_m[:MIN_RAW_POINTS]
    valid = np.any(points != 0, axis=1).astype(np.float64)
    weights = _GROUP_MATRIX * valid
    counts = weights.sum(1, keepdims=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(counts > 0, weights @ points / counts, np.nan) * 1000.0


def load_points(path: pathlib.Path) -> np.ndarray:
    try:
        points = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise common.DatasetFormatError(
            f'{path}: not a whitespace-separated number table ({e})') from None
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] < MIN_RAW_POINTS:
        raise common.DatasetFormatError(
            f'{path}: has shape {points.shape}, expected [K >= {MIN_RAW_POINTS}, 3] rig points')
    return points


def load_npz_field(path: pathlib.Path, key: str, shape: tuple) -> np.ndarray:
    common.require_file(path, f'an npz with {key!r}')
    try:
        with np.load(path, allow_pickle=False) as data:
            return common.get_field(data, key, path, shape)
    except common.DatasetFormatError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise common.DatasetFormatError(f'{path}: not a readable npz file ({e})') from e


def load_camera(path: pathlib.Path) -> Camera | None:
    """The game camera of one frame in mm (world z-up), or None where intrinsics are NaN."""
    intrinsics = load_npz_field(path, 'intrinsics', (3, 3))
    if np.all(np.isnan(intrinsics)):
        return None
    extrinsics = load_npz_field(path, 'extrinsics', (4, 4))
    R, t_m = extrinsics[:3, :3], extrinsics[:3, 3]
    try:
        return Camera(optical_center=-R.T @ t_m * 1000.0, rot_world_to_cam=R,
                      intrinsic_matrix=intrinsics, world_up=(0, 0, 1))
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: invalid camera ({e})') from None


def _read_mask(path: pathlib.Path) -> np.ndarray:
    import cv2
    common.require_file(path, 'an amodal person mask (png)')
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise common.DatasetFormatError(f'{path}: not a readable PNG image')
    return mask > 127


def _frame_image(sequence_dir: pathlib.Path, frame: int) -> pathlib.Path:
    for ext in ('bmp', 'jpg', 'png'):
        path = sequence_dir / 'images' / f'{frame:06d}.{ext}'
        if path.is_file():
            return path
    raise common.DatasetFormatError(
        f'missing file {sequence_dir / "images" / f"{frame:06d}.bmp"} (expected: the frame '
        f'image, .bmp or .jpg)')


def _person_frames(person_dir: pathlib.Path) -> list[int]:
    return sorted(int(m.group(1)) for p in person_dir.iterdir() if (m := _FRAME_FILE.match(p.name)))


def convert(root, min_joints: int = 6, max_occlusion: float = 0.75,
            min_box_side_px: float = 32.0) -> Iterator[Pose3DExample]:
    """Yields one example per usable (sequence, person, frame), each track in frame order.

    Args:
        root: the SAIL-VOS pose directory (see module docstring).
        min_joints: fewer labelled joints -> skipped.
        max_occlusion: larger occluded fraction of the amodal mask -> skipped.
        min_box_side_px: shorter box side below this (px) -> skipped.
    """
    root = common.require_dir(root, 'the SAIL-VOS pose release directory')
    names = joints.union_names(SKELETON)
    for sequence_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        people = sorted((int(m.group(1)), p) for p in sequence_dir.iterdir()
                        if p.is_dir() and (m := _PERSON_DIR.match(p.name)) and _person_frames(p))
        if not people:
            continue
        cameras = {(pid, f): load_camera(pdir / f'{f:06d}_camera.npz')
                   for pid, pdir in people for f in _person_frames(pdir)}
        valid_cams = [c for c in cameras.values() if c is not None]
        if not valid_cams:
            count_skipped('sailvos', 'camera intrinsics are NaN', len(cameras))
            continue
        origin = np.mean([c.t for c in valid_cams], axis=0)
        for object_id, person_dir in people:
            for frame in _person_frames(person_dir):
                camera = cameras[(object_id, frame)]
                if camera is None:
                    count_skipped('sailvos', 'camera intrinsics are NaN')
                    continue
                coords = joints_from_points(load_points(person_dir / f'{frame:06d}_3d.txt'))
                if np.count_nonzero(np.isfinite(coords[:, 0])) < min_joints:
                    count_skipped('sailvos', 'fewer labelled joints than min_joints')
                    continue
                visible_path = sequence_dir / 'visible' / f'{frame:06d}.npz'
                modal = load_npz_field(visible_path, 'visible_ids', (None, None)) == object_id
                amodal = _read_mask(person_dir / f'{frame:06d}.png')
                if amodal.shape != modal.shape:
                    raise common.DatasetFormatError(
                        f'{person_dir / f"{frame:06d}.png"}: size {amodal.shape} differs from '
                        f'{visible_path} {modal.shape}')
                modal_area = np.count_nonzero(modal)
                if modal_area == 0:
                    count_skipped('sailvos', 'empty person mask')
                    continue
                if 1 - modal_area / max(np.count_nonzero(amodal), 1) > max_occlusion:
                    count_skipped('sailvos', 'occluded fraction above max_occlusion')
                    continue
                ys, xs = np.nonzero(modal)
                box = np.array([xs.min() - 0.5, ys.min() - 0.5, xs.max() - xs.min() + 1,
                                ys.max() - ys.min() + 1], np.float32)
                if min(box[2:]) < min_box_side_px:
                    count_skipped('sailvos', 'box smaller than min_box_side_px')
                    continue
                local_camera = camera.copy()
                local_camera.t = camera.t - origin
                yield Pose3DExample(
                    image=str(_frame_image(sequence_dir, frame)), camera=local_camera,
                    world_coords=coords - origin, joint_names=names, box=box,
                    dataset='sailvos', sequence=sequence_dir.name, person=object_id,
                    camera_id='', frame=frame, split='train', mask=encode_rle(modal),
                    extra={'origin_mm': origin, 'person_dir': person_dir.name})
