"""Human3.6M protocol: subjects S9 and S11, 17 joints, MPJPE / PA-MPJPE per action.

Ground truth: `<root>/S9/MyPoseFeatures/D3_Positions_mono/<Action> <n>.<camera>.cdf`, the official
camera-frame 3D positions (mm), variable 'Pose' holding 32 joints x 3 per frame (50 Hz). The
17-joint protocol keeps rows PROTOCOL_ROWS of those 32, in the order of skeleton 'h36m_17'.
By default every 64th frame is evaluated (frames 0, 64, 128, ... of each file), as in MeTRAbs;
`frame_step=1` evaluates all frames. MPJPE over all 17 joints after subtracting the pelvis,
PA-MPJPE after a similarity Procrustes fit, pooled over all poses ("Avg", as MeTRAbs); the mean
of the 15 per-action means (what many tables print instead) is in the summary too.
S9's 'SittingDown 1', 'Waiting 1' and 'Greeting' ground truth is horizontally shifted by 200 mm
in the world (MeTRAbs posepile/ds/h36m/main.py correct_world_coords). Root-relative metrics do
not see it; correct_s9=True moves those poses by -200 mm world x for the absolute MPJPE (needs
cameras.h5), the released evaluation leaves them (the default). The ground-truth boxes of
`model_inputs` are always built from the corrected poses, so that they cover the person.

Running a model (`model_inputs`, for `eval.run --model`) also reads the videos
`<root>/<subject>/Videos/<Action> <n>.<camera>.mp4` (frame i = pose row i, decoded lazily) and
the calibration `<root>/cameras.h5` (3d-pose-baseline layout, parsed by
posepile.datasets.h36m.load_cameras). The person box: the model's detector (boxes='detector',
the default: one detection per frame, threshold 0, flip augmentation; the released predictions
used detector boxes precomputed by MeTRAbs, H36M ships none), or the ground-truth one (boxes='gt':
the 17 GT joints projected with the camera, distortion included, grown by a margin). The model is
asked for camera-frame poses, the frame of D3_Positions_mono.
The H36M lens model needs OpenCV's thin-prism terms, which the model API (5 coefficients) lacks,
so each frame is first undistorted to the pinhole camera with the same intrinsic matrix
(posepile.image_warp, exact) and the model gets that camera without distortion.
"""
from __future__ import annotations

import functools
import pathlib
import re
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from eval import metrics
from eval.benchmarks import (BenchmarkResult, SinglePersonGT, aligned_predictions,
                             breakdown_table, error_sets, per_joint_dict, prediction_provenance,
                             skeleton_joint_names, wacv23_table)
from eval.model_predictions import RELEASED_INFERENCE, DetectorSettings
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
# Sequences of S9 whose ground truth is 200 mm off in world x (MeTRAbs correct_world_coords).
S9_SHIFTED = ('SittingDown 1', 'Waiting 1', 'Greeting')
S9_SHIFT_MM = np.array([-200.0, 0.0, 0.0])  # world frame
DEFAULT_BOXES = 'detector'
# One person per frame, as predict_tdhp.py (the released H36M boxes were precomputed detections).
DETECTOR = DetectorSettings(threshold=0.0, max_detections=1, flip_aug=True,
                            suppress_implausible_poses=False, fallback_whole_image=True)
INFERENCE_DEFAULTS = RELEASED_INFERENCE


def s9_correction(sequence: str, camera) -> np.ndarray:
    """[3] mm to add to the camera-frame ground truth of `sequence` ('S9/Greeting.54138969')
    to undo the world shift (zeros for every other sequence)."""
    subject, _, stem = sequence.partition('/')
    if subject != 'S9' or stem.rpartition('.')[0] not in S9_SHIFTED:
        return np.zeros(3)
    return camera.R @ S9_SHIFT_MM


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
                      subjects: tuple[str, ...] = SUBJECTS, correct_s9: bool = False
                      ) -> SinglePersonGT:
    """Reads every D3_Positions_mono file of `subjects`; keeps frames 0, step, 2*step, ...
    correct_s9: undo the S9 shift (S9_SHIFTED; reads <root>/cameras.h5)."""
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
        offset = (s9_correction(f'{subject}/{stem}', _camera(root, subject, camera))
                  if correct_s9 else np.zeros(3))
        poses.append(all_frames[kept][:, PROTOCOL_ROWS] + offset)
        frames.append(kept)
        sequences.append(np.full(len(kept), f'{subject}/{stem}'))
        actions.append(np.full(len(kept), action_class(sequence_name)))
    frame = np.concatenate(frames)
    return SinglePersonGT(
        sequence=np.concatenate(sequences), frame=frame, person=np.zeros_like(frame),
        poses=np.concatenate(poses), joint_names=joint_names,
        groups={'action': np.concatenate(actions)}, source=str(root), skeleton=SKELETON,
        protocol=dict(frame_step=frame_step, subjects=list(subjects), correct_s9=correct_s9))


@functools.lru_cache(maxsize=64)
def _camera(root: pathlib.Path, subject: str, camera_id: str):
    """The calibrated camera of `subject` / `camera_id` from <root>/cameras.h5."""
    from posepile.datasets import h36m as h36m_data
    cameras = h36m_data.load_cameras(root / 'cameras.h5', subject)
    if camera_id not in cameras:
        raise KeyError(f'{root / "cameras.h5"}: no camera {camera_id!r} for {subject}')
    return cameras[camera_id]


