"""Converter for the synthetic multi-skeleton world written by `python -m posepile.synthetic`.

Reads the layout documented in `posepile.synthetic.raw_format`. One world holds several
synthetic datasets (synring, synhandheld, synwide, synsurv, synlab; and, if rendered, the 2D-only
synwild), each labelling its own skeleton format(s); `example.dataset` is that synthetic
dataset's name.

2D-only datasets (info.json "two_d_only") are read like COCO: world_coords all NaN, `coords2d`
the labelled image points (NaN where null), and, as the files hold no calibration, a pinhole guess
with identity extrinsics whose larger image side spans `fov_2d_deg` (default 8 degrees, the
released MeTRAbs code's choice for uncalibrated 2D data: a near-affine crop that invents no
perspective; see posepile.datasets.coco). Labels with y > 0.95 x image height are dropped, as
the released code drops them for all 2D data.

Joint names: an example's `joint_names` are union names, the concatenation of
`posepile.joints.union_names(fmt)` over the formats its annotation file labels (e.g.
'lhip_synmocap', ..., 'lfhd_synmarker', ...). Train/validation examples carry their dataset's
format(s); test examples carry every synthetic format (same person, same frame). `SKELETON` below
names only the first format of the studio dataset, for registries that need one name.

Frames whose person is not visible at all (empty mask, zero box) are skipped.
Tracks: sequence = '<split>/<sequence>', person = the subject id, camera_id = 'camN', frame =
time index; each track comes in increasing frame order.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera, camera_from_fov
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample
from posepile.synthetic import raw_format
from posepile.synthetic.cameras import WORLD_UP

SKELETON = 'synmocap'
DESCRIPTION = ('Synthetic multi-skeleton world (posepile.synthetic): 5 datasets, 6 skeleton '
               'formats, rendered capsule bodies; test split labels all formats')
SPLITS = ('train', 'validation', 'test')
DEFAULT_FOV_2D_DEG = 8.0


def _parse_camera(record: dict, path: pathlib.Path, where: str) -> Camera:
    cam = raw_format.require(record, 'camera', path, where)
    where_cam = f'{where}camera: '
    K = raw_format.require_array(cam, 'K', (3, 3), path, where_cam)
    R = raw_format.require_array(cam, 'R', (3, 3), path, where_cam)
    t = raw_format.require_array(cam, 't', (3,), path, where_cam)
    distortion = raw_format.require_array(cam, 'distortion', (None,), path, where_cam)
    try:
        return Camera(t, R, K, distortion, world_up=WORLD_UP)
    except ValueError as e:
        raise ValueError(f'{path}: {where_cam}invalid camera ({e})') from None


def _read_track(root: pathlib.Path, path: pathlib.Path, two_d_only: bool = False,
                fov_2d_deg: float = DEFAULT_FOV_2D_DEG) -> Iterator[Pose3DExample]:
    ann = raw_format.read_json(path)
    dataset = raw_format.require(ann, 'dataset', path)
    split = raw_format.require(ann, 'split', path)
    if split not in SPLITS:
        raise ValueError(f'{path}: field "split" is {split!r}, expected one of {SPLITS}')
    sequence = raw_format.require(ann, 'sequence', path)
    camera_id = raw_format.require(ann, 'camera_id', path)
    subject = int(raw_format.require(ann, 'subject', path))
    formats = list(raw_format.require(ann, 'formats', path))
    names_in_file = raw_format.require(ann, 'joint_names', path)
    union = []
    for fmt in formats:
        try:
            expected = joints.union_names(fmt)
        except KeyError:
            raise ValueError(f'{path}: field "formats" names unknown skeleton {fmt!r}') from None
        stored = raw_format.require(names_in_file, fmt, path, 'joint_names: ')
        if [joints.union_name(n, joints.skeleton_tag(fmt)) for n in stored] != list(expected):
            raise ValueError(f'{path}: field "joint_names.{fmt}" does not match the registered '
                             f'format {fmt!r}')
        union.extend(expected)
    n_joints = {fmt: len(names_in_file[fmt]) for fmt in formats}
    if two_d_only:
        image_size = tuple(int(v) for v in raw_format.require_array(
            ann, 'image_size', (2,), path))
        guess = camera_from_fov(image_size, fov_2d_deg)
        no_world = np.full((len(union), 3), np.nan, np.float32)
    frames = raw_format.require(ann, 'frames', path)
    order = np.argsort([raw_format.require(fr, 'frame', path, f'frames[{i}]: ')
                        for i, fr in enumerate(frames)], kind='stable')
    for i in order:
        record = frames[i]
        where = f'frames[{i}]: '
        box = raw_format.require_array(record, 'box', (4,), path, where)
        if box[2] <= 0 or box[3] <= 0:
            count_skipped(dataset, 'person not visible (empty box)')
            continue
        mask = raw_format.require(record, 'mask', path, where)
        raw_format.require(mask, 'counts', path, f'{where}mask: ')
        raw_format.require(mask, 'size', path, f'{where}mask: ')
        image = root / dataset / raw_format.require(record, 'image', path, where)
        if not image.is_file():
            raise ValueError(f'{path}: {where}field "image" points to a missing file {image}')
        if two_d_only:
            coords2d = np.concatenate([
                _points_or_nan(raw_format.require(raw_format.require(
                    record, 'joints2d', path, where), fmt, path, f'{where}joints2d: '),
                    n_joints[fmt], path, f'{where}joints2d.{fmt}')
                for fmt in formats])
            coords2d = common.drop_labels_near_bottom(coords2d, image_size[0])
            yield Pose3DExample(
                image=str(image), camera=guess.copy(), world_coords=no_world,
                joint_names=tuple(union), box=box, dataset=dataset,
                sequence=f'{split}/{sequence}', person=subject, camera_id=camera_id,
                frame=int(record['frame']), split=split,
                mask={'size': list(mask['size']), 'counts': mask['counts']},
                coords2d=coords2d.astype(np.float32),
                extra={'formats': tuple(formats), 'subject': subject,
                       'annotation_file': str(path)})
            continue
        coords3d = raw_format.require(record, 'joints3d', path, where)
        world = np.concatenate([
            raw_format.require_array(coords3d, fmt, (n_joints[fmt], 3), path, f'{where}joints3d: ')
            for fmt in formats])
        yield Pose3DExample(
            image=str(image), camera=_parse_camera(record, path, where), world_coords=world,
            joint_names=tuple(union), box=box, dataset=dataset, sequence=f'{split}/{sequence}',
            person=subject, camera_id=camera_id, frame=int(record['frame']), split=split,
            mask={'size': list(mask['size']), 'counts': mask['counts']},
            extra={'formats': tuple(formats), 'subject': subject,
                   'occluded_fraction': float(record.get('occluded_fraction', 0.0)),
                   'annotation_file': str(path)})


def _points_or_nan(value, n_joints: int, path: pathlib.Path, where: str) -> np.ndarray:
    """A [J, 2] list whose rows may be null -> float64 [J, 2] with NaN rows."""
    if not isinstance(value, list) or len(value) != n_joints:
        raise ValueError(f'{path}: {where} must be a list of {n_joints} points or nulls')
    try:
        return np.array([[np.nan, np.nan] if row is None else row for row in value], np.float64
                        ).reshape(n_joints, 2)
    except (TypeError, ValueError):
        raise ValueError(f'{path}: {where} holds something other than [x, y] points or '
                         f'nulls') from None


def convert(root, datasets: Iterable[str] | None = None,
            splits: Iterable[str] = SPLITS,
            fov_2d_deg: float = DEFAULT_FOV_2D_DEG) -> Iterator[Pose3DExample]:
    """Yields the examples of a synthetic world under `root`.

    Args:
        root: the directory `python -m posepile.synthetic --out` wrote.
        datasets: synthetic dataset names to read (default: all listed in world.json).
        splits: any of 'train', 'validation', 'test'.
        fov_2d_deg: assumed field of view (larger image side) of the uncalibrated 2D-only
            datasets, degrees.
    """
    root = pathlib.Path(root)
    info = raw_format.read_world_info(root)
    names = list(info['datasets']) if datasets is None else list(datasets)
    unknown = sorted(set(names) - set(info['datasets']))
    if unknown:
        raise ValueError(f'{root / "world.json"}: field "datasets" lacks {unknown}')
    splits = tuple(splits)
    bad = sorted(set(splits) - set(SPLITS))
    if bad:
        raise ValueError(f'unknown splits {bad}; expected a subset of {SPLITS}')
    for name in names:
        two_d_only = bool(raw_format.read_dataset_info(root, name).get('two_d_only', False))
        for path in raw_format.annotation_files(root, name, splits):
            yield from _read_track(root, path, two_d_only, fov_2d_deg)
