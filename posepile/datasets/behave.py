"""BEHAVE converter (Bhatnagar et al., CVPR 2022): SMPL+H fits of people with objects, 4 Kinects.

Expected layout under `root` (Date01..Date07.zip unpacked into sequences/, calibs.zip, split.json):

    root/
      split.json                              {"train": [seq, ...], "test": [seq, ...]}
      calibs/
        intrinsics/<k>/calibration.json       per Kinect k = 0..3: 'color': fx, fy, cx, cy,
                                              k1..k6, p1, p2 (OpenCV rational model)
        Date01/config/<k>/config.json         'rotation' (9, row-major) and 'translation' (3, m):
        ...                                   camera -> world, x_world = R x_cam + t
      sequences/
        Date01_Sub01_backpack_back/           one sequence
          info.json                           'gender', 'kinects' [0..3], 'intrinsic', 'config'
          t0003.000/                          one frame (name = time stamp in seconds)
            k0.color.jpg ... k3.color.jpg     2048x1536 colour images
            k0.person_mask.jpg ...            person masks (read unless masks=False)
            person/fit02/person_fit.pkl       SMPL+H fit: 'pose' [156], 'betas' [10], 'trans' [3]

info.json's 'intrinsic'/'config' are paths to the calibration folders; the released files hold
paths of the authors' machines, so a path is resolved from its last 'calibs' component on
(root/calibs/...), else relative to the sequence folder; it may never leave `root`.

Joints: the fits are SMPL+H parameters (axis-angle pose of 52 joints, metres); the converter runs
the SMPL+H forward pass (`posepile.body_models`, gendered model from info.json, under
`body_model_dir`) and keeps the 22 body joints, which are SMPL's first 22 joints; SMPL's two hand
joints ('lhan', 'rhan') have no SMPL+H counterpart and are NaN. World frame = the Kinect rig's
world (camera 1's frame, y down), millimetres.

Split: split.json ('train' / 'test'), as used in the BEHAVE paper; sequences in neither list are
skipped. Tracks: sequence = folder name, camera_id = 'k<k>', frame = index of the time-stamp
folder in time order. Pickles are read only with `posepile.safe_unpickle`.
Not read: object fits, person_J3d.json (OpenPose triangulation), depth images, point clouds.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import body_models, joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'smpl'
DESCRIPTION = 'BEHAVE: SMPL+H fits (needs --body-model-dir) -> SMPL body joints, 4 Kinects'
SPLITS = ('train', 'test')
N_BODY_JOINTS = 22  # SMPL+H's body joints = SMPL's first 22
WORLD_UP = (0.0, -1.0, 0.0)
_DISTORTION_KEYS = ('k1', 'k2', 'p1', 'p2', 'k3', 'k4', 'k5', 'k6')


def load_camera(intrinsics_path: pathlib.Path, config_path: pathlib.Path) -> Camera:
    """The colour camera of one Kinect (world mm) from its calibration.json and config.json."""
    color = common.get_field(common.load_json(intrinsics_path), 'color', intrinsics_path)
    values = {key: float(common.get_field(color, key, f'{intrinsics_path} [color]', ()))
              for key in ('fx', 'fy', 'cx', 'cy') + _DISTORTION_KEYS}
    intrinsics = [[values['fx'], 0, values['cx']], [0, values['fy'], values['cy']], [0, 0, 1]]
    config = common.load_json(config_path)
    rot_cam_to_world = common.get_field(config, 'rotation', config_path, (9,)).reshape(3, 3)
    centre = common.get_field(config, 'translation', config_path, (3,)) * 1000.0
    try:
        return Camera(centre, rot_cam_to_world.T, intrinsics,
                      [values[k] for k in _DISTORTION_KEYS], world_up=WORLD_UP)
    except ValueError as e:
        raise common.DatasetFormatError(f'{config_path}: invalid camera ({e})') from None


def _calibration_dir(root: pathlib.Path, seq_dir: pathlib.Path, info_path, value) -> pathlib.Path:
    parts = pathlib.PurePosixPath(str(value).replace('\\', '/')).parts
    if 'calibs' in parts:
        last = len(parts) - 1 - parts[::-1].index('calibs')
        relative = pathlib.PurePosixPath(*parts[last:])
    else:
        relative = seq_dir.relative_to(root) / str(value)
    return common.safe_path(root, relative, str(info_path))


def load_fit(path: pathlib.Path) -> dict:
    """'pose' [156], 'betas' [10 or more], 'trans' [3] of one person_fit.pkl."""
    fit = common.load_pickled_dict(path, 'a BEHAVE SMPL+H fit (person_fit.pkl)')
    return {'pose': common.get_field(fit, 'pose', path, (156,)),
            'betas': common.get_field(fit, 'betas', path, (None,)),
            'trans': common.get_field(fit, 'trans', path, (3,))}


def _mask_rle(path: pathlib.Path) -> dict:
    from PIL import Image
    from pycocotools import mask as mask_lib
    try:
        with Image.open(path) as im:
            mask = np.asarray(im.convert('L')) > 127  # JPEG: threshold away compression noise
    except OSError as e:
        raise common.DatasetFormatError(f'{path}: not a readable mask image ({e})') from None
    rle = mask_lib.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts']}


def _frame_dirs(seq_dir: pathlib.Path) -> list[pathlib.Path]:
    frames = []
    for d in seq_dir.iterdir():
        if d.is_dir() and d.name.startswith('t'):
            try:
                frames.append((float(d.name[1:]), d))
            except ValueError:
                continue
    return [d for _, d in sorted(frames)]


def sequence_joints(fits: list[dict], model: body_models.BodyModel) -> np.ndarray:
    """[T, 24, 3] world mm in SMPL order (hands NaN) from T SMPL+H fits, one batched pass."""
    betas_width = max(len(f['betas']) for f in fits)
    betas = np.stack([np.pad(f['betas'], (0, betas_width - len(f['betas']))) for f in fits])
    out = body_models.forward(model, np.stack([f['pose'] for f in fits]), betas=betas,
                              trans=np.stack([f['trans'] for f in fits]), return_vertices=False)
    coords = np.full((len(fits), 24, 3), np.nan)
    coords[:, :N_BODY_JOINTS] = out.joints[:, :N_BODY_JOINTS] * 1000.0
    return coords


def convert(root, body_model_dir=None, splits: Iterable[str] = SPLITS,
            masks: bool = True) -> Iterator[Pose3DExample]:
    """Yields one example per (sequence, frame, Kinect); see the module docstring.

    Args:
        root: the unpacked dataset.
        body_model_dir: holds smplh/SMPLH_{MALE,FEMALE}.npz (see `posepile.body_models`);
            default: the POSEPILE_BODY_MODEL_DIR environment variable.
        splits: which split.json lists to read.
        masks: attach the k<k>.person_mask.jpg masks.
    """
    root = pathlib.Path(root)
    body_model_dir = body_models.resolve_body_model_dir(body_model_dir, 'BEHAVE (SMPL+H)')
    names = joints.union_names(SKELETON)
    split_path = root / 'split.json'
    split_lists = common.load_json(split_path)
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f'unknown BEHAVE split {split!r}; expected one of {SPLITS}')
        sequences = common.get_field(split_lists, split, split_path)
        if not isinstance(sequences, list):
            raise common.DatasetFormatError(f"{split_path}: field {split!r} must be a list")
        for seq in sorted(sequences):
            seq_dir = common.safe_path(root, f'sequences/{seq}', str(split_path))
            common.require_dir(seq_dir, f'the BEHAVE sequence {seq} listed in split.json')
            yield from _convert_sequence(root, seq_dir, split, names, body_model_dir, masks)


def _convert_sequence(root, seq_dir, split, names, body_model_dir, masks):
    info_path = seq_dir / 'info.json'
    info = common.load_json(info_path)
    gender = str(common.get_field(info, 'gender', info_path))
    kinects = [int(k) for k in common.get_field(info, 'kinects', info_path, (None,))]
    intr_dir = _calibration_dir(root, seq_dir, info_path, common.get_field(info, 'intrinsic',
                                                                            info_path))
    config_dir = _calibration_dir(root, seq_dir, info_path, common.get_field(info, 'config',
                                                                              info_path))
    cameras = {k: load_camera(intr_dir / str(k) / 'calibration.json',
                              config_dir / str(k) / 'config.json') for k in kinects}
    frame_dirs = _frame_dirs(seq_dir)
    if not frame_dirs:
        return
    model = body_models.get_body_model(body_model_dir, 'smplh', gender)
    fits = [load_fit(d / 'person' / 'fit02' / 'person_fit.pkl') for d in frame_dirs]
    coords = sequence_joints(fits, model)
    imshapes = {}
    for i, frame_dir in enumerate(frame_dirs):
        for k in kinects:
            image = common.require_file(frame_dir / f'k{k}.color.jpg', f'Kinect {k} colour image')
            imshape = imshapes.setdefault(k, common.image_shape(image))
            box = common.box_around_points(cameras[k].world_to_image(coords[i]), imshape=imshape)
            if not (box[2] > 0 and box[3] > 0):
                count_skipped('behave', 'person outside the image (empty box)')
                continue
            mask = (_mask_rle(common.require_file(frame_dir / f'k{k}.person_mask.jpg',
                                                  f'Kinect {k} person mask')) if masks else None)
            yield Pose3DExample(
                image=str(image), camera=cameras[k].copy(), world_coords=coords[i],
                joint_names=names, box=box, dataset='behave', sequence=seq_dir.name, person=0,
                camera_id=f'k{k}', frame=i, split=split, mask=mask,
                extra={'time_stamp': frame_dir.name, 'gender': gender})
