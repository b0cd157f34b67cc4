"""CHI3D converter (Fieraru et al., "Three-Dimensional Reconstruction of Human Interactions",
CVPR 2020; ci3d.imar.ro): two interacting people per sequence.

Expected layout under `root` (the train archive unzipped in place; see `posepile.datasets._imar`
for the file formats, camera convention, joint order and frame pairing):

    root/
      train/s02/ s03/ s04/                            one folder per pair of people
        joints3d_25/<action>.json                     [2, T, 25, 3] metres, world (z up): block 0
                                                      is the person wearing mocap markers, block
                                                      1 the other (the tools' 'w_markers' /
                                                      'wo_markers'); actions like 'Grab 4'
        camera_parameters/<camera>/<action>.json      cameras 50591643 58860488 60457274 65906101
        videos/<camera>/<action>.mp4                  50 fps, both people visible
        smplx/ gpp/ interaction_contact_signature.json   (not read)
      test/<subject>/                                 no 3D ground truth (withheld): not read
      info.json template.json                         (not read)

Units: world millimetres (the files hold metres). Skeleton: 25 of H36M's 32 joints, emitted with
the union names of the 'h36m' format.
Split: the release's train subjects are train, except `validation_subjects` (default s04, the
last train pair; our choice, the authors define none). The test subjects' ground truth is
withheld (evaluation server only), so no 'test' examples exist; the paper's training mix used
all train subjects (pass validation_subjects=()).
Tracks: sequence '<subject>/<action>', person 0 or 1 (the joints block), camera_id = camera
folder, frame = video frame: each person of each view is its own dedup track.
Not read: SMPL-X / GHUM fits, contact signatures and their annotated frames.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from posepile.datasets import _imar
from posepile.example import Pose3DExample

SKELETON = _imar.SKELETON
DESCRIPTION = 'CHI3D: 2 people x 25 H36M joints (joints3d_25 JSON, m), 4 cameras, mp4 videos'
VALIDATION_SUBJECTS = ('s04',)
N_PERSONS = 2


def convert(root, subjects: Iterable[str] | None = None,
            validation_subjects: Iterable[str] = VALIDATION_SUBJECTS,
            camera_ids: Iterable[str] | None = None,
            pose_rows_per_frame: int | None = None) -> Iterator[Pose3DExample]:
    """See `posepile.datasets._imar.convert` for the arguments."""
    return _imar.convert(root, 'chi3d', N_PERSONS, subjects, validation_subjects, camera_ids,
                         pose_rows_per_frame)
