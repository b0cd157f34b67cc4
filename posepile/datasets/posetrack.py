"""Converter for PoseTrack 2018 (2D only: 15 annotated keypoints per person, tracked in videos).

Expected layout under `root` (the PoseTrack 2018 release from posetrack.net: the annotation
archive and the image archives, extracted in place):

    <root>/
        posetrack_data/annotations/train/<video>.json   (or annotations/train/..., i.e. root =
        posetrack_data/annotations/val/<video>.json      posetrack_data itself)
        images/train/<video>/<frame:06d>.jpg            (or posetrack_data/images/...: file_name
        images/val/<video>/<frame:06d>.jpg               is resolved against both)

One COCO-like JSON per video: 'images' ({id, file_name = 'images/train/<video>/000123.jpg',
frame_id, vid_id, nframes, is_labeled, ignore_regions_x, ignore_regions_y}), 'annotations'
({id, image_id, track_id, category_id, keypoints [51] = 17 x (x, y, v), bbox [x, y, w, h],
bbox_head [x, y, w, h], scores}) and 'categories' (the person category names the keypoints in
COCO order: nose, head_bottom, head_top, left_ear, right_ear, left_shoulder, ... right_ankle).
The ear slots are placeholders that are never annotated (PoseTrack keeps COCO's 17-slot layout);
the 15 others form the 'posetrack' skeleton, located by name, so 15-slot files read too.
An unannotated keypoint is (0, 0, 0); annotated ones have v = 1 (the files carry no occlusion
flag), so v > 0 means labelled. Sources: poseval (github.com/leonid-pishchulin/poseval,
poseval/convert.py: the 2018 format, its keypoint names and the zeroed placeholders) and the
reference loader (PosePile posepile/ds/posetrack/main.py).

ignore_regions_x / _y: per image, polygons (x list, y list) around people that were not
annotated. They are read, checked (equal lengths, >= 3 vertices) and kept in
`extra['ignore_regions']` ([N, 2] px arrays); a person-centred crop of an annotated person
needs no more: there is no loss on pixels outside the labelled person's keypoints.

Camera: no calibration; the uncalibrated guess posepile.camera.camera_from_fov (identity
extrinsics, `fov_deg` = 55 over the larger side, as the reference assumes for 2D data), per
video (its first image's size). World coordinates are NaN. Box: the annotation's bbox, shifted
by -0.5 px into the pixel-centre frame like COCO's; annotations without a bbox are skipped, as
in the reference.

Skipped (counted): annotations without bbox; persons with fewer than `min_limb_joints` = 7
labelled limb joints (the reference 2D mix's rule); frames of a track in which no joint became
labelled and none moved at least `motion_head_fraction` = 0.5 x the head box diagonal since its
last kept frame (the reference's rule; 10 % of the box's larger side without bbox_head);
labelled frames whose image is missing.

Split: annotations/train -> 'train', annotations/val -> `val_split` (default 'validation'; the
reference trains on both, i.e. val_split='train'); annotations/test has no public keypoints and
is not read. Tracks: sequence = the video directory name, person = track_id, camera_id = '',
frame = the image's frame number.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import camera_from_fov
from posepile.datasets import common
from posepile.datasets._video2d import (DEFAULT_MIN_LIMB_JOINTS, MotionFilter2D,
                                        annotations_in_track_order, limb_joint_mask,
                                        video_images)
from posepile.datasets.coco import DEFAULT_FOV_DEG
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'posetrack'
DESCRIPTION = 'PoseTrack 2018 2D keypoints (15 annotated, tracked) from the per-video JSON files'
# The 'posetrack' skeleton's joints by their names in the files.
FILE_NAMES = ('nose', 'head_bottom', 'head_top', 'left_shoulder', 'right_shoulder', 'left_elbow',
              'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
              'right_knee', 'left_ankle', 'right_ankle')
_SPLIT_DIRS = {'train': 'train', 'val': 'validation'}


def _annotation_dir(root: pathlib.Path) -> pathlib.Path:
    for candidate in (root / 'posetrack_data' / 'annotations', root / 'annotations'):
        if candidate.is_dir():
            return candidate
    raise common.DatasetFormatError(
        f'missing directory {root}/posetrack_data/annotations (or {root}/annotations): the '
        f'PoseTrack 2018 annotation archive, extracted')


def _keypoint_columns(data: dict, path: pathlib.Path) -> tuple[np.ndarray, int]:
    """(indices into the file's keypoint slots of the skeleton's 15 joints, found by name;
    the number of slots)."""
    categories = common.get_field(data, 'categories', path)
    person = [c for c in categories if isinstance(c, dict) and c.get('name') == 'person']
    if not person:
        raise common.DatasetFormatError(f'{path}: field "categories" has no "person" entry')
    names = [str(n) for n in common.get_field(person[0], 'keypoints', f'{path} [categories]')]
    missing = [n for n in FILE_NAMES if n not in names]
    if missing:
        raise common.DatasetFormatError(f'{path}: person keypoints {names} lack {missing}')
    return np.array([names.index(n) for n in FILE_NAMES]), len(names)


def _ignore_regions(image: dict, where: str) -> list[np.ndarray]:
    xs, ys = image.get('ignore_regions_x', []) or [], image.get('ignore_regions_y', []) or []
    if len(xs) != len(ys):
        raise common.DatasetFormatError(f'{where}: ignore_regions_x has {len(xs)} polygons, '
                                        f'ignore_regions_y {len(ys)}')
    regions = []
    for k, (x, y) in enumerate(zip(xs, ys)):
        try:
            polygon = np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64)], axis=-1)
        except ValueError:
            raise common.DatasetFormatError(
                f'{where}: ignore region {k} has {len(x)} x and {len(y)} y coordinates') from None
        if polygon.ndim != 2 or len(polygon) < 3:
            raise common.DatasetFormatError(f'{where}: ignore region {k} needs >= 3 vertices')
        regions.append(polygon)
    return regions


def convert(root, splits: Iterable[str] = ('train', 'validation'),
            val_split: str = 'validation', fov_deg: float = DEFAULT_FOV_DEG,
            min_limb_joints: int = DEFAULT_MIN_LIMB_JOINTS, motion_head_fraction: float = 0.5,
            videos: Iterable[str] | None = None) -> Iterator[Pose3DExample]:
    """Yields one 2D-only example per kept person-frame; see the module docstring.

    Args:
        root: the PoseTrack 2018 directory.
        splits: which of the release's splits to read: 'train' (annotations/train) and/or
            'validation' (annotations/val).
        val_split: the example split given to annotations/val ('validation' or 'train').
        fov_deg: assumed field of view of the larger image side, degrees.
        min_limb_joints: persons with fewer labelled limb joints are skipped.
        motion_head_fraction: the 2D motion rule's threshold, a fraction of the head box
            diagonal.
        videos: read only these videos (JSON file stems; default: all).
    """
    root = common.require_dir(root, 'the PoseTrack 2018 directory')
    unknown = sorted(set(splits) - set(_SPLIT_DIRS.values()))
    if unknown:
        raise ValueError(f'PoseTrack has no annotated split(s) {unknown}; expected some of '
                         f'{sorted(_SPLIT_DIRS.values())}')
    if val_split not in ('train', 'validation'):
        raise ValueError(f'val_split must be "train" or "validation", got {val_split!r}')
    annotation_dir = _annotation_dir(root)
    wanted = None if videos is None else set(videos)
    names = joints.union_names(SKELETON)
    limbs = limb_joint_mask(joints.get_skeleton(SKELETON).names)
    for directory, split in _SPLIT_DIRS.items():
        if split not in set(splits):
            continue
        paths = sorted(common.require_dir(annotation_dir / directory,
                                          f'the PoseTrack {directory} annotations').glob('*.json'))
        for path in paths:
            if wanted is None or path.stem in wanted:
                yield from _convert_video(root, path, val_split if split == 'validation'
                                          else split, fov_deg, min_limb_joints,
                                          motion_head_fraction, names, limbs)


def _convert_video(root, path, split, fov_deg, min_limb_joints, head_fraction, names, limbs):
    data = common.load_json(path)
    columns, n_slots = _keypoint_columns(data, path)
    images = video_images(data, path)
    regions = {image_id: _ignore_regions(record, f'{path} [images id {image_id}]')
               for image_id, (_, _, record) in images.items()}
    dataset = 'posetrack'
    motion = MotionFilter2D()
    base = camera = None
    no_world = np.full((len(names), 3), np.nan, np.float32)
    for track, where, ann in annotations_in_track_order(data, path, images):
        image_id = int(ann['image_id'])
        file_name, frame, _ = images[image_id]
        if 'bbox' not in ann:
            count_skipped(dataset, 'annotation without bbox')
            continue
        keypoints = common.get_field(ann, 'keypoints', where, (n_slots * 3,))
        keypoints = keypoints.reshape(n_slots, 3)[columns]
        labelled = keypoints[:, 2] > 0
        if np.count_nonzero(labelled & limbs) < min_limb_joints:
            count_skipped(dataset, 'fewer labelled limb joints than min_limb_joints')
            continue
        coords2d = np.where(labelled[:, None], keypoints[:, :2], np.nan)
        if base is None:  # images/... is relative to root or to root/posetrack_data
            base = next((b for b in (root, root / 'posetrack_data')
                         if (b / file_name).is_file()), None)
        image_path = None if base is None else common.safe_path(base, file_name, path)
        if image_path is None or not image_path.is_file():
            count_skipped(dataset, 'labelled frame without an image')
            continue
        if camera is None:
            camera = camera_from_fov(common.image_shape(image_path, 'a PoseTrack image'),
                                     fov_deg)
        box = common.get_field(ann, 'bbox', where, (4,)) - [0.5, 0.5, 0, 0]
        if 'bbox_head' in ann:
            head = common.get_field(ann, 'bbox_head', where, (4,))
            threshold = head_fraction * float(np.hypot(head[2], head[3]))
        else:
            threshold = 0.1 * float(max(box[2:]))
        if not motion.keep(track, coords2d, threshold):
            count_skipped(dataset, 'moved less than the 2D motion threshold since the last kept '
                                   'frame of its track')
            continue
        yield Pose3DExample(
            image=str(image_path), camera=camera, world_coords=no_world, joint_names=names,
            box=box, dataset=dataset, sequence=pathlib.PurePath(file_name).parent.name,
            person=track, camera_id='', frame=frame, split=split,
            coords2d=coords2d.astype(np.float32),
            extra={'ignore_regions': regions[image_id], 'annotation_id': ann.get('id')})
