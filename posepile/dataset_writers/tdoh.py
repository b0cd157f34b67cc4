"""3DOH50K as released, with rendered people: {trainset,testset}/annots.json keyed by image id
(camera-frame lsp_joints_3d in the dataset's 1/7 m units, extri [4x4] in metres, intri, bbox),
images/<id>.jpg, masks/<id>.png. Real images are 1920x1080; these are 160x120 with intrinsics to
match."""
from __future__ import annotations

import json
import pathlib

import cv2
import numpy as np

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import tdoh

IMSHAPE = (120, 160)


def annotation(cam, world_mm):
    extri = np.eye(4)
    extri[:3, :3] = cam.R
    extri[:3, 3] = -cam.R @ cam.t / 1000
    (x1, y1), (x2, y2) = (cam.world_to_image(world_mm).min(0) - 3,
                          cam.world_to_image(world_mm).max(0) + 3)
    return {'lsp_joints_3d': (cam.world_to_camera(world_mm) / tdoh.UNITS_TO_MM).tolist(),
            'extri': extri.tolist(), 'intri': cam.intrinsic_matrix.tolist(),
            'bbox': [[x1, y1], [x2, y2]], 'betas': [0.0] * 10, 'pose': [0.0] * 72,
            'trans': [0.0] * 3, 'scale': 1.0}


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    truth = {}
    # (folder, camera yaw, first image id, frozen)
    shots = (('trainset', -20.0, 0, False), ('trainset', 30.0, 3, True),
             ('testset', 10.0, 0, False))
    annots = {'trainset': {}, 'testset': {}}
    for seed, (folder, yaw, first_id, frozen) in enumerate(shots):
        cam = default_camera(IMSHAPE, distance_mm=4000, yaw_deg=yaw)
        n = 2 if folder == 'testset' else 3
        person = make_people_sequence([cam], IMSHAPE, n_frames=n, n_joints=14, seed=seed,
                                      step_mm_per_frame=150.0)[0]
        for t in range(n):
            i = 0 if frozen else t
            image_id = f'{first_id + t:05d}'
            world = person.joints[i].astype(np.float64)
            annots[folder][image_id] = annotation(cam, world)
            write_jpeg(root / folder / 'images' / f'{image_id}.jpg', person.images[i])
            if folder == 'trainset':
                (root / folder / 'masks').mkdir(parents=True, exist_ok=True)
                mask = np.repeat(person.masks[i][..., None] * 255, 3, axis=2).astype(np.uint8)
                cv2.imwrite(str(root / folder / 'masks' / f'{image_id}.png'), mask)
            truth[(folder, int(image_id))] = (cam, world, person.masks[i])
    for folder, data in annots.items():
        (root / folder / 'annots.json').write_text(json.dumps(data))
    return truth
