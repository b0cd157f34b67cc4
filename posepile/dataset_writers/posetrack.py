"""PoseTrack 2018 as released, with rendered people: posetrack_data/annotations/{train,val}/
<video>.json (images with frame ids and ignore regions, annotations with 17 keypoint slots, bbox,
track_id) and images/{train,val}/<video>/<frame:06d>.jpg."""
from __future__ import annotations

import json
import pathlib

import numpy as np

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence

IMSHAPE = (120, 160)
SLOTS = ['nose', 'head_bottom', 'head_top', 'left_ear', 'right_ear', 'left_shoulder',
         'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
         'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle']
TRAIN_VIDEO, VAL_VIDEO = '000001_bonn_train', '000342_mpii_test'


def category():
    return [{'supercategory': 'person', 'id': 1, 'name': 'person', 'keypoints': SLOTS,
             'skeleton': [[16, 14], [14, 12]]}]


def slot_keypoints(points, labelled):
    """17 x (x, y, v) in the release's convention: unannotated = (0, 0, 0), ears never."""
    kp = np.zeros((17, 3))
    kp[:, :2] = points
    kp[:, 2] = labelled
    kp[[3, 4]] = 0
    kp[kp[:, 2] == 0] = 0
    return kp.reshape(-1).tolist()


def write_video(root, base, split_dir, video, frames, seed, ignore=None):
    cam = default_camera(IMSHAPE, distance_mm=4500)
    people = make_people_sequence([cam], IMSHAPE, n_frames=len(set(frames.values())),
                                  n_joints=17, seed=seed, step_mm_per_frame=300.0)[0]
    labelled = np.ones(17)
    labelled[9] = 0  # one annotated-as-missing wrist
    images, annotations, truth = [], [], {}
    for frame, render in frames.items():
        image_id = 10000010000 + frame
        file_name = f'images/{split_dir}/{video}/{frame:06d}.jpg'
        write_jpeg(base / file_name, people.images[render])
        image = {'file_name': file_name, 'id': image_id, 'frame_id': image_id,
                 'vid_id': video[:6], 'nframes': 100, 'is_labeled': True,
                 'has_no_densepose': True}
        if ignore is not None and frame == min(frames):
            image['ignore_regions_x'], image['ignore_regions_y'] = ignore
        images.append(image)
        points = np.round(cam.world_to_image(people.joints[render]))
        ys, xs = np.nonzero(people.masks[render])
        bbox = [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]
        annotations.append({'id': image_id * 100, 'image_id': image_id, 'track_id': 0,
                            'category_id': 1, 'bbox': bbox, 'bbox_head': [70, 8, 12, 14],
                            'keypoints': slot_keypoints(points, labelled), 'scores': []})
        annotations.append({'id': image_id * 100 + 1, 'image_id': image_id, 'track_id': 1,
                            'category_id': 1, 'keypoints': [0] * 51, 'scores': []})  # no bbox
        truth[frame] = (points, people.images[render], bbox)
    path = root / 'posetrack_data' / 'annotations' / split_dir / f'{video}.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({'images': images, 'annotations': annotations,
                                'categories': category()}))
    return truth, labelled


def write(root: pathlib.Path):
    """Train video: images under root/images (frame 1 repeats frame 0's pose); val video:
    images under root/posetrack_data/images (the other layout)."""
    ignore = ([[5.0, 30.0, 30.0, 5.0]], [[5.0, 5.0, 40.0, 40.0]])
    train, labelled = write_video(root, root, 'train', TRAIN_VIDEO, {0: 0, 1: 0, 2: 1}, seed=2,
                                  ignore=ignore)
    val, _ = write_video(root, root / 'posetrack_data', 'val', VAL_VIDEO, {8: 0}, seed=3)
    return train, val, labelled, ignore
