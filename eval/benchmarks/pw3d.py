"""3DPW test protocol: SMPL 24-joint and 14-joint MPJPE, PA-MPJPE, PCK, AUC.

Ground truth: `<root>/sequenceFiles/test/*.pkl`, Python-2 pickles read with the restricted
unpickler (posepile.safe_unpickle, encoding='latin1'). Per sequence dict, per actor k:
    jointPositions[k]  [F, 72]  SMPL joints (24 x xyz) in metres, world frame
    campose_valid[k]   [F]      whether the camera pose is aligned for that frame and actor
    cam_poses          [F, 4, 4] world-to-camera rigid transforms (metres)
Frames where campose_valid is False are not evaluated. Ground truth in the camera frame (mm) is
1000 * (R X + t). Joints are those of skeleton 'smpl_24' (SMPL order), root = pelvis.

The 14-joint numbers use the SMPL joints among LSP's 14 (ankles, knees, hips, wrists, elbows,
shoulders, neck, head) with the root at the mid-point of the hips, and Procrustes fitted on
those 14. Papers' "14-joint" 3DPW numbers usually regress the LSP joints from the SMPL mesh
(needs the SMPL model files, not part of the benchmark); those can differ by a few mm.

Running a model (`model_inputs`, for `eval.run --model`) also reads the frames
`<root>/imageFiles/<sequence>/image_<frame, 5 digits>.jpg` and, through the converter's parser
(posepile.datasets.tdpw.load_sequence), each pickle's cam_intrinsics (px, no distortion) and
cam_poses. The person boxes are the ground-truth ones: each evaluated actor's camera-frame GT
joints projected into the frame, grown by a margin (as is standard when no detector is given;
clipped to the image unless the joints all fall outside it). The model is asked for
camera-frame poses, the frame the GT is evaluated in.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from eval import metrics
from eval.benchmarks import (BenchmarkResult, SinglePersonGT, Table, aligned_predictions,
                             error_sets, per_joint_dict, skeleton_joint_names)
from eval.predictions import Predictions
from posepile.safe_unpickle import load_pickle

SKELETON = 'smpl_24'
DESCRIPTION = '3DPW sequenceFiles/test/*.pkl, SMPL 24 and 14-joint protocols, campose_valid'
ROOT_INDEX = 0
# SMPL rows of the 14 LSP-style joints: rank rkne rhip lhip lkne lank rwri relb rsho lsho lelb
# lwri neck head.
JOINTS_14 = np.array([8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20, 12, 15])
HIPS_IN_14 = np.array([2, 3])
_REQUIRED = ('jointPositions', 'cam_poses', 'campose_valid')


def _sequence_poses(path: pathlib.Path, data) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """[(actor, valid frame indices, camera-frame poses [n, 24, 3] mm)] of one sequence file."""
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a dict, got {type(data).__name__}')
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise KeyError(f'{path}: missing fields {missing}')
    cam_poses = np.asarray(data['cam_poses'], np.float64)
    if cam_poses.ndim != 3 or cam_poses.shape[1:] != (4, 4):
        raise ValueError(f'{path}: field "cam_poses" must be [F, 4, 4], got {cam_poses.shape}')
    result = []
    for actor, (joints, valid) in enumerate(zip(data['jointPositions'], data['campose_valid'])):
        joints = np.asarray(joints, np.float64)
        valid = np.asarray(valid).astype(bool).ravel()
        if joints.ndim != 2 or joints.shape[1] != 72 or len(joints) != len(cam_poses):
            raise ValueError(f'{path}: field "jointPositions"[{actor}] must be '
                             f'[{len(cam_poses)}, 72], got {joints.shape}')
        if len(valid) != len(cam_poses):
            raise ValueError(f'{path}: field "campose_valid"[{actor}] has {len(valid)} frames, '
                             f'cam_poses {len(cam_poses)}')
        frames = np.flatnonzero(valid)
        world = joints[frames].reshape(-1, 24, 3)
        rot, trans = cam_poses[frames, :3, :3], cam_poses[frames, :3, 3]
        camera = np.einsum('nij,nkj->nki', rot, world) + trans[:, np.newaxis]
        result.append((actor, frames, 1000.0 * camera))
    return result


def load_ground_truth(root: str | pathlib.Path, split: str = 'test') -> SinglePersonGT:
    """Reads all sequence pickles of `split` (valid camera poses only)."""
    folder = pathlib.Path(root) / 'sequenceFiles' / split
    paths = sorted(folder.glob('*.pkl'))
    if not paths:
        raise FileNotFoundError(f'no .pkl files in {folder}')
    joint_names = skeleton_joint_names(SKELETON)
    if len(joint_names) != 24:
        raise ValueError(f'skeleton {SKELETON} has {len(joint_names)} joints, SMPL has 24')
    sequences, frames, people, poses = [], [], [], []
    for path in tqdm(paths, desc='3dpw ground truth', unit='sequence'):
        for actor, actor_frames, actor_poses in _sequence_poses(path, load_pickle(path)):
            sequences.append(np.full(len(actor_frames), path.stem))
            frames.append(actor_frames)
            people.append(np.full(len(actor_frames), actor))
            poses.append(actor_poses)
    sequence = np.concatenate(sequences)
    return SinglePersonGT(
        sequence=sequence, frame=np.concatenate(frames), person=np.concatenate(people),
        poses=np.concatenate(poses), joint_names=joint_names, groups={'sequence': sequence},
        source=str(folder), skeleton=SKELETON, protocol=dict(split=split))


def errors_14(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per-entry [N, 14] arrays of the 14-joint protocol from 24-joint SMPL poses (mm)."""
    def with_mid_hip(poses):
        sub = poses[:, JOINTS_14]
        return np.concatenate([sub, np.mean(sub[:, HIPS_IN_14], axis=1, keepdims=True)], axis=1)

    pred15, gt15 = with_mid_hip(pred), with_mid_hip(gt)
    root = metrics.joint_errors(pred15, gt15, 'root', root_index=14)[:, :14]
    return {
        'MPJPE': root,
        'PA-MPJPE': metrics.joint_errors(pred[:, JOINTS_14], gt[:, JOINTS_14], 'procrustes'),
        'N-MPJPE': metrics.joint_errors(pred15, gt15, 'scale', root_index=14)[:, :14],
        'MPJPE-abs': metrics.joint_errors(pred15, gt15, 'none')[:, :14],
        'PCK': 100.0 * metrics.pck_hits(root),
        'AUC': 100.0 * metrics.auc_scores(root),
    }


