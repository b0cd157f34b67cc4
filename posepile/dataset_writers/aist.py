"""AIST++ as released, with rendered people: cameras/setting<k>.json (name, size, matrix,
distortions, Rodrigues rotation, translation in cm) and mapping.txt, splits/pose_{train,val,
test}.txt, ignore_list.txt, keypoints3d/<seq>.pkl (keypoints3d, keypoints3d_optim in cm) and
videos/<seq with c0<i>>.mp4 at 60 fps."""
from __future__ import annotations

import json
import pathlib
import pickle

import cv2
import numpy as np

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import make_people_sequence, studio_cameras

IMSHAPE = (120, 160)
AIST_SEQS = {'gBR_sBM_cAll_d04_mBR0_ch01': 'train', 'gBR_sBM_cAll_d06_mBR0_ch01': 'test',
             'gPO_sFM_cAll_d05_mPO1_ch02': 'validation'}
AIST_IGNORED = 'gJB_sBM_cAll_d07_mJB1_ch03'
AIST_DIST = [0.03, -0.01, 0.0005, 0.0002, 0.0]


def write(root: pathlib.Path):
    """3 split sequences (+1 ignored) x 2 cameras x 4 frames, one camera setting."""
    cams = studio_cameras(2, AIST_DIST)
    records = []
    for i, cam in enumerate(cams):
        rvec = cv2.Rodrigues(cam.R)[0][:, 0]
        records.append({'name': f'c0{i + 1}', 'size': [IMSHAPE[1], IMSHAPE[0]],
                        'matrix': cam.intrinsic_matrix.tolist(), 'distortions': AIST_DIST,
                        'rotation': rvec.tolist(), 'translation': (-(cam.R @ cam.t) / 10).tolist()})
    (root / 'cameras').mkdir(parents=True)
    (root / 'cameras' / 'setting1.json').write_text(json.dumps(records))
    all_seqs = [*AIST_SEQS, AIST_IGNORED]
    (root / 'cameras' / 'mapping.txt').write_text(''.join(f'{s} setting1\n' for s in all_seqs))
    (root / 'splits').mkdir()
    for split, fname in [('train', 'pose_train.txt'), ('validation', 'pose_val.txt'),
                         ('test', 'pose_test.txt')]:
        listed = [s for s, sp in AIST_SEQS.items() if sp == split]
        if split == 'train':
            listed.append(AIST_IGNORED)
        (root / 'splits' / fname).write_text('\n'.join(listed))
    (root / 'ignore_list.txt').write_text(AIST_IGNORED + '\n')
    (root / 'keypoints3d').mkdir()
    truth = {}
    for k, seq in enumerate(all_seqs):
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=17, seed=10 + k,
                                      step_mm_per_frame=60.0)
        kp = people[0].joints.astype(np.float64) / 10.0
        kp_raw = kp + 0.5  # the un-optimised triangulation differs by 5 mm
        if k == 0:
            kp[2] = np.nan  # a frame without keypoints
        if k == 2:  # keypoints outlast the 4-frame videos by one frame
            kp, kp_raw = np.concatenate([kp, kp[-1:]]), np.concatenate([kp_raw, kp_raw[-1:]])
        with open(root / 'keypoints3d' / f'{seq}.pkl', 'wb') as f:
            pickle.dump({'keypoints3d': kp_raw, 'keypoints3d_optim': kp}, f, protocol=4)
        for i, p in enumerate(people):
            write_video(root / 'videos' / f'{seq.replace("cAll", f"c0{i + 1}")}.mp4', p.images,
                        fourcc='mp4v', fps=60)
        truth[seq] = people
    return dict(cams=cams, records=records, people=truth)
