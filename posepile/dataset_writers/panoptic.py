"""CMU Panoptic as released, with rendered people: <seq>/calibration_<seq>.json (HD and VGA
cameras: K, distCoef, R, t in cm), hdPose3d_stage1_coco19/body3DScene_<t:08d>.json (bodies with
joints19 in cm + confidence) and hdImgs/<camera>/*.jpg or hdVideos/hd_<camera>.mp4."""
from __future__ import annotations

import json
import pathlib

import numpy as np

from posepile.dataset_writers.media import write_jpeg, write_video
from posepile.dataset_writers.people import make_people_sequence, studio_cameras

IMSHAPE = (120, 160)
PANOPTIC_SEQS = {'171204_pose1': 'jpg', '160906_ian5': 'video'}
PANOPTIC_DIST = [-0.05, 0.01, 0.001, -0.0005, 0.0]


def write(root: pathlib.Path):
    """Two sequences x 2 HD cameras (+ one VGA camera that must be ignored) x 4 frames."""
    truth = {}
    for s, (seq, storage) in enumerate(PANOPTIC_SEQS.items()):
        seq_dir = root / seq
        cams = studio_cameras(2, PANOPTIC_DIST)
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=19, seed=s,
                                      step_mm_per_frame=60.0)
        names = [f'00_{i:02d}' for i in range(len(cams))]
        records = [{'name': n, 'type': 'hd', 'resolution': [IMSHAPE[1], IMSHAPE[0]],
                    'panel': 0, 'node': i, 'K': cam.intrinsic_matrix.tolist(),
                    'distCoef': list(PANOPTIC_DIST), 'R': cam.R.tolist(),
                    't': (-(cam.R @ cam.t) / 10.0).reshape(3, 1).tolist()}
                   for i, (n, cam) in enumerate(zip(names, cams))]
        records.append({'name': '01_01', 'type': 'vga', 'resolution': [640, 480], 'panel': 1,
                        'node': 1, 'K': np.eye(3).tolist(), 'distCoef': [0] * 5,
                        'R': np.eye(3).tolist(), 't': [[0], [0], [0]]})
        seq_dir.mkdir(parents=True)
        (seq_dir / f'calibration_{seq}.json').write_text(json.dumps({'cameras': records}))
        joints_mm = people[0].joints
        conf = np.full((4, 19), 0.7)
        conf[1, 16] = 0.05  # lEar below the threshold in frame 1
        for t in range(4):
            body = np.concatenate([joints_mm[t] / 10.0, conf[t, :, None]], axis=1)
            bodies = [{'id': 3, 'joints19': body.reshape(-1).tolist()},
                      {'id': 7, 'joints19': np.concatenate(  # unreconstructed: all conf -1
                          [joints_mm[t] / 10.0, -np.ones((19, 1))], 1).reshape(-1).tolist()}]
            pose_path = seq_dir / 'hdPose3d_stage1_coco19' / f'body3DScene_{t:08d}.json'
            pose_path.parent.mkdir(exist_ok=True)
            pose_path.write_text(json.dumps({'version': 0.7, 'univTime': 1000.0 + t,
                                             'fpsType': 'hd_29_97', 'bodies': bodies}))
        if storage == 'video':  # a pose file that outlasts the 4-frame videos: skipped
            pose_path.with_name('body3DScene_00000004.json').write_text(pose_path.read_text())
        for n, seq_people in zip(names, people):
            if storage == 'jpg':
                for t in range(4):
                    write_jpeg(seq_dir / 'hdImgs' / n / f'{n}_{t:08d}.jpg', seq_people.images[t],
                               quality=98)
            else:
                write_video(seq_dir / 'hdVideos' / f'hd_{n}.mp4', seq_people.images, fps=30)
        truth[seq] = dict(cams=cams, records=records, people=people, conf=conf, names=names)
    return truth
