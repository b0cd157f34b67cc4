"""Helpers every dataset converter shares: safe paths, required files, JSON, lazy video frames, boxes.

Errors name the file and what was expected, so a user with a half-downloaded dataset learns which
file to fix.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np


class DatasetFormatError(ValueError):
    """A dataset file is missing, malformed, or not what its authors distribute."""


def safe_path(root: str | os.PathLike, relative: str | os.PathLike, source: str = '') -> pathlib.Path:
    """`root / relative`, refusing paths that escape `root` (absolute, '..', symlinks out).

    `source` names the annotation file the path came from, for the error message. Paths read
    from annotation files are untrusted: a crafted file must not make us read outside the root.
    """
    root = pathlib.Path(root).resolve()
    rel = pathlib.PurePath(str(relative).replace('\\', '/'))
    if rel.is_absolute():
        raise DatasetFormatError(f'{source or root}: path {str(relative)!r} must be relative to {root}')
    candidate = (root / rel).resolve()
    if candidate != root and root not in candidate.parents:
        raise DatasetFormatError(
            f'{source or root}: path {str(relative)!r} escapes the dataset root {root}')
    return candidate


def require_file(path: str | os.PathLike, what: str) -> pathlib.Path:
    """The path, if it is an existing file; else an error saying what the file should hold."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DatasetFormatError(f'missing file {path} (expected: {what})')
    return path


def require_dir(path: str | os.PathLike, what: str) -> pathlib.Path:
    path = pathlib.Path(path)
    if not path.is_dir():
        raise DatasetFormatError(f'missing directory {path} (expected: {what})')
    return path


def load_json(path: str | os.PathLike) -> Any:
    path = require_file(path, 'a JSON file')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetFormatError(f'{path}: not valid JSON ({e})') from e


def load_pickled_dict(path: str | os.PathLike, what: str) -> dict:
    """A dataset's pickle, read with the restricted unpickler (posepile.safe_unpickle), that must
    hold a dict. A forbidden class raises UnsafePickleError (naming it); a missing, truncated or
    non-pickle file, or a non-dict, raises DatasetFormatError naming the file."""
    from posepile.safe_unpickle import UnsafePickleError, load_pickle
    path = require_file(path, what)
    try:
        data = load_pickle(path)
    except UnsafePickleError:
        raise
    except Exception as e:  # truncated or not a pickle: EOFError, UnpicklingError, ValueError...
        raise DatasetFormatError(
            f'{path}: not a readable pickle ({type(e).__name__}: {e})') from None
    if not isinstance(data, dict):
        raise DatasetFormatError(f'{path}: expected a dict, got {type(data).__name__}')
    return data


def camera_from_annotation(points3d_camera, points2d, where: str):
    """posepile.camera.camera_from_projection for annotations (e.g. annot3/annot2 of test sets
    that ship no calibration); a non-projection raises DatasetFormatError naming `where`."""
    from posepile.camera import camera_from_projection
    try:
        return camera_from_projection(points3d_camera, points2d, where)
    except ValueError as e:
        raise DatasetFormatError(str(e)) from None


def get_field(mapping: Any, key: str, path: str | os.PathLike, shape: tuple | None = None,
              dtype=np.float64) -> Any:
    """mapping[key] as an array of `shape` (None entries are free); errors name file and field."""
    try:
        value = mapping[key]
    except (KeyError, IndexError, TypeError):
        raise DatasetFormatError(f'{path}: missing field {key!r}') from None
    if shape is None:
        return value
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise DatasetFormatError(f'{path}: field {key!r} is not numeric ({e})') from e
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = 'x'.join('N' if s is None else str(s) for s in shape)
        raise DatasetFormatError(f'{path}: field {key!r} has shape {arr.shape}, expected [{want}]')
    return arr


# Frames a VideoFrame decodes and drops to reach a later frame of the same open video rather
# than seeking (see VideoFrame.__call__).
_MAX_GRAB_AHEAD = 24


