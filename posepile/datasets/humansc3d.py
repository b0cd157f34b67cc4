"""HumanSC3D converter (Fieraru et al., "Learning Complex 3D Human Self-Contact", AAAI 2021;
sc3d.imar.ro): one person per sequence performing self-contact poses.

Expected layout under `root` (the train archive unzipped in place; see `posepile.datasets._imar`
for the file formats, camera convention, joint order and frame pairing):

    root/
      train/<subject>/                                subject folders s01, s02, ...
        joints3d_25/<action>.json                     [T, 25, 3] metres, world (z up); actions
                                                      are numbered ('001', '002', ...)
        camera_parameters/<camera>/<action>.json      4 cameras (50591643 58860488 60457274
                                                      65906101)
        videos/<camera>/<action>.mp4                  50 fps
        smplx/ gpp/ self_contact_signature.json       (not read)
      test/<subject>/                                 no 3D ground truth (withheld): not read
      info.json template.json                         (not read)

Units: world millimetres (the files hold metres). Skeleton: 25 of H36M's 32 joints, emitted with
the union names of the 'h36m' format.
Split: the release's train subjects are train, except `validation_subjects` (default s06, the
last train subject; our choice, the authors define none). The test subjects' ground truth is
withheld (evaluation server only), so no 'test' examples exist; the paper's training mix used
all train subjects (pass validation_subjects=()).
Tracks: sequence '<subject>/<action>', person 0, camera_id = camera folder, frame = video frame.
Not read: SMPL-X / GHUM fits, self-contact signatures and their annotated frames.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from posepile.datasets import _imar
from posepile.example import Pose3DExample

SKELETON = _imar.SKELETON
DESCRIPTION = 'HumanSC3D: 25 H36M joints (joints3d_25 JSON, m), 4 calibrated cameras, mp4 videos'
VALIDATION_SUBJECTS = ('s06',)


def convert(root, subjects: Iterable[str] | None = None,
            validation_subjects: Iterable[str] = VALIDATION_SUBJECTS,
            camera_ids: Iterable[str] | None = None,
            pose_rows_per_frame: int | None = None) -> Iterator[Pose3DExample]:
    """See `posepile.datasets._imar.convert` for the arguments."""
    return _imar.convert(root, 'humansc3d', 1, subjects, validation_subjects, camera_ids,
                         pose_rows_per_frame)
