"""MuPoTS-3D as released (MultiPersonTestSet/), with rendered people: TS<i>/annot.mat (a
frames x people cell of structs: annot2 [2, 17] px, annot3 / univ_annot3 [3, 17] camera mm,
isValidFrame), TS<i>/occlusion.mat and TS<i>/img_<frame:06d>.jpg. Real frames are 2048x2048 /
1920x1080; these are 160x120 (readers fit the intrinsics to the annotation). Only person 0 is
drawn; person 1 is annotated beside them (projection checks only)."""
from __future__ import annotations

import pathlib

import numpy as np
import scipy.io

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence

IMSHAPE = (120, 160)
PELVIS_ROW = 14
HIDDEN_OF_ROW = (np.arange(17) - PELVIS_ROW) % 17
N_FRAMES = 3
SEQUENCES = tuple(f'TS{i}' for i in range(1, 21))
# isValidFrame per person and frame of a two-person test sequence.
TEST_VALID = [[1, 1, 1], [1, 0, 1]]
SECOND_PERSON_OFFSET = np.array([700.0, 300.0, 0])  # world mm from the drawn person


def write_annot(path, cam, people_world, valid):
    """annotations{t, p} structs with annot2 [2,17], annot3 [3,17], univ_annot3, isValidFrame."""
    path = pathlib.Path(path)
    cells = np.empty((N_FRAMES, len(people_world)), object)
    occlusion = np.empty_like(cells)
    for t in range(N_FRAMES):
        for p, world in enumerate(people_world):
            cells[t, p] = {'annot2': cam.world_to_image(world[t]).T,
                           'annot3': cam.world_to_camera(world[t]).T,
                           'univ_annot3': cam.world_to_camera(world[t]).T * 0.9,
                           'isValidFrame': np.array([[valid[p][t]]], np.uint8)}
            occlusion[t, p] = (np.arange(17)[None] % 5 == p).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {'annotations': cells})
    scipy.io.savemat(str(path.with_name('occlusion.mat')), {'occlusion_labels': occlusion})


def write(root: pathlib.Path):
    """MultiPersonTestSet/TS1 (two people, the second invalid in frame 1) and TS6 (one person).
    Returns truth[sequence] = (camera, [world joints [3, 17, 3] mm per person], PeopleSequence)."""
    base = pathlib.Path(root) / 'MultiPersonTestSet'
    truth = {}
    for seed, (seq, n_people) in enumerate((('TS1', 2), ('TS6', 1))):
        cam = default_camera(IMSHAPE, yaw_deg=20 * seed, focal=180.0 + 10 * seed)
        cam.intrinsic_matrix[1, 2] -= 2.5
        people = make_people_sequence([cam], IMSHAPE, n_frames=N_FRAMES, n_joints=17, seed=seed,
                                      step_mm_per_frame=60.0)[0]
        world = people.joints[:, HIDDEN_OF_ROW].astype(np.float64)
        people_world = [world, world + SECOND_PERSON_OFFSET][:n_people]
        write_annot(base / seq / 'annot.mat', cam, people_world, TEST_VALID[:n_people])
        for t, image in enumerate(people.images):
            write_jpeg(base / seq / f'img_{t:06d}.jpg', image)
        truth[seq] = (cam, people_world, people)
    return truth


def write_test_set(root: pathlib.Path, sequences=SEQUENCES):
    """The benchmark's sequences directly under `root` (the directory eval.benchmarks.mupots
    reads), two people each, the second not annotated in frame 1 (TEST_VALID). Returns
    truth[sequence] = (camera, PeopleSequence)."""
    root = pathlib.Path(root)
    truth = {}
    for i, sequence in enumerate(sequences):
        cam = default_camera(IMSHAPE, yaw_deg=20 + 7 * i, focal=190.0 - i)
        cam.intrinsic_matrix[1, 2] -= 2.5
        people = make_people_sequence([cam], IMSHAPE, n_frames=N_FRAMES, n_joints=17,
                                      seed=3 + i, step_mm_per_frame=60.0)[0]
        world = people.joints[:, HIDDEN_OF_ROW].astype(np.float64)
        write_annot(root / sequence / 'annot.mat', cam, [world, world + SECOND_PERSON_OFFSET],
                    TEST_VALID)
        for t, image in enumerate(people.images):
            write_jpeg(root / sequence / f'img_{t:06d}.jpg', image)
        truth[sequence] = (cam, people)
    return truth
