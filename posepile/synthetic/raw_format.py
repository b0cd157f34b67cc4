"""The synthetic world's on-disk layout (like a real dataset distribution): writer and reader.

Layout under the output root:

    world.json                               {"format_version", "seed", "num", "num_2d", "fps",
                                              "datasets"}
    <dataset>/info.json                      {"name", "description", "labelled_formats" (train and
                                              validation), "test_formats" (all 3D ones; [] for a
                                              2D-only dataset), "two_d_only", "skeletons":
                                              {format: {"joints": [...], "bones": "a-b,.."}},
                                              "image_size": [H, W], "rig": kind, "fps"}
    <dataset>/images/<split>/<sequence>/<camera>/<frame:06d>.jpg      RGB JPEG
    <dataset>/annotations/<split>/<sequence>/<camera>.json            one file per track

An annotation file holds one person seen by one camera over one sequence:
    {"dataset", "split", "sequence", "camera_id", "subject", "image_size": [H, W],
     "formats": [formats labelled in this file], "joint_names": {format: [names]},
     "frames": [{
         "frame": int (time index within the sequence),
         "image": path of the JPEG relative to <dataset>/,
         "camera": {"K": 3x3 intrinsics px, "R": 3x3 world-to-camera rotation,
                    "t": camera position (optical centre) in world mm, so that
                         p_cam = R (p_world - t),
                    "distortion": 5 OpenCV coefficients k1 k2 p1 p2 k3},
         "box": [x, y, w, h] px of the visible person (pixel-centre convention; all zero when
                the person is not visible),
         "mask": {"size": [H, W], "counts": COCO RLE string (pycocotools)},
         "joints3d": {format: J x 3 world mm}, "joints2d": {format: J x 2 image px},
         "occluded_fraction": float, "pose": name of the dominant pose archetype}]}
World frame: z up, ground plane z = 0, millimetres. Train and validation files label the
dataset's formats only; test files label every synthetic 3D format.

2D-only datasets (info.json "two_d_only": true, like COCO) store no calibration and no 3D: their
frame records have no "camera" and no "joints3d", and "joints2d" holds null for points outside
the image (format_version 2; version 1 worlds have no 2D-only datasets and read the same).

Every file is written to a temporary name and renamed, so an interrupted run leaves no partial
files under their final names.
"""
from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_tools

from posepile.atomic_io import write_bytes_atomic

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def write_json_compact(path: pathlib.Path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, separators=(',', ':')).encode())


def encode_jpeg(image_rgb: np.ndarray, quality: int = 92) -> bytes:
    ok, data = cv2.imencode('.jpg', np.ascontiguousarray(image_rgb[..., ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('JPEG encoding failed')
    return data.tobytes()


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_tools.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in rle['size']], 'counts': rle['counts'].decode('ascii')}


def image_relpath(split: str, sequence: str, camera_id: str, frame: int) -> str:
    return f'images/{split}/{sequence}/{camera_id}/{frame:06d}.jpg'


def annotation_path(dataset_dir: pathlib.Path, split: str, sequence: str,
                    camera_id: str) -> pathlib.Path:
    return dataset_dir / 'annotations' / split / sequence / f'{camera_id}.json'


def _rounded(array: np.ndarray, decimals: int) -> list:
    return np.round(np.asarray(array, np.float64), decimals).tolist()


def _rounded_or_null(array: np.ndarray, decimals: int) -> list:
    """Like _rounded, with null for NaN rows (points an annotator could not label)."""
    return [None if not np.all(np.isfinite(row)) else _rounded(row, decimals) for row in array]


def frame_record(frame, two_d_only: bool = False) -> dict[str, Any]:
    """The JSON record of one `world.Frame` (without writing its image); a 2D-only dataset's
    record has no camera and no 3D."""
    record = {
        'frame': frame.frame,
        'image': image_relpath(frame.split, frame.sequence, frame.camera_id, frame.frame),
        'box': _rounded(frame.box, 2),
        'mask': encode_mask(frame.mask),
        'joints2d': {f: _rounded_or_null(j, 4) if two_d_only else _rounded(j, 4)
                     for f, j in frame.joints2d.items()},
        'occluded_fraction': round(frame.occluded_fraction, 4),
        'pose': frame.archetype,
    }
    if not two_d_only:
        cam = frame.camera
        distortion = np.zeros(5)
        if cam.distortion_coeffs is not None:
            distortion[:len(cam.distortion_coeffs)] = cam.distortion_coeffs
        record['camera'] = {'K': _rounded(cam.intrinsic_matrix, 9), 'R': _rounded(cam.R, 12),
                            't': _rounded(cam.t, 6), 'distortion': _rounded(distortion, 12)}
        record['joints3d'] = {f: _rounded(j, 4) for f, j in frame.joints3d.items()}
    return record


def write_track(dataset_dir: pathlib.Path, first, records: list[dict],
                joint_names: dict[str, list[str]]) -> None:
    """Writes the annotation file of one (sequence, camera) track: `first` is its first
    `world.Frame` (for the track's metadata), `records` its frame records in time order."""
    write_json_compact(annotation_path(dataset_dir, first.split, first.sequence, first.camera_id), {
        'dataset': first.dataset, 'split': first.split, 'sequence': first.sequence,
        'camera_id': first.camera_id, 'subject': first.subject,
        'image_size': list(first.image.shape[:2]), 'formats': list(first.joints2d),
        'joint_names': {f: joint_names[f] for f in first.joints2d}, 'frames': records})


# ------------------------------------------------------------------------------------ reading
def read_json(path: pathlib.Path) -> Any:
    try:
        with open(path, 'rb') as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f'{path}: file is missing') from None
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON ({e})') from None


def require(record: dict, field: str, path: pathlib.Path, where: str = '') -> Any:
    """record[field], or ValueError naming the file, the place in it and the field."""
    if not isinstance(record, dict) or field not in record:
        raise ValueError(f'{path}: {where}missing field {field!r}')
    return record[field]


def require_array(record: dict, field: str, shape: tuple, path: pathlib.Path,
                  where: str = '') -> np.ndarray:
    """A numeric field as float64 of the given shape (None = any length along that axis)."""
    value = require(record, field, path, where)
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f'{path}: {where}field {field!r} is not numeric') from None
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        raise ValueError(f'{path}: {where}field {field!r} has shape {arr.shape}, expected '
                         f'{tuple("*" if s is None else s for s in shape)}')
    return arr


def read_dataset_info(root: pathlib.Path, dataset: str) -> dict[str, Any]:
    path = pathlib.Path(root) / dataset / 'info.json'
    info = read_json(path)
    for field in ('name', 'labelled_formats', 'test_formats', 'skeletons', 'image_size'):
        require(info, field, path)
    return info


def read_world_info(root: pathlib.Path) -> dict[str, Any]:
    path = pathlib.Path(root) / 'world.json'
    info = read_json(path)
    for field in ('format_version', 'datasets'):
        require(info, field, path)
    if info['format_version'] not in READABLE_VERSIONS:
        raise ValueError(f'{path}: format_version {info["format_version"]} is not supported '
                         f'(expected one of {READABLE_VERSIONS})')
    return info


def annotation_files(root: pathlib.Path, dataset: str, splits: Iterable[str]
                     ) -> list[pathlib.Path]:
    """Annotation files of a dataset's splits, sorted (deterministic order)."""
    base = pathlib.Path(root) / dataset / 'annotations'
    return [p for split in splits for p in sorted((base / split).glob('*/*.json'))]
