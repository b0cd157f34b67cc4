"""The predictions file: one .npz per benchmark run, read with np.load(allow_pickle=False).

Layout (every array has N rows, one per predicted person in one image):
    poses        float [N, J, 3]  millimetres, camera frame of the test image (OpenCV axes:
                                  x right, y down, z forward). Absolute (not root-relative) if the
                                  model estimates absolute positions; root-relative metrics do not
                                  care.
    joint_names  str   [J]        names of the J joints of `poses`, in the posepile.joints naming;
                                  the evaluator picks the protocol joints by name, so extra
                                  joints (e.g. the whole 555-joint union) are fine.
    sequence     str   [N]        which video/sequence the image belongs to (per benchmark below)
    frame        int   [N]        0-based frame index within the sequence
    person       int   [N]        (3DPW only) which actor of the sequence pickle; optional
                                  elsewhere
    poses2d      float [N, J, 2]  (MuPoTS-3D only) the same joints in image pixels, used to match
                                  detections to annotated people
Optional provenance, written by `eval.run --model` and shown in the report:
    boxes        float [N, 5]     the person box each row was estimated in: x, y, w, h px and the
                                  detector score (NaN for a given box, -1 for the whole-image box
                                  used when the detector found nobody)
    box_source   str   []         'gt' (boxes from the ground truth) or 'detector' (the model's
                                  detect_poses); absent = unknown (e.g. your own predictions)
    inference    str   []         JSON of the inference settings (augmentations, antialiasing,
                                  detector thresholds)

`sequence` and `frame` per benchmark:
    h36m          'S9/Directions 1.54138969' (subject / D3_Positions_mono file stem), frame =
                  row of that .cdf file (50 Hz, every frame of the video)
    pw3d          'downtown_cafe_00' (pickle stem), frame = image index (image_{frame:05d}.jpg),
                  person = index into the pickle's per-actor lists
    mpi_inf_3dhp  'TS1'..'TS6', frame = row of annot_data.mat (image img_{frame+1:06d}.jpg)
    mupots        'TS1'..'TS20', frame = row of annot.mat (image img_{frame:06d}.jpg); any number
                  of rows (detections) per frame, including none
    synthetic     '<dataset>/test/<sequence>/<camera>' (e.g. 'synwide/test/seq003/cam1'), frame =
                  time index in the sequence, person 0 or omitted; J = union joints of the six
                  synthetic formats
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from posepile.atomic_io import write_npz_atomic
from posepile.npz_io import read_npz

REQUIRED_KEYS = ('poses', 'joint_names', 'sequence', 'frame')
BOX_SOURCES = ('gt', 'detector')
WHOLE_IMAGE_SCORE = -1.0  # box score of a detector-mode row estimated in the whole image


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Predictions in memory (see the module docstring for the meaning of each field)."""

    poses: np.ndarray           # [N, J, 3] float64 mm camera frame
    joint_names: tuple[str, ...]
    sequence: np.ndarray        # [N] str
    frame: np.ndarray           # [N] int64
    person: np.ndarray | None = None   # [N] int64
    poses2d: np.ndarray | None = None  # [N, J, 2] float64 px
    source: str = '<memory>'
    boxes: np.ndarray | None = None    # [N, 5] float64 x, y, w, h px, score
    box_source: str | None = None      # 'gt' | 'detector' | None (unknown)
    inference: dict | None = None      # settings of the model run that made these rows

    def __post_init__(self):
        n = self.poses.shape[0]
        if self.poses.ndim != 3 or self.poses.shape[2] != 3:
            raise ValueError(f'{self.source}: poses must be [N, J, 3], got {self.poses.shape}')
        if self.poses.shape[1] != len(self.joint_names):
            raise ValueError(f'{self.source}: poses has {self.poses.shape[1]} joints but '
                             f'joint_names has {len(self.joint_names)}')
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f'{self.source}: joint_names has duplicates')
        for field in ('sequence', 'frame', 'person', 'poses2d', 'boxes'):
            value = getattr(self, field)
            if value is not None and value.shape[0] != n:
                raise ValueError(f'{self.source}: {field} has {value.shape[0]} rows, poses has {n}')
        if self.poses2d is not None and self.poses2d.shape != (n, len(self.joint_names), 2):
            raise ValueError(f'{self.source}: poses2d must be [N, J, 2], got {self.poses2d.shape}')
        if self.boxes is not None and self.boxes.shape != (n, 5):
            raise ValueError(f'{self.source}: boxes must be [N, 5], got {self.boxes.shape}')
        if self.box_source not in (None, *BOX_SOURCES):
            raise ValueError(f'{self.source}: box_source must be one of {BOX_SOURCES}, got '
                             f'{self.box_source!r}')

    def __len__(self) -> int:
        return self.poses.shape[0]

    def select_joints(self, names: list[str] | tuple[str, ...], what: str = 'poses'
                      ) -> np.ndarray:
        """`poses` (or `poses2d`) restricted to `names`, in that order: [N, len(names), 3|2]."""
        index = {n: i for i, n in enumerate(self.joint_names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise KeyError(f'{self.source}: joint_names lacks the protocol joints {missing}')
        array = getattr(self, what)
        if array is None:
            raise KeyError(f'{self.source}: the benchmark needs the field {what!r}')
        return array[:, [index[n] for n in names]]


def load_predictions(path: str | os.PathLike) -> Predictions:
    """Reads and validates a predictions .npz (no pickles); errors name the file and the key."""
    path = os.fspath(path)
    arrays = read_npz(path, REQUIRED_KEYS, 'a predictions .npz (layout: eval/predictions.py)')

    def numeric(key, dtype):
        try:
            return np.asarray(arrays[key], dtype)
        except (TypeError, ValueError) as e:
            raise ValueError(f'{path}: key {key!r} must be numeric: {e}') from None

    def scalar_text(key):
        return str(np.asarray(arrays[key]).astype(str).reshape(())) if key in arrays else None

    inference = scalar_text('inference')
    try:
        inference = None if inference is None else json.loads(inference)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: key "inference" is not JSON: {e}') from None
    return Predictions(
        poses=numeric('poses', np.float64),
        joint_names=tuple(np.asarray(arrays['joint_names']).astype(str).tolist()),
        sequence=np.asarray(arrays['sequence']).astype(str),
        frame=numeric('frame', np.int64),
        person=numeric('person', np.int64) if 'person' in arrays else None,
        poses2d=numeric('poses2d', np.float64) if 'poses2d' in arrays else None,
        source=path,
        boxes=numeric('boxes', np.float64) if 'boxes' in arrays else None,
        box_source=scalar_text('box_source'), inference=inference)


def save_predictions(path: str | os.PathLike, poses: np.ndarray, joint_names, sequence, frame,
                     person=None, poses2d=None, boxes=None, box_source: str | None = None,
                     inference: dict | None = None) -> None:
    """Writes the layout above atomically (temporary file in the same folder, then rename)."""
    arrays = dict(poses=np.asarray(poses, np.float32),
                  joint_names=np.asarray(list(joint_names), dtype=str),
                  sequence=np.asarray(sequence, dtype=str), frame=np.asarray(frame, np.int64))
    if person is not None:
        arrays['person'] = np.asarray(person, np.int64)
    if poses2d is not None:
        arrays['poses2d'] = np.asarray(poses2d, np.float32)
    if boxes is not None:
        arrays['boxes'] = np.asarray(boxes, np.float32)
    Predictions(**{k: (tuple(v) if k == 'joint_names' else v) for k, v in arrays.items()},
                source=os.fspath(path), box_source=box_source, inference=inference)
    if box_source is not None:
        arrays['box_source'] = np.asarray(box_source)
    if inference is not None:
        arrays['inference'] = np.asarray(json.dumps(inference, sort_keys=True))
    write_npz_atomic(path, **arrays)


def save(predictions: Predictions, path: str | os.PathLike) -> None:
    """Writes a Predictions object with all its fields (save_predictions)."""
    save_predictions(path, predictions.poses, predictions.joint_names, predictions.sequence,
                     predictions.frame, person=predictions.person, poses2d=predictions.poses2d,
                     boxes=predictions.boxes, box_source=predictions.box_source,
                     inference=predictions.inference)
