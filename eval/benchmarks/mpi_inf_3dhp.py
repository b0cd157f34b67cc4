"""MPI-INF-3DHP test set protocol: TS1..TS6, valid frames only, 3DPCK@150 mm, AUC and MPJPE.

Ground truth: `<root>/TS<i>/annot_data.mat` (MATLAB v7.3 = HDF5, read with h5py; older-format
files are read with scipy.io.loadmat). Fields used:
    annot3 / univ_annot3     MATLAB 3 x 17 x 1 x n, mm, camera frame; 'univ_annot3' is rescaled
                             to the universal (Human3.6M-height) skeleton.
    valid_frame              n flags; frames with 0 are not evaluated.
    activity_annotation      n labels 1..7 (ACTIVITIES).
Joints are the 17 of skeleton 'mpi_inf_3dhp_17' in file order, root = pelvis (row 14).

Protocol, as the official toolkit (mpii_test_predictions_py.m, mpii_evaluate_errors.m,
mpii_compute_3d_pck.m) and the released MeTRAbs evaluation (eval_3dhp.py) compute it: errors of
root-relative poses; MPJPE is the mean over all 17 joints (pelvis, spine and head included);
3DPCK (error < 150 mm) and AUC (mean 3DPCK over the thresholds 0, 5, ..., 150 mm) are over the
first 14 joints (head top .. ankles, the official joint groups). The 14-joint MPJPE is given too.
Results pooled over frames; breakdowns by activity, setting and sequence.
Skeleton: annot3 (true body size) by default, the released MeTRAbs evaluation's default;
universal=True uses univ_annot3, the official MATLAB script's target. The report says which.

Running a model (`model_inputs`, for `eval.run --model`) also reads the frames
`<root>/TS<i>/imageSequence/img_<frame + 1, 6 digits>.jpg` and annot3 / annot2 of annot_data.mat.
Camera: the official calibration `<root>/test_util/camera_calibration/ts1-4cameras.calib` and
`ts5-6cameras.calib` (the toolkit's files; TS5-6 have lens distortion) when present, converted as
the released MeTRAbs code does (make_3dhp_test_camera); otherwise each sequence's pinhole
intrinsics are fitted to annot2 vs annot3 (posepile.camera.fit_intrinsics, no distortion). The
protocol records which, and the calibration's reprojection error against annot2. Boxes: around
annot2 with a margin (boxes='gt'), or the model's detector as the released predict_tdhp.py
(threshold 0, one detection, flip augmentation; boxes='detector', the default). The model is
asked for camera-frame poses, the frame of the annotation.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from eval import metrics
from eval.benchmarks import (BenchmarkResult, SinglePersonGT, Table, aligned_predictions,
                             breakdown_table, error_sets, per_joint_dict, prediction_provenance,
                             skeleton_joint_names, wacv23_table)
from eval.model_predictions import RELEASED_INFERENCE, DetectorSettings
from eval.predictions import Predictions

SKELETON = 'mpi_inf_3dhp_17'
DESCRIPTION = 'MPI-INF-3DHP test TS1-6 annot_data.mat, 17 joints, valid frames'
SEQUENCES = tuple(f'TS{i}' for i in range(1, 7))
ROOT_INDEX = 14
# mpii_get_pck_auc_joint_groups.m: head top, neck, shoulders, elbows, wrists, hips, knees, ankles.
PCK_JOINTS = np.arange(14)
DEFAULT_BOXES = 'detector'
# predict_tdhp.py: detect_poses_batched(detector_threshold=0, detector_flip_aug=True,
# max_detections=1, suppress_implausible_poses=False)
DETECTOR = DetectorSettings(threshold=0.0, max_detections=1, flip_aug=True,
                            suppress_implausible_poses=False, fallback_whole_image=True)
INFERENCE_DEFAULTS = RELEASED_INFERENCE
CALIBRATION_FILES = {'TS1': 'ts1-4cameras.calib', 'TS2': 'ts1-4cameras.calib',
                     'TS3': 'ts1-4cameras.calib', 'TS4': 'ts1-4cameras.calib',
                     'TS5': 'ts5-6cameras.calib', 'TS6': 'ts5-6cameras.calib'}
CALIBRATION_DIR = 'test_util/camera_calibration'
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


def load_ground_truth(root: str | pathlib.Path, universal: bool = False,
                      sequences: tuple[str, ...] = SEQUENCES) -> SinglePersonGT:
    """Reads TS1..TS6 (valid frames only): 'annot3' (true body size), or 'univ_annot3' if
    universal."""
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


POSE_FIELD_TEXT = {
    'annot3': 'annot3, true body size (released MeTRAbs eval_3dhp.py default; --universal: '
              'univ_annot3, the official MATLAB script\'s target)',
    'univ_annot3': 'univ_annot3, universal skeleton (official mpii_test_predictions_py.m; '
                   'MeTRAbs --universal-skeleton; --no-universal: annot3)',
}


def evaluate(gt: SinglePersonGT, predictions: Predictions) -> BenchmarkResult:
    """PCK, AUC (14 joints) and MPJPE (17 joints) overall and by activity, setting, sequence."""
    pred, n_unused = aligned_predictions(gt, predictions)
    errors17 = error_sets(pred, gt.poses, ROOT_INDEX)
    errors = {'PCK': errors17['PCK'][:, PCK_JOINTS], 'AUC': errors17['AUC'][:, PCK_JOINTS],
              'MPJPE': errors17['MPJPE'], 'MPJPE-14': errors17['MPJPE'][:, PCK_JOINTS],
              'PA-MPJPE': errors17['PA-MPJPE'], 'MPJPE-abs': errors17['MPJPE-abs']}
    headline = {k: errors[k] for k in ('PCK', 'AUC', 'MPJPE')}
    by_activity = breakdown_table('MPI-INF-3DHP by activity (PCK@150mm %, AUC % over 14 joints; '
                                  'MPJPE mm over 17)', headline, gt.groups['activity'],
                                  column_order=list(ACTIVITIES.values()))
    by_setting = breakdown_table('MPI-INF-3DHP by setting', headline, gt.groups['setting'],
                                 column_order=['GS', 'noGS', 'Outdoor'])
    by_sequence = breakdown_table('MPI-INF-3DHP by sequence (official sequencewise table)',
                                  headline, gt.sequence, column_order=list(SEQUENCES))
    columns = ['PCK', 'AUC', 'MPJPE', 'MPJPE-14', 'PA-MPJPE', 'MPJPE-abs']
    summary = {c.lower().replace('-', '_'): metrics.nan_mean(errors[c]) for c in columns}
    overall = Table('MPI-INF-3DHP (paper layout: PCK, AUC over 14 joints, MPJPE over 17; mm)',
                    columns, {'All': [summary[c.lower().replace('-', '_')] for c in columns]})
    wacv23 = wacv23_table('MPI-INF-3DHP', pred, gt.poses, ROOT_INDEX,
                          {'All': slice(None), 'Outdoor': gt.groups['setting'] == 'Outdoor'})
    labelled = metrics.valid_mask(gt.poses)
    provenance, provenance_counts = prediction_provenance(predictions)
    counts = dict(n_poses=len(gt.poses), n_joint_entries=int(np.count_nonzero(labelled)),
                  n_missing_gt_joints=int(np.count_nonzero(~labelled)),
                  n_unused_predictions=int(n_unused), **provenance_counts)
    protocol = dict(**gt.protocol, joints=list(gt.joint_names),
                    pck_joints=[gt.joint_names[i] for i in PCK_JOINTS],
                    root=gt.joint_names[ROOT_INDEX], pck_threshold_mm=metrics.PCK_THRESHOLD_MM,
                    auc_thresholds_mm=metrics.AUC_THRESHOLDS_MM.tolist(),
                    inference=predictions.inference)
    conventions = {
        'skeleton': POSE_FIELD_TEXT[gt.protocol['pose_field']],
        'frames': 'TS1-6, valid_frame = 1 (official, MeTRAbs)',
        'MPJPE': 'root (pelvis)-relative, mean over all 17 joints (official '
                 'mpii_evaluate_errors.m, MeTRAbs); MPJPE-14: over the PCK joints',
        'PCK/AUC': '14 joints (head top..ankles), error < 150 mm; AUC over 0:5:150 mm, strict <',
        **provenance}
    return BenchmarkResult('mpi_inf_3dhp', summary,
                           [overall, by_activity, by_setting, by_sequence, wacv23], counts,
                           protocol, per_joint_dict(errors17, gt.joint_names), conventions)


BOX_MARGIN = 0.1  # of the annotated joints' extent per side: 17 joints bound the body loosely
_CALIB_FIELDS = {'sensorSize': 2, 'focalLength': 1, 'pixelAspect': 1, 'centerOffset': 2,
                 'distortion': 5, 'origin': 3, 'up': 3, 'right': 3}


def read_calibration(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The fields of an official 'tc camera calibration v0.3' file (first camera, first frame):
    sensorSize [2] mm, focalLength mm, pixelAspect (y / x), centerOffset [2] mm (positive =
    right / down), distortion [5] OpenCV, origin [3] mm, up [3], right [3] (world frame)."""
    found = {}
    for line in path.read_text(errors='replace').splitlines():
        tokens = line.split('#', 1)[0].split()
        if tokens and tokens[0] in _CALIB_FIELDS and tokens[0] not in found:
            try:
                found[tokens[0]] = np.array([float(t) for t in tokens[1:]])
            except ValueError:
                raise ValueError(f'{path}: field {tokens[0]!r} is not numeric: {line!r}') from None
    for field, size in _CALIB_FIELDS.items():
        if field not in found:
            raise KeyError(f'{path}: missing field {field!r}')
        if found[field].size != size:
            raise ValueError(f'{path}: field {field!r} has {found[field].size} values, '
                             f'expected {size}')
    return found


