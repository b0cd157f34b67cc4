"""COCO person keypoints as released, with rendered people:
annotations/person_keypoints_{train2017,val2017}.json (images, annotations with polygon or RLE
segmentation, bbox, 17 keypoints x y v) and {train2017,val2017}/<id:012d>.jpg; crowd, tiny and
sparsely labelled annotations beside each kept one."""
from __future__ import annotations

import json
import pathlib

import cv2
import numpy as np

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import coco

IMSHAPE = (120, 160)


def polygon_of(mask):
    """COCO polygon (corner-origin continuous coords) tracing the mask's outer boundary."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    largest = max(contours, key=cv2.contourArea)[:, 0].astype(float) + 0.5
    return [largest.reshape(-1).tolist()]


def keypoints_of(points2d, visibility):
    kp = np.concatenate([np.round(points2d), np.asarray(visibility)[:, None]], axis=1)
    kp[np.asarray(visibility) == 0] = 0
    return kp.reshape(-1).tolist()


def category():
    return [{'id': 1, 'name': 'person', 'supercategory': 'person',
             'keypoints': list(coco.COCO_KEYPOINT_NAMES), 'skeleton': [[16, 14], [14, 12]]}]


def write(root: pathlib.Path):
    """Writes the fixture under `root`; returns (truth per kept annotation id, visibility)."""
    cam = default_camera(IMSHAPE, distance_mm=3500)
    people = make_people_sequence([cam], IMSHAPE, n_frames=3, n_joints=17, seed=3)[0]
    truth = {}
    visibility = np.full(17, 2)
    visibility[[3, 4]] = [0, 1]  # an unlabelled and an occluded-but-labelled keypoint
    for split, subdir, frames in (('train', 'train2017', [0, 1]), ('validation', 'val2017', [2])):
        images, annotations = [], []
        for frame in frames:
            image_id = 1000 + frame
            name = f'{image_id:012d}.jpg'
            write_jpeg(root / subdir / name, people.images[frame])
            images.append({'id': image_id, 'file_name': name, 'height': IMSHAPE[0],
                           'width': IMSHAPE[1], 'license': 1, 'coco_url': ''})
            points = cam.world_to_image(people.joints[frame])
            ys, xs = np.nonzero(people.masks[frame])
            bbox = [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]
            ann = {'id': 10 * frame + 1, 'image_id': image_id, 'category_id': 1, 'iscrowd': 0,
                   'segmentation': polygon_of(people.masks[frame]), 'area': float(len(xs)),
                   'bbox': bbox, 'num_keypoints': 16,
                   'keypoints': keypoints_of(points, visibility)}
            crowd = {**ann, 'id': 10 * frame + 2, 'iscrowd': 1,
                     'segmentation': {'size': list(IMSHAPE), 'counts': [0, 5, 19195]}}
            tiny = {**ann, 'id': 10 * frame + 3, 'bbox': [5.0, 5.0, 20.0, 30.0]}
            few = {**ann, 'id': 10 * frame + 4,
                   'keypoints': keypoints_of(points, [2] * 5 + [0] * 12)}
            annotations += [ann, crowd, tiny, few]
            truth[10 * frame + 1] = (points, people.images[frame], people.masks[frame], bbox)
        (root / 'annotations').mkdir(exist_ok=True)
        (root / 'annotations' / f'person_keypoints_{subdir}.json').write_text(json.dumps(
            {'info': {}, 'licenses': [], 'images': images, 'annotations': annotations,
             'categories': category()}))
    return truth, visibility
