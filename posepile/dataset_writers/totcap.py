"""TotalCapture as released, with rendered people: the per-subject archives extracted into one
directory (calibration.txt, Vicon gt_skel_gbl_pos.txt joint positions in inches, TC_S<n>_<seq>_cam
<k>.mp4 videos; the layout posepile/datasets/totcap.py documents)."""
from __future__ import annotations

import pathlib

import numpy as np

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import make_people_sequence, studio_cameras

IMSHAPE = (120, 160)
TOTCAP_HEADER = ['Hips', 'Spine', 'Spine1', 'Spine2', 'Spine3', 'Neck', 'Head', 'RightShoulder',
                 'RightArm', 'RightForeArm', 'RightHand', 'LeftShoulder', 'LeftArm',
                 'LeftForeArm', 'LeftHand', 'RightUpLeg', 'RightLeg', 'RightFoot', 'LeftUpLeg',
                 'LeftLeg', 'LeftFoot']
# (subject, action, layout): S1 uses the vicon/ + video/ sub-directories, S4 the flat form.
TOTCAP_SEQS = [(1, 'walking1', 'sub'), (1, 'walking2', 'sub'), (4, 'walking1', 'flat'),
               (4, 'acting3', 'flat')]
TOTCAP_K1 = -0.02


def write(root: pathlib.Path):
    cams = studio_cameras(3, [TOTCAP_K1, 0, 0, 0, 0])
    lines = [f'{len(cams)} 1']
    for cam in cams:
        K = cam.intrinsic_matrix
        lines += [f'0 {IMSHAPE[0] - 1} 0 {IMSHAPE[1] - 1}',
                  f'{K[0, 0]} {K[1, 1]} {K[0, 2]} {K[1, 2]}', f'{TOTCAP_K1}',
                  *(' '.join(f'{v:.12f}' for v in row) for row in cam.R),
                  ' '.join(f'{v:.12f}' for v in -(cam.R @ cam.t) / 1000.0)]
    root.mkdir(parents=True, exist_ok=True)
    (root / 'calibration.cal').write_text('\n'.join(lines) + '\n')
    truth = {}
    for k, (subject, action, layout) in enumerate(TOTCAP_SEQS):
        people = make_people_sequence(cams, IMSHAPE, n_frames=4, n_joints=21, seed=30 + k,
                                      step_mm_per_frame=50.0)
        s_dir = root / f'S{subject}'
        pos_dir = s_dir / 'vicon' / action if layout == 'sub' else s_dir / action
        vid_dir = s_dir / 'video' / action if layout == 'sub' else s_dir / action
        pos_dir.mkdir(parents=True, exist_ok=True)
        inches = people[0].joints.astype(np.float64) / 25.4
        rows = ['\t'.join(' '.join(f'{v:.6f}' for v in j) for j in frame) for frame in inches]
        (pos_dir / 'gt_skel_gbl_pos.txt').write_text(
            '\t'.join(TOTCAP_HEADER) + '\t\n' + '\n'.join(rows) + '\n')
        for c, p in enumerate(people):
            write_video(vid_dir / f'TC_S{subject}_{action}_cam{c + 1}.mp4', p.images, fps=60)
        truth[f'S{subject}/{action}'] = people
    return dict(cams=cams, people=truth)