class VideoFrame:
    """A picklable, lazy reference to one frame of a video file; calling it decodes the frame.

    Returns RGB uint8 [H, W, 3]. Open captures are cached per process so a converter's
    sequential reads do not reopen the file for every frame.
    """

    _captures: dict[str, Any] = {}
    _positions: dict[str, int] = {}

    def __init__(self, path: str | os.PathLike, index: int):
        self.path = str(path)
        self.index = int(index)

    def __repr__(self) -> str:
        return f'VideoFrame({self.path!r}, {self.index})'

    def __call__(self) -> np.ndarray:
        import cv2  # deferred: converters that never touch video should not pay for it
        cap = self._captures.get(self.path)
        if cap is None:
            require_file(self.path, 'a video file')
            cap = cv2.VideoCapture(self.path)
            if not cap.isOpened():
                raise DatasetFormatError(f'{self.path}: cannot be opened as a video')
            if len(self._captures) > 16:  # bound the open file handles
                for old in list(self._captures)[:8]:
                    self._captures.pop(old).release()
                    self._positions.pop(old, None)
            self._captures[self.path] = cap
            self._positions[self.path] = 0
        position = self._positions.get(self.path)
        if position is None or not 0 <= self.index - position <= _MAX_GRAB_AHEAD:
            cap.set(cv2.CAP_PROP_POS_FRAMES, self.index)
        else:
            # A seek decodes from the keyframe before the target (GOPs of 12..250 frames);
            # decoding the frames in between without converting them is cheaper up to here
            # (bench.build_stages: 1.7 ms per skipped 1000x1000 H.264 frame, 56 ms per seek).
            for _ in range(self.index - position):
                cap.grab()
        ok, frame = cap.read()
        if not ok or frame is None:
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self._captures.pop(self.path).release()
            self._positions.pop(self.path, None)
            raise DatasetFormatError(
                f'{self.path}: cannot decode frame {self.index} (video reports {n} frames; '
                f'corrupt or truncated?)')
        self._positions[self.path] = self.index + 1
        return np.ascontiguousarray(frame[..., ::-1])


def image_shape(path: str | os.PathLike, what: str = 'an image file') -> tuple[int, int]:
    """(height, width) of an image file from its header, without decoding the pixels."""
    from PIL import Image  # deferred: only converters of image datasets need it
    require_file(path, what)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError as e:
        raise DatasetFormatError(f'{path}: not a readable image ({e})') from None
    return height, width


def video_info(path: str | os.PathLike) -> tuple[int, tuple[int, int]]:
    """(frame count, (height, width)) from the container metadata, without decoding."""
    import cv2
    require_file(path, 'a video file')
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DatasetFormatError(f'{path}: cannot be opened as a video')
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        shape = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
    finally:
        cap.release()
    if n <= 0 or min(shape) <= 0:
        raise DatasetFormatError(
            f'{path}: video reports {n} frames of size {shape}; corrupt or truncated?')
    return n, shape


def video_frame_count(path: str | os.PathLike) -> int:
    return video_info(path)[0]


def inside_image(points2d: np.ndarray, imshape: tuple[int, int]) -> np.ndarray:
    """[...] bool: the [..., 2] image points (px, pixel-centre convention) lie strictly inside the
    (H, W) image, whose outer edge is at -0.5 and W - 0.5 / H - 0.5. NaN points are outside."""
    height, width = imshape
    points2d = np.asarray(points2d)
    with np.errstate(invalid='ignore'):
        return np.all((points2d > -0.5) & (points2d < [width - 0.5, height - 0.5]), axis=-1)


def drop_labels_near_bottom(coords2d: np.ndarray, image_height: int,
                            fraction: float = 0.95) -> np.ndarray:
    """[J, 2] 2D labels with the points whose y exceeds `fraction` x the image height set to NaN.

    The released MeTRAbs code drops these for all 2D-only data (data_loading.py,
    load_and_transform2d): annotators of COCO/MPII put joints cut off by the lower image border
    on that border, which is no position of the joint.
    """
    coords2d = np.array(coords2d, np.float64, copy=True)
    with np.errstate(invalid='ignore'):
        coords2d[coords2d[:, 1] > fraction * image_height] = np.nan
    return coords2d


def box_around_points(points2d: np.ndarray, margin: float = 0.1,
                      imshape: tuple[int, int] | None = None) -> np.ndarray:
    """[x, y, w, h] box of the finite 2D points (pixels), grown by `margin` of its size per side.

    For datasets that ship no person boxes: the projected joints bound the body only loosely
    (head top, hands and feet stick out), hence the margin. Clipped to the image when `imshape`
    (H, W) is given. Returns NaNs when no point is finite.
    """
    pts = np.asarray(points2d, np.float64).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return np.full(4, np.nan, np.float32)
    lo, hi = pts.min(0), pts.max(0)
    size = hi - lo
    lo, hi = lo - margin * size, hi + margin * size
    if imshape is not None:
        lo = np.maximum(lo, -0.5)
        hi = np.minimum(hi, np.array([imshape[1], imshape[0]]) - 0.5)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)
