"""MPI-INF-3DHP test set protocol: TS1..TS6, valid frames only, 3DPCK@150 mm and AUC.

Ground truth: `<root>/TS<i>/annot_data.mat` (MATLAB v7.3 = HDF5, read with h5py; older-format
files are read with scipy.io.loadmat). Fields used:
    univ_annot3 (or annot3)  MATLAB 3 x 17 x 1 x n, mm, camera frame; 'univ_annot3' is rescaled
                             to the universal (Human3.6M-height) skeleton, the official target.
    valid_frame              n flags; frames with 0 are not evaluated.
    activity_annotation      n labels 1..7 (ACTIVITIES).
Joints are the 17 of skeleton 'mpi_inf_3dhp_17' in file order, root = pelvis (row 14). As in
the official evaluation, PCK, AUC and MPJPE are averaged over the first 14 joints (head top,
neck, shoulders, elbows, wrists, hips, knees, ankles); pelvis, spine and head only enter the
alignment.

Running a model (`model_inputs`, for `eval.run --model`) also reads the frames
`<root>/TS<i>/imageSequence/img_<frame + 1, 6 digits>.jpg` and the fields annot3 (mm, camera
frame) and annot2 (px) of annot_data.mat. The test set ships no calibration file: as in the
converter posepile/datasets/mpi_inf_3dhp_test.py, each sequence's pinhole intrinsics are fitted
to annot2 vs annot3 over its valid frames (posepile.camera.fit_intrinsics). The person box is
the ground-truth one, around annot2 with a margin, as is standard when no detector is given. The
model is asked for camera-frame poses, the frame of the annotation.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from eval import metrics
from eval.benchmarks import (BenchmarkResult, SinglePersonGT, Table, aligned_predictions,
                             breakdown_table, error_sets, per_joint_dict, skeleton_joint_names)
from eval.predictions import Predictions

SKELETON = 'mpi_inf_3dhp_17'
DESCRIPTION = 'MPI-INF-3DHP test TS1-6 annot_data.mat, univ. 17-joint skeleton, valid frames'
SEQUENCES = tuple(f'TS{i}' for i in range(1, 7))
ROOT_INDEX = 14
EVAL_JOINTS = np.arange(14)
ACTIVITIES = {1: 'Stand/Walk', 2: 'Exercise', 3: 'Sit', 4: 'Reach/Crouch', 5: 'Floor',
              6: 'Sports', 7: 'Misc.'}
SETTINGS = {'TS1': 'GS', 'TS2': 'GS', 'TS3': 'noGS', 'TS4': 'noGS', 'TS5': 'Outdoor',
            'TS6': 'Outdoor'}


def _read_mat(path: pathlib.Path, pose_fields: dict[str, int], flag_fields: tuple[str, ...]
              ) -> dict[str, np.ndarray]:
    """{pose field: [n, 17, dim], flag field: [n]} from one annot_data.mat (v7.3 or older)."""
    import h5py
    fields = (*pose_fields, *flag_fields)
    if h5py.is_hdf5(path):
        with h5py.File(path, 'r') as f:
            missing = [k for k in fields if k not in f]
            if missing:
                raise KeyError(f'{path}: missing fields {missing}')
            # HDF5 stores MATLAB arrays in reversed axis order: dx17x1xn arrives as n x 1 x 17 x d.
            out = {k: np.asarray(f[k], np.float64) for k in fields}
        for k, dim in pose_fields.items():
            if out[k].ndim == 4 and out[k].shape[1:] == (1, 17, dim):
                out[k] = out[k][:, 0]
    else:
        import scipy.io
        mat = scipy.io.loadmat(path)
        missing = [k for k in fields if k not in mat]
        if missing:
            raise KeyError(f'{path}: missing fields {missing}')
        out = {k: np.asarray(mat[k], np.float64) for k in fields}
        for k, dim in pose_fields.items():
            if out[k].ndim == 4 and out[k].shape[:3] == (dim, 17, 1):  # MATLAB's d x 17 x 1 x n
                out[k] = np.transpose(out[k][:, :, 0], (2, 1, 0))
    for k, dim in pose_fields.items():
        if out[k].ndim != 3 or out[k].shape[1:] != (17, dim):
            raise ValueError(f'{path}: field {k!r} has shape {out[k].shape}, expected '
                             f'n x 1 x 17 x {dim} (HDF5 order)')
    for k in flag_fields:
        out[k] = out[k].ravel()
    lengths = {k: len(v) for k, v in out.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f'{path}: fields disagree on the number of frames: {lengths}')
    return out


def _read_fields(path: pathlib.Path, pose_field: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(poses [n, 17, 3] mm, valid [n] bool, activity [n] int) from one annot_data.mat."""
    out = _read_mat(path, {pose_field: 3}, ('valid_frame', 'activity_annotation'))
    return (out[pose_field], out['valid_frame'].astype(bool),
            out['activity_annotation'].astype(np.int64))


