"""Human3.6M protocol: subjects S9 and S11, 17 joints, MPJPE / PA-MPJPE per action.

Ground truth: `<root>/S9/MyPoseFeatures/D3_Positions_mono/<Action> <n>.<camera>.cdf`, the official
camera-frame 3D positions (mm), variable 'Pose' holding 32 joints x 3 per frame (50 Hz). The
17-joint protocol keeps rows PROTOCOL_ROWS of those 32, in the order of skeleton 'h36m_17'.
By default every 64th frame is evaluated (frames 0, 64, 128, ... of each file), as in MeTRAbs;
`frame_step=1` evaluates all frames.
"""
from __future__ import annotations

import pathlib
import re

import numpy as np
from tqdm import tqdm

from eval import metrics
from eval.benchmarks import (BenchmarkResult, SinglePersonGT, aligned_predictions,
                             breakdown_table, error_sets, per_joint_dict, skeleton_joint_names)
from eval.predictions import Predictions

SKELETON = 'h36m_17'
DESCRIPTION = 'Human3.6M S9+S11 D3_Positions_mono .cdf, 17 joints, per action'
SUBJECTS = ('S9', 'S11')
# Rows of the 32-joint 'Pose' record that the 17-joint protocol uses (pelvis first).
PROTOCOL_ROWS = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])
ROOT_INDEX = 0
N_FILE_JOINTS = 32
DEFAULT_FRAME_STEP = 64
# The 15 action classes in the column order of the published tables, with their short labels.
ACTIONS = {
    'Directions': 'Dir', 'Discussion': 'Disc', 'Eating': 'Eat', 'Greeting': 'Greet',
    'Phoning': 'Phone', 'Posing': 'Pose', 'Purchases': 'Purch', 'Sitting': 'Sit',
    'SittingDown': 'SitD', 'Smoking': 'Smoke', 'Photo': 'Photo', 'Waiting': 'Wait',
    'Walking': 'Walk', 'WalkDog': 'WalkD', 'WalkTogether': 'WalkT'}
# Some subjects' files use the long spelling of these action names.
_ACTION_ALIASES = {'TakingPhoto': 'Photo', 'WalkingDog': 'WalkDog'}


def action_class(sequence_name: str) -> str:
    """'Directions 1' -> 'Directions', 'TakingPhoto' -> 'Photo', 'WalkingDog 1' -> 'WalkDog'."""
    base = re.sub(r'\s*\d+$', '', sequence_name.strip())
    return _ACTION_ALIASES.get(base, base)


def read_pose_cdf(path: pathlib.Path) -> np.ndarray:
    """The 'Pose' variable of a D3_Positions(_mono) .cdf file as [F, 32, 3] float64 mm."""
    import cdflib
    try:
        data = np.asarray(cdflib.CDF(str(path)).varget('Pose'), np.float64)
    except (ValueError, KeyError, OSError) as e:
        raise ValueError(f'{path}: cannot read CDF variable "Pose": {e}') from None
    if data.size % (N_FILE_JOINTS * 3):
        raise ValueError(f'{path}: field "Pose" has shape {data.shape}, not a multiple of '
                         f'{N_FILE_JOINTS} joints x 3')
    return data.reshape(-1, N_FILE_JOINTS, 3)


def load_ground_truth(root: str | pathlib.Path, frame_step: int = DEFAULT_FRAME_STEP,
                      subjects: tuple[str, ...] = SUBJECTS) -> SinglePersonGT:
    """Reads every D3_Positions_mono file of `subjects`; keeps frames 0, step, 2*step, ..."""
    root = pathlib.Path(root)
    if frame_step < 1:
        raise ValueError(f'frame_step must be >= 1, got {frame_step}')
    paths = []
    for subject in subjects:
        folder = root / subject / 'MyPoseFeatures' / 'D3_Positions_mono'
        found = sorted(folder.glob('*.cdf'))
        if not found:
            raise FileNotFoundError(f'no .cdf files in {folder}')
        paths.extend((subject, p) for p in found)

    joint_names = skeleton_joint_names(SKELETON)
    if len(joint_names) != len(PROTOCOL_ROWS):
        raise ValueError(f'skeleton {SKELETON} has {len(joint_names)} joints, the protocol 17')
    sequences, frames, poses, actions = [], [], [], []
    for subject, path in tqdm(paths, desc='h36m ground truth', unit='file'):
        stem = path.name[:-len('.cdf')]
        sequence_name, _, camera = stem.rpartition('.')
        if not sequence_name or not camera.isdigit():
            raise ValueError(f'{path}: file name is not "<Action> <n>.<camera id>.cdf"')
        all_frames = read_pose_cdf(path)
        kept = np.arange(0, len(all_frames), frame_step)
        poses.append(all_frames[kept][:, PROTOCOL_ROWS])
        frames.append(kept)
        sequences.append(np.full(len(kept), f'{subject}/{stem}'))
        actions.append(np.full(len(kept), action_class(sequence_name)))
    frame = np.concatenate(frames)
    return SinglePersonGT(
        sequence=np.concatenate(sequences), frame=frame, person=np.zeros_like(frame),
        poses=np.concatenate(poses), joint_names=joint_names,
        groups={'action': np.concatenate(actions)}, source=str(root), skeleton=SKELETON,
        protocol=dict(frame_step=frame_step, subjects=list(subjects)))


def evaluate(gt: SinglePersonGT, predictions: Predictions) -> BenchmarkResult:
    """MPJPE (root = pelvis), PA-MPJPE, N-MPJPE, absolute MPJPE, PCK, AUC; per action."""
    pred, n_unused = aligned_predictions(gt, predictions)
    errors = error_sets(pred, gt.poses, ROOT_INDEX)
    table = breakdown_table(
        'Human3.6M (S9, S11; 17 joints; mm)',
        {k: errors[k] for k in ('MPJPE', 'PA-MPJPE', 'N-MPJPE')},
        gt.groups['action'], column_order=list(ACTIONS), column_labels=ACTIONS)
    summary = metrics.summarize(pred, gt.poses, ROOT_INDEX)
    counts = dict(n_poses=summary.pop('n_poses'), n_joint_entries=summary.pop('n_joint_entries'),
                  n_missing_gt_joints=summary.pop('n_missing_gt_joints'),
                  n_unused_predictions=int(n_unused))
    protocol = dict(**gt.protocol, joints=list(gt.joint_names), root=gt.joint_names[ROOT_INDEX],
                    pck_threshold_mm=metrics.PCK_THRESHOLD_MM)
    return BenchmarkResult('h36m', summary, [table], counts, protocol,
                           per_joint_dict(errors, gt.joint_names))
