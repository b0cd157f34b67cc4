"""3DPW (3D Poses in the Wild) converter: SMPL's 24 joints, moving handheld camera, JPEG frames.

The registry spells the dataset 'tdpw' (Python module names cannot start with a digit).

Expected layout under `root` (the unpacked imageFiles.zip and sequenceFiles.zip):

    root/
      sequenceFiles/train/<seq>.pkl        e.g. courtyard_arguing_00.pkl
      sequenceFiles/validation/<seq>.pkl
      sequenceFiles/test/<seq>.pkl
      imageFiles/<seq>/image_00000.jpg     one JPEG per image frame, numbered from 0

Each .pkl (a Python-2 pickle, read only through `posepile.safe_unpickle.load_pickle`) is a dict;
the fields read here:
    sequence        str, the sequence name
    jointPositions  list over actors of [T, 72]: the 24 SMPL joints (x, y, z), world, METRES
    cam_poses       [T, 4, 4] world-to-camera rigid motion per image frame (translation metres)
    cam_intrinsics  [3, 3] pixels (no distortion)
    campose_valid   list over actors of [T]: 1 where the camera pose is aligned to the image
Coordinates are converted to millimetres. Each frame has its own camera (the camera moves).
Not read: SMPL parameters (poses, betas, trans, *_60Hz), poses2d, texture maps.

Split: the folder the .pkl is in (train / validation / test), as distributed.
Frames whose actor has campose_valid = 0, or whose joints all project outside the image, are
skipped. Tracks: sequence = '<seq>', person = actor index, camera_id = 'handheld', frame =
image index.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'smpl_24'
DESCRIPTION = '3DPW: SMPL 24 joints (sequenceFiles/*.pkl, metres), per-frame cameras, JPEGs'
SPLITS = ('train', 'validation', 'test')
N_JOINTS = 24
# 3DPW's world follows SMPL's y-up convention.
WORLD_UP = (0.0, 1.0, 0.0)


def load_sequence(path: str | pathlib.Path) -> dict:
    """The fields this converter uses, shape-checked: 'name', 'joints' [A, T, 24, 3] mm world,
    'cam_poses' [T, 4, 4] (translation in mm), 'intrinsics' [3, 3], 'valid' [A, T] bool."""
    data = common.load_pickled_dict(path, 'a 3DPW sequence .pkl')
    name = common.get_field(data, 'sequence', path)
    if isinstance(name, bytes):
        name = name.decode()
    cam_poses = common.get_field(data, 'cam_poses', path, (None, 4, 4))
    n = len(cam_poses)
    intrinsics = common.get_field(data, 'cam_intrinsics', path, (3, 3))
    actors = common.get_field(data, 'jointPositions', path)
    valid = common.get_field(data, 'campose_valid', path)
    if not isinstance(actors, (list, tuple)) or not isinstance(valid, (list, tuple)) \
            or len(actors) != len(valid) or not actors:
        raise common.DatasetFormatError(
            f"{path}: fields 'jointPositions' and 'campose_valid' must be lists with one entry "
            f"per actor")
    coords = np.stack([common.get_field({'jointPositions': a}, 'jointPositions',
                                        f'{path} [actor {i}]', (n, N_JOINTS * 3))
                       for i, a in enumerate(actors)])
    valid = np.stack([common.get_field({'campose_valid': v}, 'campose_valid',
                                       f'{path} [actor {i}]', (n,)) for i, v in enumerate(valid)])
    cam_poses = cam_poses.copy()
    cam_poses[:, :3, 3] *= 1000.0
    return {'name': str(name), 'joints': coords.reshape(len(actors), n, N_JOINTS, 3) * 1000.0,
            'cam_poses': cam_poses, 'intrinsics': intrinsics, 'valid': valid > 0}


def convert(root, splits: Iterable[str] = SPLITS) -> Iterator[Pose3DExample]:
    """Yields one example per (sequence, actor, valid frame); see the module docstring.

    Args:
        root: the unpacked dataset.
        splits: which sequenceFiles/<split> folders to read (all must exist).
    """
    root = pathlib.Path(root)
    names = joints.union_names(SKELETON)
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f'unknown 3DPW split {split!r}; expected one of {SPLITS}')
        folder = common.require_dir(root / 'sequenceFiles' / split, f'the {split} .pkl files')
        for pkl in sorted(folder.glob('*.pkl')):
            seq = load_sequence(pkl)
            image_dir = common.safe_path(root, f'imageFiles/{seq["name"]}', str(pkl))
            common.require_dir(image_dir, f'the JPEG frames of {seq["name"]}')
            cameras = []
            for pose in seq['cam_poses']:
                R, t = pose[:3, :3], pose[:3, 3]
                try:
                    cameras.append(Camera(-R.T @ t, R, seq['intrinsics'], world_up=WORLD_UP))
                except ValueError as e:
                    raise common.DatasetFormatError(f'{pkl}: invalid camera ({e})') from None
            imshape = None
            for actor, actor_joints in enumerate(seq['joints']):
                count_skipped('tdpw', 'camera pose not valid (campose_valid = 0)',
                              np.count_nonzero(~seq['valid'][actor]))
                for i in np.flatnonzero(seq['valid'][actor]):
                    image = image_dir / f'image_{i:05d}.jpg'
                    common.require_file(image, f'frame {i} of {seq["name"]}')
                    imshape = imshape or common.image_shape(image)
                    box = common.box_around_points(
                        cameras[i].world_to_image(actor_joints[i]), imshape=imshape)
                    if not (box[2] > 0 and box[3] > 0):
                        count_skipped('tdpw', 'person outside the image (empty box)')
                        continue
                    yield Pose3DExample(
                        image=str(image), camera=cameras[i], world_coords=actor_joints[i],
                        joint_names=names, box=box, dataset='tdpw', sequence=seq['name'],
                        person=actor, camera_id='handheld', frame=int(i), split=split)
