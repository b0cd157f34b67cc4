"""ASPset-510 as the official toolkit extracts it, with rendered people: per clip
<part>/cameras/, joints_3d/ and videos/ files and the toolkit's splits.csv (the layout
posepile/datasets/aspset.py documents)."""
from __future__ import annotations

import json
import pathlib

import numpy as np

from posepile.dataset_writers.media import write_c3d, write_video
from posepile.dataset_writers.people import make_people_sequence, studio_cameras

IMSHAPE = (120, 160)
ASPSET_CLIPS = [('04ac', '0026', 'train'), ('04ac', '0027', 'val'), ('0b1d', '0003', 'test')]


def write(root: pathlib.Path):
    truth = {}
    cams = studio_cameras(3)
    cam_ids = ('left', 'mid', 'right')
    for subject in ('04ac', '0b1d'):
        part = 'test' if subject == '0b1d' else 'trainval'
        for cam_id, cam in zip(cam_ids, cams):
            extrinsic = np.eye(4)
            extrinsic[:3, :3], extrinsic[:3, 3] = cam.R, -cam.R @ cam.t
            intrinsic = np.concatenate([cam.intrinsic_matrix, np.zeros((3, 1))], axis=1)
            path = root / part / 'cameras' / subject / f'{subject}-{cam_id}.json'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({'intrinsic_matrix': intrinsic.reshape(-1).tolist(),
                                        'extrinsic_matrix': extrinsic.reshape(-1).tolist()}))
    for k, (subject, clip, split) in enumerate(ASPSET_CLIPS):
        part = 'test' if split == 'test' else 'trainval'
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=17, seed=20 + k,
                                      step_mm_per_frame=40.0)
        invalid = np.zeros((4, 17), bool)
        invalid[1, 12] = True
        write_c3d(root / part / 'joints_3d' / subject / f'{subject}-{clip}.c3d', people[0].joints,
                  [f'J{j}' for j in range(17)], units='m', invalid=invalid)
        for cam_id, p in zip(cam_ids, people):
            write_video(root / part / 'videos' / subject / f'{subject}-{clip}-{cam_id}.mkv',
                        p.images, fourcc='MJPG', fps=50)
        truth[f'{subject}-{clip}'] = people
    (root / 'splits.csv').write_text(''.join(f'{s},{c},{sp}\n' for s, c, sp in ASPSET_CLIPS))
    return dict(cams=cams, people=truth, cam_ids=cam_ids)
