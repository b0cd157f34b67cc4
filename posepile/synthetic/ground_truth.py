"""Test-split ground truth for all formats, for cross-skeleton evaluation.

`load_test_ground_truth` reads a written world's test split (through the converter, the one
parser of the layout) and returns, per frame, the world-frame joints of every synthetic format.
`format_map` is the ground-truth affine map between two formats (see
`format_weights.fit_format_map`): dst ~ A @ src, rows of A sum to 1.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Iterable

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.synthetic import format_weights
from posepile.synthetic.formats import SYNTHETIC_SKELETONS


@dataclasses.dataclass
class TestGroundTruth:
    """All-format ground truth of N test frames.

    Attributes:
        dataset, sequence, camera_id: [N] str arrays; frame: [N] int64; subject: [N] int64.
        image_paths: [N] str arrays (JPEG files).
        cameras: N `Camera`s (world frame z up, mm).
        boxes: [N, 4] person boxes [x, y, w, h] px.
        coords: format -> [N, J_fmt, 3] world mm.
        joint_names: format -> the format's joint names (without the tag), as in `formats.py`.
    """
    dataset: np.ndarray
    sequence: np.ndarray
    camera_id: np.ndarray
    frame: np.ndarray
    subject: np.ndarray
    image_paths: np.ndarray
    cameras: list[Camera]
    boxes: np.ndarray
    coords: dict[str, np.ndarray]
    joint_names: dict[str, tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.frame)


def load_test_ground_truth(root: str | pathlib.Path,
                           datasets: Iterable[str] | None = None) -> TestGroundTruth:
    """Reads the test split of the world under `root` (all datasets by default)."""
    from posepile.datasets import synthetic as converter  # the one parser of the layout

    examples = list(converter.convert(root, datasets=datasets, splits=('test',)))
    if not examples:
        raise ValueError(f'{root}: the world has no visible test frames')
    formats = format_weights.FORMAT_NAMES
    coords = {}
    for fmt in formats:
        names = joints.union_names(fmt)
        rows = []
        for ex in examples:
            index = {n: i for i, n in enumerate(ex.joint_names)}
            missing = [n for n in names if n not in index]
            if missing:
                raise ValueError(f'{ex.extra.get("annotation_file")}: test frame {ex.frame} lacks '
                                 f'format {fmt!r} (field "joints3d"); the synthetic benchmark '
                                 f'needs every synthetic format, eval.run --benchmark=tfrecords '
                                 f'evaluates any built test split in the formats it has')
            rows.append(ex.world_coords[[index[n] for n in names]])
        coords[fmt] = np.stack(rows)
    return TestGroundTruth(
        dataset=np.array([ex.dataset for ex in examples]),
        sequence=np.array([ex.sequence for ex in examples]),
        camera_id=np.array([ex.camera_id for ex in examples]),
        frame=np.array([ex.frame for ex in examples], np.int64),
        subject=np.array([ex.person for ex in examples], np.int64),
        image_paths=np.array([ex.image for ex in examples]),
        cameras=[ex.camera for ex in examples],
        boxes=np.stack([ex.box for ex in examples]),
        coords=coords,
        joint_names={f: tuple(SYNTHETIC_SKELETONS[f][0]) for f in formats})


@functools.lru_cache(maxsize=None)
def format_map(src: str, dst: str) -> tuple[np.ndarray, float]:
    """Ground-truth affine map [J_dst, J_src] from format `src` to `dst` (rows sum to 1) and its
    RMS residual in mm over random bodies and poses. Cached; do not modify the returned array."""
    return format_weights.fit_format_map(src, dst)
