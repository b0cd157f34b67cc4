"""The MPI-INF-3DHP test set as released, with rendered people: TS<i>/annot_data.mat (annot3,
univ_annot3 camera mm, annot2 px, valid_frame, activity_annotation; MATLAB v7.3, i.e. HDF5 with
MATLAB's axis order reversed, or an older MATLAB 5 .mat) and TS<i>/imageSequence/
img_<frame+1:06d>.jpg. Real frames are 2048x2048 (TS1-4) / 1920x1080 (TS5-6); these are 160x120:
readers fit the intrinsics to the annotation, so the resolution does not matter."""
from __future__ import annotations

import pathlib

import h5py
import numpy as np
import scipy.io

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence

IMSHAPE = (120, 160)
VALID = np.array([1, 1, 0, 1, 1])
PELVIS_ROW = 14
# Row r of the 17-joint annotation holds hidden-body point (r - 14) mod 17: the pelvis row gets
# the hidden root, which the renderer draws inside the body.
HIDDEN_OF_ROW = (np.arange(17) - PELVIS_ROW) % 17
SEQUENCES = tuple(f'TS{i}' for i in range(1, 7))
# Per test sequence: camera yaw (deg), focal length (px), file format of annot_data.mat.
SEQUENCE_SHOTS = {'TS1': (30, 170.0, 'v7.3'), 'TS2': (-40, 190.0, 'v5'),
                  'TS3': (15, 180.0, 'v7.3'), 'TS4': (-20, 175.0, 'v7.3'),
                  'TS5': (45, 185.0, 'v7.3'), 'TS6': (-10, 195.0, 'v7.3')}


def write_mat73(path, fields):
    """MATLAB v7.3: an HDF5 file with a 512-byte user block. `fields` hold the shapes h5py reads
    from the released files (MATLAB's axis order reversed), e.g. annot3 (N, 1, 17, 3)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, 'w', userblock_size=512) as f:
        for key, value in fields.items():
            f[key] = np.asarray(value, np.float64)
    header = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5'
    with open(path, 'r+b') as f:
        f.write(header.ljust(116) + b'\x00' * 8 + b'\x00\x02IM')


def write(root: pathlib.Path):
    """TS1 and TS5 (v7.3), univ_annot3 = 0.95 annot3, frame 2 invalid. Returns truth[sequence] =
    (camera, world joints [5, 17, 3] mm, annot3, PeopleSequence)."""
    root = pathlib.Path(root)
    truth = {}
    for seed, (seq, yaw, focal) in enumerate((('TS1', 30, 170.0), ('TS5', -40, 190.0))):
        cam = default_camera(IMSHAPE, yaw_deg=yaw, focal=focal)
        cam.intrinsic_matrix[0, 2] += 3.5  # an off-centre principal point must be recovered
        people = make_people_sequence([cam], IMSHAPE, n_frames=len(VALID), n_joints=17,
                                      seed=seed, step_mm_per_frame=40.0)[0]
        world = people.joints[:, HIDDEN_OF_ROW].astype(np.float64)
        annot3 = cam.world_to_camera(world)
        annot2 = cam.world_to_image(world)
        write_mat73(root / seq / 'annot_data.mat', {
            'annot3': annot3[:, None], 'univ_annot3': annot3[:, None] * 0.95,
            'annot2': annot2[:, None], 'valid_frame': VALID[:, None],
            'activity_annotation': np.ones((len(VALID), 1))})
        for i, image in enumerate(people.images):
            write_jpeg(root / seq / f'imageSequence/img_{i + 1:06d}.jpg', image)
        truth[seq] = (cam, world, annot3, people)
    return truth


def write_test_set(root: pathlib.Path, sequences=SEQUENCES):
    """The benchmark's sequences (SEQUENCE_SHOTS), frame 2 invalid; univ_annot3 is annot3
    rescaled by 0.9 about the pelvis (so it does not project onto annot2). Returns
    truth[sequence] = (camera, annot2 [5, 17, 2] px, PeopleSequence)."""
    root = pathlib.Path(root)
    truth = {}
    for seed, sequence in enumerate(sequences):
        yaw, focal, file_format = SEQUENCE_SHOTS[sequence]
        cam = default_camera(IMSHAPE, yaw_deg=yaw, focal=focal)
        cam.intrinsic_matrix[0, 2] += 3.5
        people = make_people_sequence([cam], IMSHAPE, n_frames=len(VALID), n_joints=17,
                                      seed=seed, step_mm_per_frame=40.0)[0]
        annot3 = cam.world_to_camera(people.joints[:, HIDDEN_OF_ROW].astype(np.float64))
        annot2 = cam.camera_to_image(annot3)
        pelvis = annot3[:, PELVIS_ROW:PELVIS_ROW + 1]
        univ = pelvis + 0.9 * (annot3 - pelvis)
        fields = dict(annot3=annot3, univ_annot3=univ, annot2=annot2)
        flags = dict(valid_frame=VALID, activity_annotation=np.ones(len(VALID)))
        path = root / sequence / 'annot_data.mat'
        if file_format == 'v7.3':
            write_mat73(path, {**{k: v[:, np.newaxis] for k, v in fields.items()},
                               **{k: np.asarray(v, np.float64)[np.newaxis]
                                  for k, v in flags.items()}})
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(path, {
                **{k: v.transpose(2, 1, 0)[:, :, np.newaxis] for k, v in fields.items()},
                **{k: np.asarray(v, np.float64)[:, np.newaxis] for k, v in flags.items()}})
        for i, image in enumerate(people.images):
            write_jpeg(root / sequence / f'imageSequence/img_{i + 1:06d}.jpg', image)
        truth[sequence] = (cam, annot2, people)
    return truth
