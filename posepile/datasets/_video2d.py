"""Rules and reading shared by the 2D-only video datasets (JRDB-Pose, PoseTrack 2018).

Both ship COCO-style JSON per video: 'images' whose file names end in the frame number, and
'annotations' with image_id and track_id, read here into track-and-frame order.

The 100 mm rule cannot thin 2D tracks (their world coordinates are NaN), and consecutive video
frames are near-duplicates, so these converters apply the reference's image-space analogue
(PosePile's posepile/ds/jrdb/main.py and posepile/ds/posetrack/main.py): within a track, a frame
is kept only if some joint became labelled since the last kept frame, or some joint labelled in
both moved at least a threshold in pixels. And, like the reference's 2D mix (PosePile
posepile/merging/merged_dataset2d.py, make_huge2d), a person needs more than six labelled limb
joints (shoulders, elbows, wrists, hips, knees, ankles).
"""
from __future__ import annotations

import pathlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from posepile.datasets import common

LIMB_JOINTS = ('lsho', 'rsho', 'lelb', 'relb', 'lwri', 'rwri', 'lhip', 'rhip', 'lkne', 'rkne',
               'lank', 'rank')
DEFAULT_MIN_LIMB_JOINTS = 7


def limb_joint_mask(joint_names: Sequence[str]) -> np.ndarray:
    """[J] bool: which base joint names are limb joints."""
    return np.isin(np.asarray(joint_names), LIMB_JOINTS)


class MotionFilter2D:
    """The image-space thinning rule (module docstring), one state per track.

    The reference compared with np.linalg.norm over all joints at once for PoseTrack (flagged
    "BUG!! fix to axis=-1" in its own code); here every joint is tested on its own, as that
    comment intends, for both datasets.
    """

    def __init__(self):
        self._last: dict[Hashable, np.ndarray] = {}

    def keep(self, track: Hashable, coords2d: np.ndarray, threshold_px: float) -> bool:
        """Whether the frame with `coords2d` [J, 2] (NaN = unlabelled) is kept; a kept frame
        becomes the track's reference for the next one."""
        last = self._last.get(track)
        if last is not None:
            now, before = np.isfinite(coords2d[:, 0]), np.isfinite(last[:, 0])
            both = now & before
            moved = np.linalg.norm(coords2d[both] - last[both], axis=-1) >= threshold_px
            if not (now & ~before).any() and not moved.any():
                return False
        self._last[track] = coords2d
        return True


def video_images(data: Mapping, path: pathlib.Path) -> dict[int, tuple[str, int, dict]]:
    """{image id: (file_name, frame number from the file name, the image record)}."""
    images = {}
    for i, image in enumerate(common.get_field(data, 'images', path)):
        where = f'{path} [images {i}]'
        file_name = str(common.get_field(image, 'file_name', where))
        stem = pathlib.PurePath(file_name).stem
        if not stem.isdigit():
            raise common.DatasetFormatError(f'{where}: file_name {file_name!r} does not end in '
                                            f'a frame number')
        images[int(common.get_field(image, 'id', where))] = (file_name, int(stem), image)
    return images


def annotations_in_track_order(data: Mapping, path: pathlib.Path,
                               images: Mapping[int, Any]) -> list[tuple[int, str, dict]]:
    """[(track_id, where, annotation)] sorted by (image frame, track_id, file order), so every
    track comes in increasing frame order (the converter contract); `where` names the
    annotation for errors. image_id must be one of `images` (video_images)."""
    keyed = []
    for i, ann in enumerate(common.get_field(data, 'annotations', path)):
        where = f'{path} [annotation id {ann.get("id", i) if isinstance(ann, dict) else i}]'
        image_id = int(common.get_field(ann, 'image_id', where))
        if image_id not in images:
            raise common.DatasetFormatError(f'{where}: image_id {image_id} is not in the file\'s '
                                            f'"images"')
        keyed.append((images[image_id][1], int(common.get_field(ann, 'track_id', where)), i,
                      where, ann))
    return [(track, where, ann) for _, track, _, where, ann in sorted(keyed, key=lambda k: k[:3])]
