"""Pose3DExample: one person in one image with its camera and world-frame 3D joints."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from posepile.camera import Camera


@dataclasses.dataclass
class Pose3DExample:
    """One training/test example, as a converter yields it (before cropping).

    Attributes:
        image: where the pixels come from. A file path (str), encoded image bytes, a decoded
            uint8 array [H, W, 3], or a zero-argument callable returning such an array (used for
            lazily decoded video frames).
        camera: the camera that took `image` (world frame in mm).
        world_coords: [J, 3] float32, millimetres, world frame, in the order of `joint_names`;
            NaN for joints the dataset does not label. For 2D-only datasets, see `coords2d`.
        joint_names: names of the rows of `world_coords`, in the union naming `<joint>_<tag>`
            (or the plain skeleton names; `posepile.build` maps them into the union).
        box: [x, y, w, h] person box in image pixels of `image`.
        mask: COCO RLE dict {'size': [H, W], 'counts': bytes|str} of the person, a zero-argument
            callable returning the [H, W] bool mask (for masks only known once the image is
            decoded, e.g. the visible part of a composited person), or None.
        dataset: dataset name, e.g. 'h36m'.
        sequence: sequence id (str), person: person id (int), camera_id: camera id (str); the
            100 mm dedup rule runs within each (dataset, sequence, person, camera_id) track.
        frame: frame index within the sequence (time order for dedup).
        split: 'train', 'validation' or 'test'.
        coords2d: [J, 2] image pixel coordinates for 2D-only datasets (NaN where unlabelled),
            else None.
        extra: free-form dataset-specific metadata (kept out of the TFRecords).
    """

    image: str | bytes | np.ndarray | Callable[[], np.ndarray]
    camera: Camera
    world_coords: np.ndarray
    joint_names: tuple[str, ...]
    box: np.ndarray
    dataset: str
    sequence: str = ''
    person: int = 0
    camera_id: str = ''
    frame: int = 0
    split: str = 'train'
    mask: dict[str, Any] | Callable[[], np.ndarray] | None = None
    coords2d: np.ndarray | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.world_coords = np.asarray(self.world_coords, np.float32)
        self.box = np.asarray(self.box, np.float32)
        self.joint_names = tuple(self.joint_names)
        where = f'{self.dataset} {self.sequence} frame {self.frame}'
        if self.world_coords.ndim != 2 or self.world_coords.shape[1] != 3:
            raise ValueError(f'{where}: world_coords must be [J, 3], got {self.world_coords.shape}')
        if self.world_coords.shape[0] != len(self.joint_names):
            raise ValueError(
                f'{where}: world_coords has {self.world_coords.shape[0]} joints but joint_names '
                f'has {len(self.joint_names)}')
        if self.box.shape != (4,):
            raise ValueError(f'{where}: box must be [x, y, w, h], got shape {self.box.shape}')
        if self.coords2d is not None:
            self.coords2d = np.asarray(self.coords2d, np.float32)
            if self.coords2d.shape != (len(self.joint_names), 2):
                raise ValueError(
                    f'{where}: coords2d must be [{len(self.joint_names)}, 2], '
                    f'got {self.coords2d.shape}')
        if self.split not in ('train', 'validation', 'test'):
            raise ValueError(f'{where}: split must be train/validation/test, got {self.split!r}')

    @property
    def track_key(self) -> tuple[str, str, int, str]:
        """The 100 mm dedup rule runs within each such track, in `frame` order."""
        return (self.dataset, self.sequence, self.person, self.camera_id)

    @property
    def is_2d_only(self) -> bool:
        return self.coords2d is not None
