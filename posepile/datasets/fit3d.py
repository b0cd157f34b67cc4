"""Fit3D converter (Fieraru et al., "AIFit", CVPR 2021; fit3d.imar.ro): fitness exercises.

Expected layout under `root` (fit3d_train.zip unzipped in place; see `posepile.datasets._imar`
for the file formats, camera convention, joint order and frame pairing):

    root/
      train/s03/ s04/ s05/ s07/ s08/ s09/ s10/ s11/
        joints3d_25/<exercise>.json                   [T, 25, 3] metres, world (z up)
        camera_parameters/<camera>/<exercise>.json    cameras 50591643 58860488 60457274 65906101
        videos/<camera>/<exercise>.mp4                900x900, 50 fps
        smplx/ gpp/ rep_ann.json                      (not read)
      test/<subject>/                                 no 3D ground truth (withheld): not read

Units: world millimetres (the files hold metres). Skeleton: 25 of H36M's 32 joints, emitted with
the union names of the 'h36m' format.
Split: the release's train subjects are train, except `validation_subjects` (default s11, the
last train subject; our choice, the authors define none). The test subjects' ground truth is
withheld by the authors (evaluation server only), so no 'test' examples exist; the paper's
training mix used all train subjects (pass validation_subjects=()).
Tracks: sequence '<subject>/<exercise>', person 0, camera_id = camera folder, frame = video frame.
Not read: SMPL-X and GHUM (gpp) fits, repetition annotations.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from posepile.datasets import _imar
from posepile.example import Pose3DExample

SKELETON = _imar.SKELETON
DESCRIPTION = 'Fit3D: 25 H36M joints (joints3d_25 JSON, m), 4 calibrated cameras, mp4 videos'
VALIDATION_SUBJECTS = ('s11',)


def convert(root, subjects: Iterable[str] | None = None,
            validation_subjects: Iterable[str] = VALIDATION_SUBJECTS,
            camera_ids: Iterable[str] | None = None,
            pose_rows_per_frame: int | None = None) -> Iterator[Pose3DExample]:
    """See `posepile.datasets._imar.convert` for the arguments."""
    return _imar.convert(root, 'fit3d', 1, subjects, validation_subjects, camera_ids,
                         pose_rows_per_frame)
