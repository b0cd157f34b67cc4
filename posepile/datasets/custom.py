"""Converter for a dataset of one's own, laid out in a simple documented way (no code to write).

Layout under `root` (docs/ADDING_A_DATASET.md walks through an example):

    <root>/
        dataset.json                 {"name": "mylab",               example.dataset
                                      "skeleton": "skeleton.json",   a skeleton file (relative to
                                                                     root) or a registered name
                                      "splits": {"validation": ["seq3"], "test": ["seq4"]},
                                      "world_up": [0, -1, 0],        world frame's up (optional)
                                      "fov_deg": 55}                 uncalibrated 2D-only cameras
        skeleton.json                the joints (posepile/joints/user_skeletons.py), if named
        <sequence>/                  every subdirectory with images/ or videos/ is a sequence
            cameras.json             {"<camera>": {"intrinsic_matrix": [[fx, 0, cx], [0, fy, cy],
                                                                        [0, 0, 1]],
                                                   "distortion_coeffs": [k1, k2, p1, p2, k3],
                                                   "rotation": [[...]] (world -> camera),
                                                   "optical_center": [x, y, z] (mm, world)
                                                   or "translation": [x, y, z] (mm, OpenCV tvec)}}
            images/<camera>/<frame>.jpg|.jpeg|.png     frame = the file name's integer
            videos/<camera>.mp4|.avi|.mov|.mkv         frame = the video frame index
            joints3d.npy             [F, P, J, 3] float, world frame, mm; NaN = unlabelled
            joints2d/<camera>.npy    [F, P, J, 2] float, image px (pixel centres); NaN = unlabelled
            boxes/<camera>.npy       [F, P, 4] person boxes x, y, w, h px; a NaN row = derive
            masks/<camera>/<frame>.png   label image: 0 background, p + 1 = person p

F frames (row f = frame f), P persons (column p = the same person through the sequence: its
track), J = the skeleton's joints in its order. Everything but dataset.json, one of images/ or
videos/, and joints3d.npy or joints2d/ is optional:
  - cameras.json: required with joints3d.npy; without it (2D-only data) each camera is the
    uncalibrated guess posepile.camera.camera_from_fov (identity extrinsics, `fov_deg` over the
    larger side). Missing rotation = identity, missing position = the world origin. A moving
    camera: store joints3d in that camera's frame and leave the extrinsics out.
  - joints2d: a person-frame with any labelled 3D joint becomes a 3D example (its 2D joints
    are its projection); one with only 2D joints becomes a 2D-only example (coords2d).
  - boxes: default the labelled joints' box in the image + 10 % per side, clipped to it.
  - masks: per frame; a frame without a mask file gets none (masks help background and
    occlusion augmentation but are not needed).
All frames of one camera have the same size (read from its first image / the video).

Skipped and counted (build manifest): person-frames with fewer than `min_joints_in_image`
labelled joints inside the image, and labelled frames whose image file is missing or lie past the
end of the video. Arrays are read with np.load(allow_pickle=False); every error names the file
and the field.

Tracks: sequence = directory name, person = column p, camera_id = camera name, frame = f.
Split: dataset.json "splits" (sequence lists for validation / test); all others are 'train'.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from posepile import joints
from posepile.camera import Camera, camera_from_fov
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

# The skeleton depends on the dataset: see skeleton_of (posepile.build asks it).
SKELETON = None
DESCRIPTION = ("a dataset of one's own in the documented custom layout (dataset.json, per-sequence "
               'cameras, images or videos, joints3d.npy in mm and/or joints2d/*.npy, optional '
               'boxes and masks) with its own skeleton file')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv')
_DATASET_KEYS = {'name', 'skeleton', 'splits', 'world_up', 'fov_deg', 'description'}
_CAMERA_KEYS = {'intrinsic_matrix', 'distortion_coeffs', 'rotation', 'optical_center',
                'translation'}
_FRAME_NAME = re.compile(r'^(\d+)$')


class LabelMask:
    """A picklable lazy person mask: pixels of a label PNG equal to `label`."""

    def __init__(self, path: str, label: int):
        self.path = str(path)
        self.label = int(label)

    def __call__(self) -> np.ndarray:
        import cv2
        image = cv2.imread(self.path, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise common.DatasetFormatError(f'{self.path}: not a readable mask image')
        if image.ndim != 2:
            raise common.DatasetFormatError(
                f'{self.path}: a mask is a single-channel label image (0 background, p + 1 = '
                f'person p), got shape {image.shape}')
        return image == self.label


def _check_fields(value: Any, known: set[str], where: str) -> None:
    if not isinstance(value, dict):
        raise common.DatasetFormatError(f'{where}: must hold a JSON object')
    unknown = sorted(set(value) - known)
    if unknown:
        raise common.DatasetFormatError(f'{where}: unknown fields {unknown}; known: '
                                        f'{sorted(known)}')


def _dataset_info(root: pathlib.Path) -> dict[str, Any]:
    path = root / 'dataset.json'
    info = common.load_json(common.require_file(
        path, 'the description of a custom dataset (docs/ADDING_A_DATASET.md)'))
    _check_fields(info, _DATASET_KEYS, str(path))
    for key in ('name', 'skeleton'):
        if not isinstance(info.get(key), str) or not info[key]:
            raise common.DatasetFormatError(f'{path}: field "{key}" must be a non-empty string')
    if not re.match(r'^[a-z0-9][a-z0-9_]*$', info['name']):
        raise common.DatasetFormatError(f'{path}: field "name" is {info["name"]!r}; use '
                                        f'lowercase letters, digits and "_"')
    return info


def skeleton_of(root, **options) -> str:
    """The skeleton name of the dataset at `root` (a file skeleton is registered here)."""
    root = common.require_dir(root, 'a custom dataset directory')
    info = _dataset_info(root)
    spec = info['skeleton']
    if spec.endswith('.json'):
        path = common.safe_path(root, spec, root / 'dataset.json')
        try:
            return joints.register_skeleton(path).name
        except ValueError as error:
            raise common.DatasetFormatError(str(error)) from None
    try:
        joints.get_format(spec)
    except KeyError:
        raise common.DatasetFormatError(
            f'{root / "dataset.json"}: field "skeleton" is {spec!r}: neither a .json skeleton '
            f'file nor a registered skeleton ({", ".join(joints.skeleton_names("real"))})'
        ) from None
    return spec


def _load_array(path: pathlib.Path, shape: tuple) -> np.ndarray:
    """float64 array of `shape` (None entries free) from an .npy file, no pickles."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise common.DatasetFormatError(f'{path}: not a readable .npy array without objects '
                                        f'({error})') from None
    if not np.issubdtype(array.dtype, np.number):
        raise common.DatasetFormatError(f'{path}: holds {array.dtype}, expected numbers')
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in
                                       zip(shape, array.shape)):
        want = 'x'.join('N' if s is None else str(s) for s in shape)
        raise common.DatasetFormatError(f'{path}: has shape {array.shape}, expected [{want}]')
    return array.astype(np.float64)