def evaluate(gt: SinglePersonGT, predictions: Predictions) -> BenchmarkResult:
    """SMPL-24 numbers (root = pelvis) and 14-joint numbers (root = mid-hip)."""
    pred, n_unused = aligned_predictions(gt, predictions)
    columns = ['MPJPE', 'PA-MPJPE', 'N-MPJPE', 'MPJPE-abs', 'PCK', 'AUC']
    errors24 = error_sets(pred, gt.poses, ROOT_INDEX)
    errors14 = errors_14(pred, gt.poses)
    rows = {label: [metrics.nan_mean(errs[c]) for c in columns]
            for label, errs in (('SMPL 24', errors24), ('14 joints', errors14))}
    table = Table('3DPW test (mm; PCK@150mm %, AUC %)', columns, rows)
    summary = {f'{c.lower().replace("-", "_")}{suffix}': rows[label][i]
               for label, suffix in (('SMPL 24', ''), ('14 joints', '_14'))
               for i, c in enumerate(columns)}
    labelled = metrics.valid_mask(gt.poses)
    counts = dict(n_poses=len(gt.poses), n_sequences=len(set(gt.sequence.tolist())),
                  n_joint_entries=int(np.count_nonzero(labelled)),
                  n_missing_gt_joints=int(np.count_nonzero(~labelled)),
                  n_unused_predictions=int(n_unused))
    protocol = dict(**gt.protocol, joints=list(gt.joint_names), root=gt.joint_names[ROOT_INDEX],
                    joints_14=[gt.joint_names[i] for i in JOINTS_14], root_14='mid-hip',
                    pck_threshold_mm=metrics.PCK_THRESHOLD_MM)
    return BenchmarkResult('pw3d', summary, [table], counts, protocol,
                           per_joint_dict(errors24, gt.joint_names))


BOX_MARGIN = 0.1  # of the projected joints' extent per side: 24 joints bound the body loosely


def _person_box(joints2d: np.ndarray, imshape: tuple[int, int]) -> np.ndarray:
    """[4] x, y, w, h px around the joints, clipped to the image unless nothing would remain
    (every GT row needs a prediction, so a person outside the frame still gets its box)."""
    from posepile.datasets.common import box_around_points
    box = box_around_points(joints2d, BOX_MARGIN, imshape=imshape)
    return box if box[2] > 0 and box[3] > 0 else box_around_points(joints2d, BOX_MARGIN)


def model_inputs(gt: SinglePersonGT) -> Iterator:
    """One `eval.model_predictions.ModelInput` per image with evaluated actors.

    image: the JPEG path; boxes: [P, 4] x, y, w, h px, one per actor evaluated in that frame
    (GT boxes), person = actor index; camera: the sequence's intrinsics and that frame's camera
    pose (for the world's up direction; extrinsics identity, so predictions come out in the
    camera frame, mm, like the GT). Keys: sequence = pickle stem, frame = image index.
    """
    from eval.model_predictions import camera_frame_input
    from posepile.camera import Camera
    from posepile.datasets import common, tdpw

    folder = pathlib.Path(gt.source)
    root = folder.parent.parent  # <root>/sequenceFiles/<split>
    sequences, first_rows = np.unique(gt.sequence, return_index=True)
    for sequence in sequences[np.argsort(first_rows)]:  # in GT order
        pkl = folder / f'{sequence}.pkl'
        data = tdpw.load_sequence(pkl)
        image_dir = common.safe_path(root, f'imageFiles/{data["name"]}', str(pkl))
        rows = np.flatnonzero(gt.sequence == sequence)
        rows = rows[np.lexsort((gt.person[rows], gt.frame[rows]))]
        frames, starts = np.unique(gt.frame[rows], return_index=True)
        points2d = Camera(intrinsic_matrix=data['intrinsics']).camera_to_image(gt.poses[rows])
        imshape = None
        for frame, frame_rows, frame_points in zip(frames, np.split(rows, starts[1:]),
                                                   np.split(points2d, starts[1:])):
            image = image_dir / f'image_{int(frame):05d}.jpg'
            imshape = imshape or common.image_shape(image, f'frame {frame} of {data["name"]}')
            if frame >= len(data['cam_poses']):
                raise ValueError(f'{pkl}: frame {frame} beyond the {len(data["cam_poses"])} '
                                 f'cam_poses')
            pose = data['cam_poses'][frame]  # world-to-camera, translation in mm
            rotation, translation = pose[:3, :3], pose[:3, 3]
            camera = Camera(-rotation.T @ translation, rotation, data['intrinsics'],
                            world_up=tdpw.WORLD_UP)
            boxes = np.stack([_person_box(p, imshape) for p in frame_points])
            yield camera_frame_input(
                str(image), boxes, camera, str(sequence), int(frame),
                person=gt.person[frame_rows], where=str(image))