def load_ground_truth(root: str | pathlib.Path, universal: bool = True,
                      sequences: tuple[str, ...] = SEQUENCES) -> SinglePersonGT:
    """Reads TS1..TS6 (valid frames only). universal=False uses 'annot3' (true body size)."""
    root = pathlib.Path(root)
    pose_field = 'univ_annot3' if universal else 'annot3'
    joint_names = skeleton_joint_names(SKELETON)
    if len(joint_names) != 17:
        raise ValueError(f'skeleton {SKELETON} has {len(joint_names)} joints, the protocol 17')
    parts = []
    for sequence in tqdm(sequences, desc='3dhp ground truth', unit='sequence'):
        path = root / sequence / 'annot_data.mat'
        if not path.is_file():
            raise FileNotFoundError(f'{path} not found')
        poses, valid, activity = _read_fields(path, pose_field)
        frames = np.flatnonzero(valid)
        labels = np.array([ACTIVITIES.get(a, f'activity {a}') for a in activity[frames]])
        parts.append((np.full(len(frames), sequence), frames, poses[frames], labels))
    sequence, frame, poses, activity = (np.concatenate(x) for x in zip(*parts))
    return SinglePersonGT(
        sequence=sequence, frame=frame, person=np.zeros_like(frame), poses=poses,
        joint_names=joint_names,
        groups={'activity': activity, 'setting': np.array([SETTINGS.get(s, s) for s in sequence])},
        source=str(root), skeleton=SKELETON,
        protocol=dict(pose_field=pose_field, sequences=list(sequences)))


def evaluate(gt: SinglePersonGT, predictions: Predictions) -> BenchmarkResult:
    """PCK/AUC/MPJPE by activity and by setting (GS / noGS / Outdoor) over the 14 joints."""
    pred, n_unused = aligned_predictions(gt, predictions)
    errors = error_sets(pred, gt.poses, ROOT_INDEX, EVAL_JOINTS)
    headline = {k: errors[k] for k in ('PCK', 'AUC', 'MPJPE')}
    by_activity = breakdown_table('MPI-INF-3DHP by activity (14 joints; PCK@150mm %, AUC %, mm)',
                                  headline, gt.groups['activity'],
                                  column_order=list(ACTIVITIES.values()))
    by_setting = breakdown_table('MPI-INF-3DHP by setting', headline, gt.groups['setting'],
                                 column_order=['GS', 'noGS', 'Outdoor'])
    summary = metrics.summarize(pred, gt.poses, ROOT_INDEX, EVAL_JOINTS)
    counts = dict(n_poses=summary.pop('n_poses'), n_joint_entries=summary.pop('n_joint_entries'),
                  n_missing_gt_joints=summary.pop('n_missing_gt_joints'),
                  n_unused_predictions=int(n_unused))
    eval_names = [gt.joint_names[i] for i in EVAL_JOINTS]
    protocol = dict(**gt.protocol, joints=eval_names, root=gt.joint_names[ROOT_INDEX],
                    pck_threshold_mm=metrics.PCK_THRESHOLD_MM)
    overall = Table('MPI-INF-3DHP (paper layout)', ['PCK', 'AUC', 'MPJPE'],
                    {'All': [summary['pck'], summary['auc'], summary['mpjpe']]})
    return BenchmarkResult('mpi_inf_3dhp', summary, [overall, by_activity, by_setting], counts,
                           protocol, per_joint_dict(errors, eval_names))


BOX_MARGIN = 0.1  # of the annotated joints' extent per side: 17 joints bound the body loosely


def model_inputs(gt: SinglePersonGT) -> Iterator:
    """One `eval.model_predictions.ModelInput` per ground-truth row (one person per frame).

    image: the row's JPEG path; boxes: [1, 4] x, y, w, h px around annot2 (GT boxes); camera:
    intrinsics fitted to the sequence's annot2 vs annot3, no distortion, identity extrinsics
    (camera-frame predictions, mm, like the GT), world up = -y. Keys: sequence 'TS<i>', frame
    (0-based annotation row), person 0.
    """
    from eval.model_predictions import camera_frame_input
    from posepile.camera import camera_from_projection
    from posepile.datasets import common

    root = pathlib.Path(gt.source)
    sequences, first_rows = np.unique(gt.sequence, return_index=True)
    for sequence in sequences[np.argsort(first_rows)]:  # in GT order
        rows = np.flatnonzero(gt.sequence == sequence)
        path = root / str(sequence) / 'annot_data.mat'
        ann = _read_mat(path, {'annot3': 3, 'annot2': 2}, ('valid_frame',))
        valid = ann['valid_frame'].astype(bool)
        camera = camera_from_projection(ann['annot3'][valid], ann['annot2'][valid],
                                        f'{path} annot2 vs annot3')
        frames = gt.frame[rows]
        if np.any(frames >= len(valid)):
            raise ValueError(f'{path}: ground-truth frame {int(frames.max())} beyond the '
                             f'{len(valid)} frames of annot2')
        for row, frame, joints2d in zip(rows, frames, ann['annot2'][frames]):
            image = common.safe_path(root, f'{sequence}/imageSequence/img_{frame + 1:06d}.jpg')
            box = common.box_around_points(joints2d, BOX_MARGIN,
                                           imshape=common.image_shape(image, 'a test frame'))
            yield camera_frame_input(
                str(image), box[np.newaxis], camera, str(sequence), int(frame),
                person=[int(gt.person[row])], where=f'{image}')