def _camera(spec: Any, where: str, world_up) -> Camera:
    _check_fields(spec, _CAMERA_KEYS, where)
    if 'optical_center' in spec and 'translation' in spec:
        raise common.DatasetFormatError(f'{where}: give "optical_center" or "translation", '
                                        f'not both')
    K = common.get_field(spec, 'intrinsic_matrix', where, (3, 3))
    R = common.get_field(spec, 'rotation', where, (3, 3)) if 'rotation' in spec else np.eye(3)
    if 'translation' in spec:
        center = -R.T @ common.get_field(spec, 'translation', where, (3,))
    elif 'optical_center' in spec:
        center = common.get_field(spec, 'optical_center', where, (3,))
    else:
        center = np.zeros(3)
    distortion = (common.get_field(spec, 'distortion_coeffs', where, (None,))
                  if spec.get('distortion_coeffs') is not None else None)
    try:
        return Camera(center, R, K, distortion, world_up)
    except ValueError as error:
        raise common.DatasetFormatError(f'{where}: invalid camera ({error})') from None


class _CameraFrames:
    """The pixels of one camera of a sequence: frame index -> image source, and the size."""

    def __init__(self, sequence_dir: pathlib.Path, camera_id: str):
        self.image_dir = sequence_dir / 'images' / camera_id
        self.video = next((sequence_dir / 'videos' / f'{camera_id}{s}' for s in VIDEO_SUFFIXES
                           if (sequence_dir / 'videos' / f'{camera_id}{s}').is_file()), None)
        self.files: dict[int, pathlib.Path] = {}
        if self.video is not None:
            self.n_video_frames, self.imshape = common.video_info(self.video)
        elif self.image_dir.is_dir():
            self.files = _numbered_files(self.image_dir, IMAGE_SUFFIXES)
            if not self.files:
                raise common.DatasetFormatError(
                    f'{self.image_dir}: no image files named by their frame number '
                    f'(e.g. 000042.jpg)')
            self.imshape = common.image_shape(self.files[min(self.files)])
        else:
            raise common.DatasetFormatError(
                f'{sequence_dir}: camera {camera_id!r} has neither images/{camera_id}/ nor '
                f'videos/{camera_id}.mp4 (or .avi, .mov, .mkv)')

    def image(self, frame: int):
        """A str path or a lazy VideoFrame, or None if the frame has no pixels."""
        if self.video is not None:
            return common.VideoFrame(self.video, frame) if frame < self.n_video_frames else None
        path = self.files.get(frame)
        return None if path is None else str(path)