def calibrated_camera(calib: dict[str, np.ndarray], imshape: tuple[int, int]):
    """posepile Camera of an official calibration for images of `imshape` (H, W) px: camera
    frame = the annotation's frame (identity pose), world up = the calibration's world +y seen
    from the camera. The mm -> px conversion is the released MeTRAbs make_3dhp_test_camera's."""
    from posepile.camera import Camera
    sensor = calib['sensorSize']
    focal = calib['focalLength'][0]
    intrinsics = np.array([[focal, 0, sensor[0] / 2 + calib['centerOffset'][0]],
                           [0, focal, sensor[1] / 2 + calib['centerOffset'][1]], [0, 0, 1.0]])
    im_size = np.array([imshape[1], imshape[0]], np.float64)
    intrinsics[:2] = np.diag(im_size / sensor * [1.0, calib['pixelAspect'][0]]) @ intrinsics[:2]
    up, right = calib['up'], calib['right']
    rotation = np.stack([right, -up, np.cross(up, right)])  # world -> camera
    return Camera(intrinsic_matrix=intrinsics, distortion_coeffs=calib['distortion'],
                  world_up=rotation @ [0.0, 1.0, 0.0])


def sequence_camera(root: pathlib.Path, sequence: str, annot3: np.ndarray, annot2: np.ndarray,
                    imshape: tuple[int, int]):
    """(Camera, description) of one test sequence: the official calibration if its file is
    under <root>/test_util/camera_calibration, else intrinsics fitted to annot2 vs annot3.
    annot3 [n, 17, 3] mm / annot2 [n, 17, 2] px of the valid frames."""
    from posepile.camera import camera_from_projection
    path = root / CALIBRATION_DIR / CALIBRATION_FILES.get(sequence, '')
    if sequence in CALIBRATION_FILES and path.is_file():
        camera = calibrated_camera(read_calibration(path), imshape)
        residual = np.linalg.norm(camera.camera_to_image(annot3) - annot2, axis=-1)
        return camera, (f'official calibration {path.name}; median reprojection error vs '
                        f'annot2 {np.nanmedian(residual):.2f} px')
    camera = camera_from_projection(annot3, annot2, f'{root / sequence} annot2 vs annot3')
    return camera, 'pinhole intrinsics fitted to annot2 vs annot3 (no calibration file found)'


