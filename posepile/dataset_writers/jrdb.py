"""JRDB-Pose as released (train_dataset_with_activity/), with rendered people:
calibration/cameras.yaml, images/image_<k>/<sequence>/<frame:06d>.jpg and images/image_stitched/,
labels/labels_2d_pose_coco/<sequence>_image<k>.json and labels_2d_pose_stitched_coco/
<sequence>.json (COCO-style, 17 keypoints x y v, track ids)."""
from __future__ import annotations

import json
import pathlib

import numpy as np

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import jrdb

IMSHAPE = (120, 160)
SEQUENCE = 'gates-basement-2019-01-17_0'
LABEL_FRAMES = [0, 1, 2, 3]  # label frame 1 repeats frame 0's pose -> the motion rule drops it
OFFSET = 2


def yaml_sensor(cam, name):
    def numbers(values):
        return ' '.join(f'{v:.10g}' for v in np.ravel(values))
    K, R = cam.intrinsic_matrix, cam.R
    return (f'  {name}:\n    width: {IMSHAPE[1]}\n    height: {IMSHAPE[0]}\n'
            f'    D: {numbers(cam.distortion_coeffs)}\n'
            f'    K: >\n      {numbers(K[0])}\n      {numbers(K[1])}\n      {numbers(K[2])}\n'
            f'    R: >\n      {numbers(R[0])}\n      {numbers(R[1])}\n      {numbers(R[2])}\n'
            f'    T: {numbers(-R @ cam.t)}\n')


def keypoint_list(points, visibility):
    return np.concatenate([points, np.asarray(visibility)[:, None]], axis=1).reshape(-1).tolist()


def category():
    return [{'id': 1, 'name': 'person', 'keypoints': list(jrdb.KEYPOINT_NAMES[0]),
             'skeleton': [[1, 2], [0, 4], [3, 4]]}]


def write(root: pathlib.Path):
    """Writes the fixture; returns (camera, per label frame (points [17, 2], mask), visibility)."""
    cams = [default_camera(IMSHAPE, distance_mm=3000, yaw_deg=72 * k) for k in range(10)]
    for k, cam in enumerate(cams):
        cam.distortion_coeffs = np.array([-0.3 + 0.01 * k, 0.15, 1e-4, -7e-5, -0.04])
    (root / 'calibration').mkdir(parents=True)
    (root / 'calibration' / 'cameras.yaml').write_text(
        'stitching:\n  radius: 3360000\n  rotation: 0\n  scalewidth: 1831\n  crop: 1\n'
        'cameras:\n  # camera order matters!\n'
        + ''.join(yaml_sensor(cam, f'sensor_{k}') for k, cam in enumerate(cams)))
    cam = cams[0]  # image_0
    people = make_people_sequence([cam], IMSHAPE, n_frames=3, n_joints=17, seed=4,
                                  step_mm_per_frame=300.0)[0]
    render_of_label = {0: 0, 1: 0, 2: 1, 3: 2}
    visibility = np.full(17, 2)
    visibility[[7, 8]] = [1, 0]  # an occluded and an invisible (still positioned) keypoint
    images, annotations, truth = [], [], {}
    for f in LABEL_FRAMES:
        r = render_of_label[f]
        write_jpeg(root / 'images' / 'image_0' / SEQUENCE / f'{f + OFFSET:06d}.jpg',
                   people.images[r])
        images.append({'id': f + 1, 'width': IMSHAPE[1], 'height': IMSHAPE[0],
                       'file_name': f'image_0/{SEQUENCE}/{f:06d}.jpg', 'license': 0})
        points = np.round(cam.world_to_image(people.joints[r]) * 2) / 2  # half-pixel clicks
        truth[f] = (points, people.masks[r])
        annotations.append({'id': 100 + f, 'track_id': 3, 'image_id': f + 1, 'category_id': 1,
                            'is_crowd': 0, 'num_keypoints': 17,
                            'keypoints': keypoint_list(points, visibility)})
        annotations.append({**annotations[-1], 'id': 200 + f, 'track_id': 4, 'is_crowd': 1})
    few = np.full(17, 2)
    few[6:] = 0  # two limb joints (the shoulders)
    annotations.append({'id': 300, 'track_id': 5, 'image_id': 3, 'category_id': 1, 'is_crowd': 0,
                        'num_keypoints': 17, 'keypoints': keypoint_list(truth[2][0], few)})
    labels = root / 'labels' / 'labels_2d_pose_coco'
    labels.mkdir(parents=True)
    (labels / f'{SEQUENCE}_image0.json').write_text(json.dumps({
        'info': {'description': 'JRDB-Pose'}, 'licenses': [], 'categories': category(),
        'images': images, 'annotations': annotations}))

    # The panorama: one frame, labels in its own pixels (the release's width field says 752).
    panorama = np.concatenate([people.images[0]] * 4, axis=1)  # 640 px wide
    write_jpeg(root / 'images' / 'image_stitched' / SEQUENCE / '000000.jpg', panorama)
    stitched = root / 'labels' / 'labels_2d_pose_stitched_coco'
    stitched.mkdir(parents=True)
    shifted = truth[0][0] + [320, 0]
    (stitched / f'{SEQUENCE}.json').write_text(json.dumps({
        'categories': category(),
        'images': [{'id': 1, 'width': 752, 'height': 480,
                    'file_name': f'image_stitched/{SEQUENCE}/000000.jpg'}],
        'annotations': [{'id': 1, 'track_id': 3, 'image_id': 1, 'category_id': 1,
                         'is_crowd': 0, 'keypoints': keypoint_list(shifted, visibility)}]}))
    return cams, truth, visibility, shifted