def _camera_ids(sequence_dir: pathlib.Path) -> list[str]:
    ids = set()
    if (sequence_dir / 'images').is_dir():
        ids |= {p.name for p in (sequence_dir / 'images').iterdir() if p.is_dir()}
    if (sequence_dir / 'videos').is_dir():
        ids |= {p.stem for p in (sequence_dir / 'videos').iterdir()
                if p.suffix.lower() in VIDEO_SUFFIXES}
    return sorted(ids)


def _splits(info: dict, path: pathlib.Path, sequences: list[str]) -> dict[str, str]:
    split_of = dict.fromkeys(sequences, 'train')
    splits = info.get('splits', {})
    if not isinstance(splits, dict) or set(splits) - {'train', 'validation', 'test'}:
        raise common.DatasetFormatError(
            f'{path}: field "splits" maps "validation" / "test" (and "train") to sequence lists')
    for split, names in splits.items():
        unknown = sorted(set(names) - set(sequences))
        if unknown:
            raise common.DatasetFormatError(f'{path}: field "splits.{split}" names sequences '
                                            f'that are not there: {unknown}')
        for name in names:
            split_of[name] = split
    return split_of


def convert(root, sequences: Iterable[str] | None = None, min_joints_in_image: int = 4,
            box_margin: float = 0.1) -> Iterator[Pose3DExample]:
    """Yields one example per labelled (sequence, camera, frame, person); see the module
    docstring.

    Args:
        root: the dataset directory.
        sequences: names of the sequences to read (default: all).
        min_joints_in_image: a person-frame needs this many labelled joints inside the image.
        box_margin: derived boxes grow by this fraction of their size per side.
    """
    root = common.require_dir(root, 'a custom dataset directory')
    info = _dataset_info(root)
    info_path = root / 'dataset.json'
    skeleton = skeleton_of(root)
    names = tuple(joints.union_names(skeleton))
    n_joints = len(names)
    world_up = np.asarray(info.get('world_up', (0, -1, 0)), np.float64)
    fov_deg = float(info.get('fov_deg', 55.0))
    dataset = info['name']
    found = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and ((p / 'images').is_dir() or (p / 'videos').is_dir()))
    if not found:
        raise common.DatasetFormatError(f'{root}: no sequence directories (subdirectories with '
                                        f'images/ or videos/)')
    split_of = _splits(info, info_path, found)
    if sequences is not None:
        missing = sorted(set(sequences) - set(found))
        if missing:
            raise common.DatasetFormatError(f'{root}: no sequences {missing} (found {found})')
        found = [s for s in found if s in set(sequences)]
    for sequence in found:
        yield from _convert_sequence(root / sequence, dataset, split_of[sequence], names,
                                     n_joints, world_up, fov_deg, min_joints_in_image,
                                     box_margin, joints.get_format(skeleton).is_2d)


def _convert_sequence(seq_dir: pathlib.Path, dataset: str, split: str, names, n_joints: int,
                      world_up, fov_deg: float, min_in_image: int, box_margin: float,
                      skeleton_is_2d: bool) -> Iterator[Pose3DExample]:
    joints3d = None
    if (seq_dir / 'joints3d.npy').is_file():
        if skeleton_is_2d:
            raise common.DatasetFormatError(f'{seq_dir / "joints3d.npy"}: the skeleton is a 2D '
                                            f'one (is_2d), so there can be no 3D joints')
        joints3d = _load_array(seq_dir / 'joints3d.npy', (None, None, n_joints, 3))
    cameras_path = seq_dir / 'cameras.json'
    camera_specs = common.load_json(cameras_path) if cameras_path.is_file() else None
    if joints3d is not None and camera_specs is None:
        raise common.DatasetFormatError(f'missing file {cameras_path} (3D joints need the '
                                        f'cameras that filmed them)')
    if camera_specs is not None and not isinstance(camera_specs, dict):
        raise common.DatasetFormatError(f'{cameras_path}: must map camera names to cameras')
    camera_ids = _camera_ids(seq_dir)
    if camera_specs is not None:
        unknown = sorted(set(camera_specs) - set(camera_ids))
        missing = sorted(set(camera_ids) - set(camera_specs))
        if unknown or missing:
            raise common.DatasetFormatError(
                f'{cameras_path}: cameras without pixels {unknown}, pixels without a camera '
                f'{missing} (images/<camera>/ or videos/<camera>.mp4 and cameras.json must '
                f'name the same cameras)')
    for camera_id in camera_ids:
        frames = _CameraFrames(seq_dir, camera_id)
        where = f'{cameras_path} [{camera_id}]'
        camera = (_camera(camera_specs[camera_id], where, world_up) if camera_specs is not None
                  else camera_from_fov(frames.imshape, fov_deg))
        joints2d = boxes = None
        path2d = seq_dir / 'joints2d' / f'{camera_id}.npy'
        if path2d.is_file():
            joints2d = _load_array(path2d, (None, None, n_joints, 2))
        if joints3d is None and joints2d is None:
            raise common.DatasetFormatError(
                f'{seq_dir}: camera {camera_id!r} has no labels: neither joints3d.npy nor '
                f'joints2d/{camera_id}.npy')
        shape = (joints3d if joints3d is not None else joints2d).shape[:2]
        if joints3d is not None and joints2d is not None and joints2d.shape[:2] != shape:
            raise common.DatasetFormatError(f'{path2d}: has {joints2d.shape[:2]} frames x '
                                            f'persons, joints3d.npy {shape}')
        box_path = seq_dir / 'boxes' / f'{camera_id}.npy'
        if box_path.is_file():
            boxes = _load_array(box_path, (shape[0], shape[1], 4))
        yield from _camera_examples(seq_dir, dataset, split, names, camera, camera_id, frames,
                                    joints3d, joints2d, boxes, min_in_image, box_margin)


