"""GPA as released, with rendered people: the released archives extracted side by side (one
JSON annotation file listing images, cameras and 34 joints in mm, images/<id>.png; the layout
posepile/datasets/gpa.py documents)."""
from __future__ import annotations

import json
import pathlib

import numpy as np

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import make_people_sequence, studio_cameras

IMSHAPE = (120, 160)


def write(root: pathlib.Path):
    """Two cameras x 4 frames; image ids interleave the cameras; JSON lists them shuffled."""
    cams = studio_cameras(2)
    people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=34, seed=50,
                                  step_mm_per_frame=40.0)
    entries = []
    for c, (cam, p) in enumerate(zip(cams, people)):
        for t in range(4):
            image_id = f'{2 * t + c:010d}'
            sub = '' if c == 0 else f'{image_id[:6]}/{image_id[6:8]}/'  # both layouts
            write_jpeg(root / 'Gaussian_img_jpg_new' / f'{sub}{image_id}.jpg', p.images[t],
                       quality=98)
            K = cam.intrinsic_matrix
            entries.append((
                {'file_name': f'img_jpg_gaussian_750k/{image_id}.jpg', 'id': int(image_id),
                 'height': IMSHAPE[0], 'width': IMSHAPE[1]},
                {'joint_cams': cam.world_to_camera(p.joints[t]).T.tolist(),
                 'f': [K[0, 0], K[1, 1]], 'c': [K[0, 2], K[1, 2]], 'istrains': c == 0}))
    order = np.random.default_rng(0).permutation(len(entries))
    (root / 'xyz_gpa12_mdp_cntind_crop_cam_c2g.json').write_text(json.dumps({
        'images': [entries[i][0] for i in order], 'annotations': [entries[i][1] for i in order]}))
    (root / 'Sequence_ids').mkdir()
    np.save(root / 'Sequence_ids' / 'cam_ids_750k.npy', np.array([7, 9] * 4, np.int32))
    return dict(cams=cams, people=people)
