"""HSPACE as released, with rendered people: TFRecords of tf.train.Example written by TensorFlow's
own writer, with the release's feature names (image/rgb png, character_masks png, camera_intrinsics,
RIGGED_<i>/joints_3d camera metres, RIGGED_<i>/mask_id). Real frames are larger; these are 160x120
with intrinsics to match."""
from __future__ import annotations

import pathlib

import cv2
import numpy as np
import tensorflow as tf

from posepile.dataset_writers.people import default_camera, make_people_sequence

IMSHAPE = (120, 160)
N_FRAMES = 3
MASK_ID = 7  # person pixels are labelled 7 or 6


def example_bytes(image, labels, K, people_cam_m, mask_ids):
    def floats(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(np.ravel(v))))

    def ints(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(np.ravel(v))))

    def raw(b):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[b]))

    feature = {
        'image/rgb': raw(cv2.imencode('.png', image[..., ::-1])[1].tobytes()),
        'character_masks': raw(cv2.imencode('.png', labels)[1].tobytes()),
        'camera_intrinsics': floats([K[0, 0], K[1, 1], K[0, 2], K[1, 2]]),
        'number_of_rigged_characters': ints([len(people_cam_m)])}
    for i, (coords, mask_id) in enumerate(zip(people_cam_m, mask_ids)):
        feature[f'RIGGED_{i}/joints_3d'] = floats(coords)
        feature[f'RIGGED_{i}/mask_id'] = ints([mask_id])
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    cam = default_camera(IMSHAPE, distance_mm=3000)
    people = make_people_sequence([cam], IMSHAPE, n_frames=N_FRAMES, n_joints=63, seed=11,
                                  step_mm_per_frame=150.0)[0]
    train = root / '2021_01' / 'train'
    train.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(train / 'scene_0003.tfrecord')) as writer:
        for t in range(N_FRAMES):
            labels = np.zeros(IMSHAPE, np.uint8)
            labels[people.masks[t]] = MASK_ID
            labels[people.masks[t] & (np.arange(IMSHAPE[1]) % 2 == 0)] = MASK_ID - 1
            labels[:2, :2] = 20  # a tiny second character: skipped
            cam_m = cam.world_to_camera(people.joints[t]) / 1000
            # A third character with no pixels (mask id 50, labels 50 / 49 absent): skipped.
            writer.write(example_bytes(people.images[t], labels, cam.intrinsic_matrix,
                                       [cam_m, cam_m + 1, cam_m + 2], [MASK_ID, 20, 50]))
    return cam, people