def _camera_examples(seq_dir, dataset, split, names, camera: Camera, camera_id: str,
                     frames: _CameraFrames, joints3d, joints2d, boxes, min_in_image: int,
                     box_margin: float) -> Iterator[Pose3DExample]:
    n_frames, n_persons = (joints3d if joints3d is not None else joints2d).shape[:2]
    n_joints = len(names)
    # [F, P, J] labelled masks and the 2D points each person-frame is judged by (all frames at
    # once: projection and the in-image test are vectorised over the camera's whole array).
    has3d = (np.all(np.isfinite(joints3d), axis=-1) if joints3d is not None
             else np.zeros((n_frames, n_persons, n_joints), bool))
    points = np.full((n_frames, n_persons, n_joints, 2), np.nan)
    if joints3d is not None:
        with np.errstate(invalid='ignore'):
            projected = camera.world_to_image(np.where(has3d[..., None], joints3d, 0.0))
            in_front = camera.world_to_camera(np.where(has3d[..., None], joints3d, 0.0))[..., 2] > 0
        points = np.where((has3d & in_front)[..., None], projected, np.nan)
    is3d = has3d.any(axis=-1)
    if joints2d is not None:
        only2d = ~is3d[..., None] & np.all(np.isfinite(joints2d), axis=-1)
        points = np.where(only2d[..., None], joints2d, points)
    in_image = common.inside_image(points, frames.imshape)
    labelled = is3d | (np.all(np.isfinite(points), axis=-1).any(axis=-1))
    no_world = np.full((n_joints, 3), np.nan, np.float32)
    masks = _numbered_files(seq_dir / 'masks' / camera_id, ('.png',))
    for f in range(n_frames):
        persons = np.flatnonzero(labelled[f])
        if not len(persons):
            continue
        image = frames.image(f)
        if image is None:
            count_skipped(dataset, 'labelled frame without an image (file missing or past the '
                                   'end of the video)', len(persons))
            continue
        mask_path = masks.get(f)
        for p in persons:
            if np.count_nonzero(in_image[f, p]) < min_in_image:
                count_skipped(dataset, 'fewer than min_joints_in_image labelled joints in the '
                                       'image')
                continue
            box = boxes[f, p] if boxes is not None and np.all(np.isfinite(boxes[f, p])) else \
                common.box_around_points(points[f, p][in_image[f, p]], box_margin, frames.imshape)
            three_d = bool(is3d[f, p])
            yield Pose3DExample(
                image=image, camera=camera,
                world_coords=np.where(has3d[f, p, :, None], joints3d[f, p], np.nan)
                if three_d else no_world,
                joint_names=names, box=box, dataset=dataset, sequence=seq_dir.name,
                person=int(p), camera_id=camera_id, frame=f, split=split,
                mask=None if mask_path is None else LabelMask(mask_path, p + 1),
                coords2d=None if three_d else points[f, p].astype(np.float32))


def _numbered_files(directory: pathlib.Path, suffixes) -> dict[int, pathlib.Path]:
    """{frame: path} of the files in `directory` named by a frame number ('000042.png')."""
    if not directory.is_dir():
        return {}
    files = {}
    for path in sorted(directory.iterdir()):
        match = _FRAME_NAME.match(path.stem)
        if match and path.suffix.lower() in suffixes:
            files[int(match.group(1))] = path
    return files
