"""Converter for COCO person keypoints 2017 (2D only: 17 keypoints per person, no 3D, no camera).

Expected layout under `root`, as distributed on cocodataset.org (annotations_trainval2017.zip and
the image zips, extracted in place):

    <root>/
        annotations/person_keypoints_train2017.json
        annotations/person_keypoints_val2017.json
        train2017/<12-digit image id>.jpg
        val2017/<12-digit image id>.jpg

Each JSON holds 'images' ({id, file_name, height, width}), 'annotations' ({id, image_id,
category_id, bbox [x, y, w, h], segmentation (polygons, or RLE for crowds), area, iscrowd,
keypoints [51] = 17 x (x, y, v), num_keypoints}) and 'categories' (the person category lists the
keypoint names; their order is checked against the 'coco2d' skeleton).

Split: train2017 -> 'train', val2017 -> 'validation' (test2017 has no public annotations).

Coordinates: keypoints are pixel indices, taken as pixel centres (the image frame of
ARCHITECTURE.md). v = 0 marks an unlabelled keypoint (NaN in `coords2d`); v = 1 (labelled but
occluded) and v = 2 (visible) are both kept; v is kept in `extra['visibility']`. COCO boxes and
polygons are continuous coordinates with (0, 0) at the image's top-left corner, so the box is
shifted by -0.5 px into the pixel-centre frame; masks are rasterised by pycocotools as is.

Camera: COCO has no calibration. Each image gets a pinhole guess with identity extrinsics (world
frame = camera frame), no distortion, principal point at the image centre and a focal length that
gives the larger image side a field of view of `fov_deg` (default 8 degrees: the released MeTRAbs
code crops uncalibrated 2D images with an 8 degree camera, i.e. almost an affine crop, so that a
guessed field of view bends no off-centre person; its 55 degrees are the inference-time default
for user images). `world_coords` are all NaN. Keypoints with y > 0.95 x the image height are
dropped (NaN), as the released code does for all 2D data.

Skipped (thresholds are options of `convert`): crowd annotations (iscrowd = 1), persons with
fewer than `min_keypoints` = 6 labelled keypoints, and persons whose box's larger side is below
`min_box_side_px` = 32 px.

Tracks: sequence = image file name, person = annotation id, camera_id = ''; every person is its
own track, so the 100 mm rule keeps all (the world coordinates are NaN anyway).

Not read: captions/instances files, the 'licenses'/'info' blocks, test2017.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from pycocotools import mask as mask_lib

from posepile import joints
from posepile.camera import camera_from_fov
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'coco2d'
DESCRIPTION = 'COCO 2017 person keypoints (2D, 17 joints) with segmentation masks'
DEFAULT_FOV_DEG = 8.0
N_KEYPOINTS = 17
# The keypoint names in COCO's category record, in the order of the 'coco2d' skeleton.
COCO_KEYPOINT_NAMES = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
    'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
_SPLIT_DIRS = {'train': 'train2017', 'validation': 'val2017'}


def annotation_mask(segmentation: Any, height: int, width: int, where: str) -> dict[str, Any]:
    """COCO segmentation (polygon list, uncompressed RLE or compressed RLE) -> compressed RLE
    {'size': [H, W], 'counts': bytes} of the whole annotation (polygons are merged)."""
    try:
        if isinstance(segmentation, list):
            if not segmentation or any(len(p) < 6 or len(p) % 2 for p in segmentation):
                raise ValueError('polygons need an even number (>= 6) of coordinates each')
            rle = mask_lib.merge(mask_lib.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation, dict) and isinstance(segmentation.get('counts'), list):
            rle = mask_lib.frPyObjects(segmentation, height, width)
        elif isinstance(segmentation, dict) and isinstance(segmentation.get('counts'), str):
            rle = {'size': list(segmentation['size']),
                   'counts': segmentation['counts'].encode('ascii')}
        else:
            raise ValueError(f'unsupported type {type(segmentation).__name__}')
    except (ValueError, TypeError, KeyError) as e:
        raise common.DatasetFormatError(
            f'{where}: field "segmentation" is not COCO polygons or RLE ({e})') from None
    if [int(v) for v in rle['size']] != [height, width]:
        raise common.DatasetFormatError(
            f'{where}: segmentation size {list(rle["size"])} differs from the image size '
            f'{[height, width]}')
    return {'size': [height, width], 'counts': bytes(rle['counts'])}


def _check_category(data: dict, path: pathlib.Path) -> None:
    categories = common.get_field(data, 'categories', path)
    person = [c for c in categories if isinstance(c, dict) and c.get('id') == 1]
    if not person:
        raise common.DatasetFormatError(f'{path}: field "categories" has no person (id 1) entry')
    names = tuple(common.get_field(person[0], 'keypoints', f'{path} [categories: person]'))
    if names != COCO_KEYPOINT_NAMES:
        raise common.DatasetFormatError(
            f'{path}: person keypoints are {list(names)}, expected {list(COCO_KEYPOINT_NAMES)}')


def _image_records(data: dict, path: pathlib.Path) -> dict[int, dict]:
    records = {}
    for i, image in enumerate(common.get_field(data, 'images', path)):
        where = f'{path} [images {i}]'
        records[int(common.get_field(image, 'id', where))] = {
            'file_name': str(common.get_field(image, 'file_name', where)),
            'height': int(common.get_field(image, 'height', where)),
            'width': int(common.get_field(image, 'width', where))}
    return records


def convert(root, splits: Iterable[str] = ('train', 'validation'), fov_deg: float = DEFAULT_FOV_DEG,
            min_keypoints: int = 6, min_box_side_px: float = 32.0) -> Iterator[Pose3DExample]:
    """Yields one 2D-only example per usable person annotation, images in file order.

    Args:
        root: the COCO directory (see module docstring).
        splits: which of 'train', 'validation' to read.
        fov_deg: assumed field of view of the larger image side, degrees.
        min_keypoints: persons with fewer labelled (v > 0) keypoints are skipped.
        min_box_side_px: persons whose box's larger side is smaller (pixels) are skipped.
    """
    root = common.require_dir(root, 'the COCO 2017 directory')
    unknown = sorted(set(splits) - set(_SPLIT_DIRS))
    if unknown:
        raise ValueError(f'COCO has no annotated split(s) {unknown}; expected some of '
                         f'{list(_SPLIT_DIRS)}')
    names = joints.union_names(SKELETON)
    no_world = np.full((N_KEYPOINTS, 3), np.nan, np.float32)
    for split in (s for s in _SPLIT_DIRS if s in set(splits)):
        subdir = _SPLIT_DIRS[split]
        path = root / 'annotations' / f'person_keypoints_{subdir}.json'
        data = common.load_json(common.require_file(
            path, f'COCO person keypoint annotations of {subdir}'))
        _check_category(data, path)
        images = _image_records(data, path)
        image_dir = common.require_dir(root / subdir, f'the COCO {subdir} images')
        annotations = common.get_field(data, 'annotations', path)
        for i, ann in enumerate(sorted(annotations, key=lambda a: (a.get('image_id', -1),
                                                                      a.get('id', -1)))):
            where = f'{path} [annotation id {ann.get("id", i)}]'
            if common.get_field(ann, 'category_id', where) != 1:
                count_skipped('coco', 'not a person (category_id != 1)')
                continue
            if ann.get('iscrowd', 0):
                count_skipped('coco', 'crowd annotation (iscrowd = 1)')
                continue
            keypoints = common.get_field(ann, 'keypoints', where, (N_KEYPOINTS * 3,))
            keypoints = keypoints.reshape(N_KEYPOINTS, 3)
            visibility = keypoints[:, 2].astype(np.int64)
            if np.any((visibility < 0) | (visibility > 2)):
                raise common.DatasetFormatError(
                    f'{where}: field "keypoints" has visibility flags {sorted(set(visibility))}, '
                    f'expected 0, 1 or 2')
            box = common.get_field(ann, 'bbox', where, (4,))
            if np.count_nonzero(visibility) < min_keypoints:
                count_skipped('coco', 'fewer labelled keypoints than min_keypoints')
                continue
            if max(box[2:]) < min_box_side_px:
                count_skipped('coco', 'box smaller than min_box_side_px')
                continue
            image_id = int(common.get_field(ann, 'image_id', where))
            if image_id not in images:
                raise common.DatasetFormatError(
                    f'{where}: image_id {image_id} is not in the file\'s "images"')
            image = images[image_id]
            height, width = image['height'], image['width']
            coords2d = common.drop_labels_near_bottom(
                np.where(visibility[:, None] > 0, keypoints[:, :2], np.nan), height)
            yield Pose3DExample(
                image=str(common.safe_path(image_dir, image['file_name'], path)),
                camera=camera_from_fov((height, width), fov_deg),
                world_coords=no_world, joint_names=names,
                box=box - [0.5, 0.5, 0, 0], dataset='coco',
                sequence=image['file_name'], person=int(common.get_field(ann, 'id', where)),
                camera_id='', frame=0, split=split,
                mask=annotation_mask(common.get_field(ann, 'segmentation', where),
                                     height, width, where),
                coords2d=coords2d,
                extra={'image_id': image_id, 'visibility': visibility})
