"""Rules shared by the 2D-only video datasets (JRDB-Pose, PoseTrack 2018).

The 100 mm rule cannot thin 2D tracks (their world coordinates are NaN), and consecutive video
frames are near-duplicates, so these converters apply the reference's image-space analogue
(PosePile's posepile/ds/jrdb/main.py and posepile/ds/posetrack/main.py): within a track, a frame
is kept only if some joint became labelled since the last kept frame, or some joint labelled in
both moved at least a threshold in pixels. And, like the reference's 2D mix (PosePile
posepile/merging/merged_dataset2d.py, make_huge2d), a person needs more than six labelled limb
joints (shoulders, elbows, wrists, hips, knees, ankles).
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

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