def model_inputs(gt: SinglePersonGT, boxes: str = 'gt') -> Iterator:
    """One `eval.model_predictions.ModelInput` per ground-truth row (one person per frame).

    image: the row's JPEG path; boxes: [1, 4] x, y, w, h px around annot2 (boxes='gt') or None
    (boxes='detector': the model's detector, DETECTOR); camera: `sequence_camera`, identity
    extrinsics (camera-frame predictions, mm, like the GT). Keys: sequence 'TS<i>', frame
    (0-based annotation row), person 0. The camera used per sequence is logged in
    gt.protocol['cameras'].
    """
    from eval.model_predictions import camera_frame_input
    from posepile.datasets import common

    root = pathlib.Path(gt.source)
    sequences, first_rows = np.unique(gt.sequence, return_index=True)
    descriptions = gt.protocol.setdefault('cameras', {})
    for sequence in sequences[np.argsort(first_rows)]:  # in GT order
        rows = np.flatnonzero(gt.sequence == sequence)
        path = root / str(sequence) / 'annot_data.mat'
        ann = _read_mat(path, {'annot3': 3, 'annot2': 2}, ('valid_frame',))
        valid = ann['valid_frame'].astype(bool)
        frames = gt.frame[rows]
        if np.any(frames >= len(valid)):
            raise ValueError(f'{path}: ground-truth frame {int(frames.max())} beyond the '
                             f'{len(valid)} frames of annot2')
        first = common.safe_path(root, f'{sequence}/imageSequence/img_{frames[0] + 1:06d}.jpg')
        imshape = common.image_shape(first, 'a test frame')
        camera, descriptions[str(sequence)] = sequence_camera(
            root, str(sequence), ann['annot3'][valid], ann['annot2'][valid], imshape)
        for row, frame, joints2d in zip(rows, frames, ann['annot2'][frames]):
            image = common.safe_path(root, f'{sequence}/imageSequence/img_{frame + 1:06d}.jpg')
            if boxes == 'detector':
                box, person = None, None
            else:
                box = common.box_around_points(joints2d, BOX_MARGIN, imshape=imshape)[np.newaxis]
                person = [int(gt.person[row])]
            yield camera_frame_input(str(image), box, camera, str(sequence), int(frame),
                                     person=person, where=f'{image}')