def evaluate(gt: SinglePersonGT, predictions: Predictions) -> BenchmarkResult:
    """MPJPE (root = pelvis), PA-MPJPE, N-MPJPE, absolute MPJPE, PCK, AUC; per action."""
    pred, n_unused = aligned_predictions(gt, predictions)
    errors = error_sets(pred, gt.poses, ROOT_INDEX)
    table = breakdown_table(
        'Human3.6M (S9, S11; 17 joints; mm; Avg pooled over all poses)',
        {k: errors[k] for k in ('MPJPE', 'PA-MPJPE', 'N-MPJPE')},
        gt.groups['action'], column_order=list(ACTIONS), column_labels=ACTIONS)
    summary = metrics.summarize(pred, gt.poses, ROOT_INDEX)
    for key, metric in (('mpjpe', 'MPJPE'), ('pa_mpjpe', 'PA-MPJPE')):
        per_action = metrics.group_means(errors[metric], gt.groups['action'])
        summary[f'{key}_action_mean'] = float(np.mean(list(per_action.values())))
    provenance, provenance_counts = prediction_provenance(predictions)
    counts = dict(n_poses=summary.pop('n_poses'), n_joint_entries=summary.pop('n_joint_entries'),
                  n_missing_gt_joints=summary.pop('n_missing_gt_joints'),
                  n_unused_predictions=int(n_unused), **provenance_counts)
    protocol = dict(**gt.protocol, joints=list(gt.joint_names), root=gt.joint_names[ROOT_INDEX],
                    pck_threshold_mm=metrics.PCK_THRESHOLD_MM, inference=predictions.inference)
    conventions = {
        'frames': f'S9 + S11, all cameras, every {gt.protocol["frame_step"]}th frame from 0 '
                  f'(MeTRAbs: 64)',
        'averaging': 'Avg pooled over all poses (MeTRAbs); mean of the action means: '
                     'summary *_action_mean',
        'S9 shift': ('corrected for the absolute MPJPE' if gt.protocol['correct_s9'] else
                     'not corrected (released evaluation; root-relative metrics unaffected)'),
        **provenance}
    return BenchmarkResult('h36m', summary, [table, wacv23_table('Human3.6M', pred, gt.poses,
                                                                 ROOT_INDEX)],
                           counts, protocol, per_joint_dict(errors, gt.joint_names), conventions)


BOX_MARGIN = 0.1  # of the projected joints' extent per side: 17 joints bound the body loosely


def undistorted_frame(frame, camera, imshape: tuple[int, int]) -> np.ndarray:
    """[H, W, 3] uint8: the image of `frame` (a zero-argument callable, e.g. a VideoFrame) taken
    by `camera`, re-rendered by the same camera without lens distortion (same size, same K)."""
    from posepile.image_warp import reproject_image
    return reproject_image(frame(), camera, camera.copy().undistort(), imshape)


def model_inputs(gt: SinglePersonGT, boxes: str = 'gt') -> Iterator:
    """One `eval.model_predictions.ModelInput` per ground-truth row (one person per frame).

    image: a lazy callable decoding the row's video frame (posepile.datasets.common.VideoFrame),
    undistorted when the lens model has terms beyond OpenCV's first five; boxes: [1, 4] x, y, w,
    h px around the GT joints (S9 shift undone) projected into that image (boxes='gt'), or None
    (boxes='detector': the model's detector, DETECTOR); camera: that subject's
    calibrated camera from cameras.h5 with identity extrinsics, so the predictions come out in
    the camera frame (mm) like the GT. Keys: sequence '<subject>/<file stem>', frame, person 0.
    """
    from eval.model_predictions import N_API_DISTORTION, camera_frame_input
    from posepile.datasets import common

    root = pathlib.Path(gt.source)
    sequences, first_rows = np.unique(gt.sequence, return_index=True)
    for sequence in sequences[np.argsort(first_rows)]:  # in GT order
        rows = np.flatnonzero(gt.sequence == sequence)
        subject, _, stem = str(sequence).partition('/')
        camera = _camera(root, subject, stem.rpartition('.')[2])
        video = root / subject / 'Videos' / f'{stem}.mp4'
        n_video_frames, imshape = common.video_info(video)
        if gt.frame[rows].max() >= n_video_frames:
            raise ValueError(f'{video}: the ground truth of {sequence} evaluates frame '
                             f'{int(gt.frame[rows].max())}, the video reports only '
                             f'{n_video_frames} frames')
        # The model's crop warp implements OpenCV's first five coefficients only.
        coeffs = camera.distortion_coeffs
        undistort = coeffs is not None and np.any(np.asarray(coeffs)[N_API_DISTORTION:] != 0)
        model_camera = camera.copy().undistort() if undistort else camera
        poses = gt.poses[rows]
        if not gt.protocol.get('correct_s9'):
            poses = poses + s9_correction(str(sequence), camera)
        points2d = model_camera.camera_to_image(poses)  # [n, 17, 2] px
        for row, joints2d in zip(rows, points2d):
            frame = int(gt.frame[row])
            image = common.VideoFrame(video, frame)
            if undistort:
                image = functools.partial(undistorted_frame, image, camera, imshape)
            if boxes == 'detector':
                box, person = None, None
            else:
                box = common.box_around_points(joints2d, BOX_MARGIN, imshape=imshape)[np.newaxis]
                person = [int(gt.person[row])]
            yield camera_frame_input(image, box, model_camera, str(sequence), frame,
                                     person=person, where=f'{video} frame {frame}')
