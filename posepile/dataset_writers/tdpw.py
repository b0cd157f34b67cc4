"""3DPW as released, with rendered people: sequenceFiles/{train,validation,test}/<name>.pkl
(protocol-2 pickles of dicts: jointPositions [F, 72] world metres per actor, cam_poses [F, 4, 4],
cam_intrinsics, campose_valid, poses2d [F, 3, 18] OpenPose order, ...) and
imageFiles/<name>/image_<frame:05d>.jpg. Real frames are 1080x1920; these are 160x120 with
intrinsics to match. The camera moves: frame i is what camera i sees."""
from __future__ import annotations

import pathlib
import pickle

import numpy as np

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence

IMSHAPE = (120, 160)
N_FRAMES = 4
# campose_valid of the benchmark sequences' two actors (the second 800 mm aside, not drawn).
TEST_VALID = [[1, 1, 0, 1], [1, 1, 1, 1]]
SECOND_ACTOR_OFFSET = np.array([800.0, 0, 0])
# smpl_24 joint of each OpenPose-18 keypoint: nose, neck, rsho, relb, rwri, lsho, lelb, lwri,
# rhip, rkne, rank, lhip, lkne, lank, reye, leye, lear, rear (the face ones at the head).
OPENPOSE_FROM_SMPL = [15, 12, 17, 19, 21, 16, 18, 20, 2, 5, 8, 1, 4, 7, 15, 15, 15, 15]
# One benchmark sequence per split folder: (name, camera yaw at frame 0, seed).
TEST_SEQUENCES = {'train': ('courtyard_fixture_00', 30, 2),
                  'validation': ('outdoors_fixture_00', -20, 3),
                  'test': ('downtown_fixture_00', 15, 1)}


def moving_cameras(yaw0):
    return [default_camera(IMSHAPE, distance_mm=4000 - 100 * i, yaw_deg=yaw0 + 8 * i)
            for i in range(N_FRAMES)]


def pkl_dict(name, cams, actor_joints_mm, valid):
    poses = np.stack([np.block([[c.R, (-c.R @ c.t)[:, None] / 1000], [np.zeros((1, 3)), 1]])
                      for c in cams])
    return {
        'sequence': name, 'genders': ['m'] * len(actor_joints_mm),
        'jointPositions': [j.reshape(N_FRAMES, 72) / 1000 for j in actor_joints_mm],
        'cam_poses': poses, 'cam_intrinsics': cams[0].intrinsic_matrix.copy(),
        'campose_valid': [np.asarray(v, np.int64) for v in valid],
        'img_frame_ids': np.arange(N_FRAMES), 'poses2d': [np.zeros((N_FRAMES, 3, 18))]}


def write_pkl(path, data):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data, protocol=2))


def _render(cams, seed):
    people = make_people_sequence(cams, IMSHAPE, n_frames=N_FRAMES, n_joints=24, seed=seed,
                                  step_mm_per_frame=150.0)
    images = np.stack([people[i].images[i] for i in range(N_FRAMES)])
    masks = np.stack([people[i].masks[i] for i in range(N_FRAMES)])
    return people, images, masks


def write(root: pathlib.Path):
    """train/courtyard_fixture_00 (two actors) and test/downtown_fixture_00 (one), poses2d
    zero, frame 2 of actor 0 invalid; an empty validation folder. Returns truth[name] =
    (cameras per frame, actor joints [4, 24, 3] world mm, images, masks, split)."""
    root = pathlib.Path(root)
    truth = {}
    for seed, (split, name, n_actors) in enumerate((('train', 'courtyard_fixture_00', 2),
                                                    ('test', 'downtown_fixture_00', 1))):
        cams = moving_cameras(15 * seed)
        people, images, masks = _render(cams, seed)
        actors = [people[0].joints.astype(np.float64)]
        if n_actors == 2:  # a second actor 800 mm to the side (not drawn in the images)
            actors.append(actors[0] + SECOND_ACTOR_OFFSET)
        valid = [[1, 1, 0, 1]] + [[1, 1, 1, 1]] * (n_actors - 1)
        write_pkl(root / 'sequenceFiles' / split / f'{name}.pkl',
                  pkl_dict(name, cams, actors, valid))
        for i, image in enumerate(images):
            write_jpeg(root / 'imageFiles' / name / f'image_{i:05d}.jpg', image)
        truth[name] = (cams, actors, images, masks, split)
    (root / 'sequenceFiles/validation').mkdir()
    return truth


def write_test_set(root: pathlib.Path, splits=tuple(TEST_SEQUENCES)):
    """One sequence per split folder in `splits` (TEST_SEQUENCES), two actors (TEST_VALID),
    poses2d the projected SMPL joints (so detections can be tracked to the actors). Returns
    truth[name] = (cameras per frame, actor joints, images, masks)."""
    root = pathlib.Path(root)
    truth = {}
    for split in splits:
        name, yaw0, seed = TEST_SEQUENCES[split]
        cams = moving_cameras(yaw0)
        people, images, masks = _render(cams, seed)
        actors = [people[0].joints.astype(np.float64)]
        actors.append(actors[0] + SECOND_ACTOR_OFFSET)
        data = pkl_dict(name, cams, actors, TEST_VALID)
        # poses2d as 3DPW ships them, [F, 3, 18] (x, y, confidence), OpenPose order.
        data['poses2d'] = [np.stack([np.concatenate(
            [cams[f].world_to_image(a[f])[OPENPOSE_FROM_SMPL].T, np.ones((1, 18))])
            for f in range(N_FRAMES)]) for a in actors]
        write_pkl(root / 'sequenceFiles' / split / f'{name}.pkl', data)
        for i, image in enumerate(images):
            write_jpeg(root / 'imageFiles' / name / f'image_{i:05d}.jpg', image)
        truth[name] = (cams, actors, images, masks)
    return truth
