"""3DPW protocol: SMPL 24-joint MPJPE, PA-MPJPE, PCK@50 mm and AUC on the 12 major joints, and
the mesh-regressed 14-joint (SPIN-style) MPJPE / PA-MPJPE when the SMPL files are given.

Ground truth: `<root>/sequenceFiles/<split>/*.pkl`, Python-2 pickles read with the restricted
unpickler (posepile.safe_unpickle, encoding='latin1'). Per sequence dict, per actor k:
    jointPositions[k]  [F, 72]    SMPL joints (24 x xyz) in metres, world frame
    campose_valid[k]   [F]        whether the camera pose is aligned for that frame and actor
    poses2d[k]         [F, 3, 18] the actor's 2D keypoints (x, y, confidence), all zero where
                                  the actor has none
    cam_poses          [F, 4, 4]  world-to-camera rigid transforms (metres)
    poses[k] [F, 72], betas[k] [>= 10], trans[k] [F, 3], genders[k]  (mesh / SMPL options only)
Ground truth in the camera frame (mm) is 1000 * (R X + t). Joints: skeleton 'smpl_24', root =
pelvis.

Protocol choices (each printed in the report; defaults = the released MeTRAbs evaluation):
    split         'all' (train + validation + test, the 60 sequences: MeTRAbs eval_3dpw.py and
                  the ECCV'20 challenge evaluate.py) or 'test' (the 24 test sequences, what
                  SPIN/VIBE-style papers report), 'train', 'validation'.
    valid_frames  'official': campose_valid and the actor's poses2d not all zero (evaluate.py
                  check_valid_inds, MeTRAbs); 'campose': campose_valid only (SPIN's
                  preprocessing).
    gt_joints     'pickle': jointPositions (MeTRAbs); 'smpl': the gendered SMPL forward pass of
                  poses, betas[:10], trans (the official evaluate.py; needs the body models).
24-joint numbers, as evaluate.py compute_errors / compute_pck / compute_auc and MeTRAbs: MPJPE
of the pelvis-relative 24 joints, PA-MPJPE (similarity Procrustes on the 24), PCK = error <= 50
mm over the 12 SMPL_MAJOR_JOINTS (hips, knees, ankles, shoulders, elbows, wrists), AUC of the
PCK curve at 0..199 mm (trapezoid; official) and MeTRAbs's 50-bin approximation of it.
14-joint (mesh) numbers, as SPIN's eval.py: the 17 H36M joints regressed from the gendered SMPL
mesh (J_regressor_h36m), rooted at the regressed pelvis, 14 of them (pw3d_mesh.H36M_TO_J14);
predictions must contain the 'h36m_17' joints (the model's own H36M-format output). Without the
body models and the regressor these numbers are reported as unavailable, never substituted.

Running a model (`model_inputs`, for `eval.run --model`) also reads the frames
`<root>/imageFiles/<sequence>/image_<frame, 5 digits>.jpg` and each pickle's cam_intrinsics (px,
no distortion) and cam_poses. Boxes: the model's detector on every frame (threshold 0.2, NMS 0.7,
flip augmentation; boxes='detector', the default, as the released predict_tdpw.py), with the
detections tracked to the annotated actors by `assign_detections`; or the ground-truth ones
(boxes='gt'): each evaluated actor's camera-frame GT joints projected into the frame, grown by a
margin (clipped to the image unless the joints all fall outside it). The model is asked for
camera-frame poses with the real intrinsics, the frame the GT is evaluated in.
"""
from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from eval import metrics
from eval.benchmarks import (BenchmarkResult, SinglePersonGT, Table, breakdown_table, error_sets, match_rows, per_joint_dict,
                             prediction_provenance, select_protocol_joints, skeleton_joint_names,
                             wacv23_table)
from eval.benchmarks.pw3d_mesh import H36M_PELVIS, H36M_TO_J14, MeshFiles
from eval.model_predictions import RELEASED_INFERENCE, DetectorSettings
from eval.predictions import Predictions
from posepile.datasets import common

SKELETON = 'smpl_24'
MESH_SKELETON = 'h36m_17'
DESCRIPTION = '3DPW sequenceFiles/*/*.pkl, SMPL 24 joints and mesh-regressed 14, official frames'
ROOT_INDEX = 0
SPLITS = ('train', 'validation', 'test')
# evaluate.py SMPL_MAJOR_JOINTS: lhip rhip lkne rkne lank rank lsho rsho lelb relb lwri rwri.
MAJOR_JOINTS = np.array([1, 2, 4, 5, 7, 8, 16, 17, 18, 19, 20, 21])
PCK_THRESHOLD_MM = 50.0
AUC_MAX_MM = 199.0  # evaluate.py: thresholds np.arange(AUC_MIN=0, AUC_MAX=200)
VALID_FRAME_RULES = {
    'official': 'campose_valid and poses2d not all zero (official evaluate.py '
                'check_valid_inds, MeTRAbs; --valid-frames=campose: SPIN)',
    'campose': 'campose_valid only (SPIN preprocessing; --valid-frames=official: evaluate.py, '
               'MeTRAbs)'}
SPLIT_TEXT = {
    'all': 'every split, train + validation + test (the 60 sequences; MeTRAbs eval_3dpw.py, ECCV\'20 '
           'challenge evaluate.py; --split=test: SPIN/VIBE-style papers)',
    'test': 'the test split, 24 sequences (SPIN/VIBE-style papers; --split=all: MeTRAbs)'}
GT_JOINTS_TEXT = {
    'pickle': 'jointPositions of the pickles (MeTRAbs; --gt-joints=smpl: official evaluate.py)',
    'smpl': 'gendered SMPL forward pass of poses, betas[:10], trans (official evaluate.py; '
            '--gt-joints=pickle: MeTRAbs)'}
DEFAULT_BOXES = 'detector'
# predict_tdpw.py: detect_poses_batched(detector_threshold=0.2, detector_nms_iou_threshold=0.7,
# detector_flip_aug=True, suppress_implausible_poses=False)
DETECTOR = DetectorSettings(threshold=0.2, nms_iou_threshold=0.7, flip_aug=True,
                            suppress_implausible_poses=False)
INFERENCE_DEFAULTS = RELEASED_INFERENCE


@dataclasses.dataclass
class PW3DGT(SinglePersonGT):
    """SinglePersonGT plus the mesh-regressed H36M joints [N, 17, 3] mm camera frame (None with
    `mesh_unavailable` saying why)."""

    mesh_joints: np.ndarray | None = None
    mesh_unavailable: str = ''


def sequence_paths(root: pathlib.Path, split: str) -> list[pathlib.Path]:
    """The sequence pickles of `split` ('all' = every split folder, each must exist)."""
    if split != 'all' and split not in SPLITS:
        raise ValueError(f"unknown 3DPW split {split!r}; expected 'all' or one of {SPLITS}")
    paths = []
    for name in SPLITS if split == 'all' else (split,):
        folder = common.require_dir(root / 'sequenceFiles' / name, f'the {name} .pkl files')
        found = sorted(folder.glob('*.pkl'))
        if not found:
            raise FileNotFoundError(f'no .pkl files in {folder}')
        paths.extend(found)
    return paths


def _actor_field(data: dict, key: str, actor: int, path, shape) -> np.ndarray:
    values = common.get_field(data, key, path)
    if not isinstance(values, (list, tuple)) or len(values) <= actor:
        raise common.DatasetFormatError(f'{path}: field {key!r} must list every actor')
    return common.get_field({key: values[actor]}, key, f'{path} [actor {actor}]', shape)


def poses2d_of(data: dict, actor: int, path, n_frames: int) -> np.ndarray:
    """[F, 18, 3] (x px, y px, confidence) of one actor; the pickle stores [F, 3, 18]."""
    return np.transpose(_actor_field(data, 'poses2d', actor, path, (n_frames, 3, 18)), (0, 2, 1))


def valid_frames_of(data: dict, actor: int, path, n_frames: int, rule: str) -> np.ndarray:
    """Indices of the evaluated frames of one actor under `rule` (VALID_FRAME_RULES)."""
    valid = _actor_field(data, 'campose_valid', actor, path, (n_frames,)) > 0
    if rule == 'official':
        valid &= np.any(poses2d_of(data, actor, path, n_frames) != 0, axis=(1, 2))
    elif rule != 'campose':
        raise ValueError(f'unknown valid_frames rule {rule!r}; expected one of '
                         f'{list(VALID_FRAME_RULES)}')
    return np.flatnonzero(valid)


def _to_camera_mm(world_m: np.ndarray, cam_poses: np.ndarray) -> np.ndarray:
    """[n, J, 3] world metres -> camera frame mm with per-frame [n, 4, 4] world-to-camera."""
    rot, trans = cam_poses[:, :3, :3], cam_poses[:, :3, 3]
    return 1000.0 * (np.einsum('nij,nkj->nki', rot, world_m) + trans[:, np.newaxis])


def _smpl_parameters(data: dict, actor: int, path, frames: np.ndarray, n_frames: int):
    """(gender, pose [n, 72], betas [10], trans [n, 3]) of one actor at `frames`."""
    genders = common.get_field(data, 'genders', path)
    if not isinstance(genders, (list, tuple)) or len(genders) <= actor:
        raise common.DatasetFormatError(f"{path}: field 'genders' must list every actor")
    gender = genders[actor].decode() if isinstance(genders[actor], bytes) else str(genders[actor])
    pose = _actor_field(data, 'poses', actor, path, (n_frames, 72))[frames]
    betas = _actor_field(data, 'betas', actor, path, (None,))[:10]
    trans = _actor_field(data, 'trans', actor, path, (n_frames, 3))[frames]
    return gender[:1].lower(), pose, betas, trans


def _sequence_rows(path: pathlib.Path, valid_frames: str, gt_joints: str,
                   mesh: MeshFiles | None, with_mesh: bool):
    """[(actor, frames [n], camera-frame SMPL joints [n, 24, 3] mm, mesh H36M joints
    [n, 17, 3] mm or None)] of one sequence pickle."""
    data = common.load_pickled_dict(path, 'a 3DPW sequence .pkl')
    cam_poses = common.get_field(data, 'cam_poses', path, (None, 4, 4))
    n_frames = len(cam_poses)
    actors = common.get_field(data, 'jointPositions', path)
    if not isinstance(actors, (list, tuple)) or not actors:
        raise common.DatasetFormatError(f"{path}: field 'jointPositions' must be a list with "
                                        f"one entry per actor")
    rows = []
    for actor in range(len(actors)):
        frames = valid_frames_of(data, actor, path, n_frames, valid_frames)
        if gt_joints == 'pickle':
            world = _actor_field(data, 'jointPositions', actor, path, (n_frames, 72))[frames]
            world = world.reshape(-1, 24, 3)
        else:
            world = mesh.smpl_joints(*_smpl_parameters(data, actor, path, frames, n_frames),
                                     path=str(path))
        mesh_joints = None
        if with_mesh:
            mesh_joints = _to_camera_mm(mesh.regressed_h36m(
                *_smpl_parameters(data, actor, path, frames, n_frames), path=str(path)),
                cam_poses[frames])
        rows.append((actor, frames, _to_camera_mm(world, cam_poses[frames]), mesh_joints))
    return rows


def load_ground_truth(root: str | pathlib.Path, split: str = 'all', valid_frames: str = 'official',
                      gt_joints: str = 'pickle', body_model_dir: str | None = None,
                      h36m_regressor: str | None = None) -> PW3DGT:
    """Reads the sequence pickles of `split` (see the module docstring for each option).

    body_model_dir (posepile.body_models layout; else $POSEPILE_BODY_MODEL_DIR) and
    h36m_regressor (J_regressor_h36m.npy) enable the mesh 14-joint numbers; gt_joints='smpl'
    needs body_model_dir.
    """
    root = pathlib.Path(root)
    if gt_joints not in GT_JOINTS_TEXT:
        raise ValueError(f'unknown gt_joints {gt_joints!r}; expected one of {list(GT_JOINTS_TEXT)}')
    if valid_frames not in VALID_FRAME_RULES:
        raise ValueError(f'unknown valid_frames rule {valid_frames!r}; expected one of '
                         f'{list(VALID_FRAME_RULES)}')
    paths = sequence_paths(root, split)
    joint_names = skeleton_joint_names(SKELETON)
    if len(joint_names) != 24:
        raise ValueError(f'skeleton {SKELETON} has {len(joint_names)} joints, SMPL has 24')
    mesh, unavailable = None, ''
    if body_model_dir is not None or h36m_regressor is not None or gt_joints == 'smpl':
        from posepile.body_models import resolve_body_model_dir
        mesh = MeshFiles(resolve_body_model_dir(body_model_dir, '3DPW with the SMPL mesh'),
                         None if h36m_regressor is None else str(h36m_regressor))
    if h36m_regressor is None:
        unavailable = ('needs the SMPL body models (--body-model-dir) and the H36M joint '
                       'regressor (--h36m-regressor J_regressor_h36m.npy); none given')
    else:
        mesh.regressor  # noqa: B018  (a bad file fails here, before any sequence is read)
    with_mesh = not unavailable
    columns = {k: [] for k in ('sequence', 'frame', 'person', 'poses', 'mesh', 'split')}
    for path in tqdm(paths, desc='3dpw ground truth', unit='sequence'):
        for actor, frames, poses, mesh_joints in _sequence_rows(path, valid_frames, gt_joints,
                                                                mesh, with_mesh):
            for key, value in zip(columns, (np.full(len(frames), path.stem), frames,
                                            np.full(len(frames), actor), poses, mesh_joints,
                                            np.full(len(frames), path.parent.name))):
                columns[key].append(value)
    sequence = np.concatenate(columns['sequence'])
    return PW3DGT(
        sequence=sequence, frame=np.concatenate(columns['frame']),
        person=np.concatenate(columns['person']), poses=np.concatenate(columns['poses']),
        joint_names=joint_names,
        groups={'sequence': sequence, 'split': np.concatenate(columns['split'])},
        source=str(root), skeleton=SKELETON,
        protocol=dict(split=split, valid_frames=valid_frames, gt_joints=gt_joints,
                      n_sequences=len(paths), body_model_dir=None if mesh is None
                      else mesh.body_model_dir, h36m_regressor=h36m_regressor),
        mesh_joints=np.concatenate(columns['mesh']) if with_mesh else None,
        mesh_unavailable=unavailable)


def mesh14_errors(pred17: np.ndarray, gt17: np.ndarray) -> dict[str, np.ndarray]:
    """SPIN's 14-joint errors [N, 14] mm from [N, 17, 3] H36M-order joints: root-aligned at the
    pelvis (MPJPE) and similarity-Procrustes-aligned over the 14 (PA-MPJPE)."""
    pred14 = pred17[:, H36M_TO_J14] - pred17[:, H36M_PELVIS:H36M_PELVIS + 1]
    gt14 = gt17[:, H36M_TO_J14] - gt17[:, H36M_PELVIS:H36M_PELVIS + 1]
    return {'MPJPE': metrics.joint_errors(pred14, gt14, 'none'),
            'PA-MPJPE': metrics.joint_errors(pred14, gt14, 'procrustes')}


def _mesh_numbers(gt: PW3DGT, predictions: Predictions, gt_rows: np.ndarray,
                  pred_rows: np.ndarray) -> tuple[dict[str, float], str]:
    """({'mpjpe_14', 'pa_mpjpe_14'}, '' or why they are unavailable) over the evaluated GT rows
    and their prediction rows."""
    nan = {'mpjpe_14': float('nan'), 'pa_mpjpe_14': float('nan')}
    if gt.mesh_joints is None:
        return nan, gt.mesh_unavailable
    try:
        pred17 = select_protocol_joints(predictions, MESH_SKELETON)
    except KeyError as e:
        return nan, (f'the predictions have no {MESH_SKELETON} joints (the H36M-format output '
                     f'the mesh-regressed joints are compared with): {e.args[0]}')
    errors = mesh14_errors(pred17[pred_rows], gt.mesh_joints[gt_rows])
    return {'mpjpe_14': metrics.nan_mean(errors['MPJPE']),
            'pa_mpjpe_14': metrics.nan_mean(errors['PA-MPJPE'])}, ''


def evaluate(gt: PW3DGT, predictions: Predictions) -> BenchmarkResult:
    """SMPL-24 numbers (root = pelvis), PCK/AUC on the major joints, mesh 14-joint numbers."""
    index, n_unused = match_rows(gt, predictions)
    pred = select_protocol_joints(predictions, gt.skeleton)[index]
    # Tracked detections leave an actor without a pose until it is first associated (as the
    # released predict_tdpw.py); those rows are left out and counted, only for detector runs.
    answered = np.all(np.isfinite(pred), axis=(1, 2))
    if predictions.box_source != 'detector' and not np.all(answered):
        raise ValueError(f'{predictions.source}: {np.count_nonzero(~answered)} predicted poses '
                         f'are NaN/inf')
    keep = np.flatnonzero(answered)
    pred, poses = pred[keep], gt.poses[keep]
    errors = error_sets(pred, poses, ROOT_INDEX)
    major = errors['MPJPE'][:, MAJOR_JOINTS]
    summary = dict(
        mpjpe=metrics.nan_mean(errors['MPJPE']), pa_mpjpe=metrics.nan_mean(errors['PA-MPJPE']),
        n_mpjpe=metrics.nan_mean(errors['N-MPJPE']),
        mpjpe_abs=metrics.nan_mean(errors['MPJPE-abs']),
        pck50=metrics.pck(major, PCK_THRESHOLD_MM, inclusive=True),
        auc=metrics.auc_trapezoid(major, AUC_MAX_MM),
        auc_metrabs=metrics.auc_binned(major, AUC_MAX_MM))
    mesh, mesh_missing = _mesh_numbers(gt, predictions, keep, index[keep])
    summary.update(mesh)
    columns = ['MPJPE', 'PA-MPJPE', 'N-MPJPE', 'MPJPE-abs', 'PCK@50', 'AUC', 'AUC-MeTRAbs']
    rows = {'SMPL 24': [summary[k] for k in ('mpjpe', 'pa_mpjpe', 'n_mpjpe', 'mpjpe_abs',
                                              'pck50', 'auc', 'auc_metrabs')],
            '14 from mesh (SPIN)': [mesh['mpjpe_14'], mesh['pa_mpjpe_14']] + [None] * 5}
    table = Table('3DPW (mm; PCK@50mm % (<=) and AUC % (0..199 mm) on the 12 major joints)',
                  columns, rows)
    splits = gt.groups['split'][keep]
    by_split = breakdown_table('3DPW by split', {
        'MPJPE': errors['MPJPE'], 'PA-MPJPE': errors['PA-MPJPE'],
        'PCK@50': 100.0 * metrics.pck_hits(major, PCK_THRESHOLD_MM, inclusive=True)},
        splits, column_order=list(SPLITS))
    wacv23 = wacv23_table('3DPW (SMPL 24)', pred, poses, ROOT_INDEX)
    labelled = metrics.valid_mask(poses)
    provenance, provenance_counts = prediction_provenance(predictions)
    counts = dict(n_poses=len(keep), n_poses_without_prediction=int(len(gt.poses) - len(keep)),
                  n_sequences=len(set(gt.sequence.tolist())),
                  n_joint_entries=int(np.count_nonzero(labelled)),
                  n_missing_gt_joints=int(np.count_nonzero(~labelled)),
                  n_unused_predictions=int(n_unused), **provenance_counts)
    protocol = dict(**gt.protocol, joints=list(gt.joint_names), root=gt.joint_names[ROOT_INDEX],
                    pck_joints=[gt.joint_names[i] for i in MAJOR_JOINTS],
                    pck_threshold_mm=PCK_THRESHOLD_MM, auc_max_threshold_mm=AUC_MAX_MM,
                    mesh_14_available=not mesh_missing, mesh_14_unavailable=mesh_missing,
                    mesh_joints=[skeleton_joint_names(MESH_SKELETON)[i] for i in H36M_TO_J14],
                    inference=predictions.inference)
    conventions = {
        'sequences': SPLIT_TEXT.get(gt.protocol['split'], f'the {gt.protocol["split"]} split'),
        'frames': VALID_FRAME_RULES[gt.protocol['valid_frames']],
        'GT joints': GT_JOINTS_TEXT[gt.protocol['gt_joints']],
        'PCK/AUC': 'error <= 50 mm on the 12 major joints; AUC = PCK curve 0..199 mm '
                   '(trapezoid, official evaluate.py); AUC-MeTRAbs = its 50-bin approximation',
        '14 joints': ('H36M joints regressed from the gendered SMPL mesh, pelvis-rooted (SPIN '
                      'eval.py); predictions: the h36m_17 joints' if not mesh_missing
                      else f'unavailable: {mesh_missing}'),
        **provenance}
    if counts['n_poses_without_prediction']:
        conventions['missing'] = (f'{counts["n_poses_without_prediction"]} evaluated poses '
                                  f'have no tracked detection yet and are left out')
    per_joint = {k: errors[k] for k in ('MPJPE', 'PA-MPJPE', 'MPJPE-abs')}
    return BenchmarkResult('pw3d', summary, [table, by_split, wacv23], counts, protocol,
                           per_joint_dict(per_joint, gt.joint_names), conventions)


BOX_MARGIN = 0.1  # of the projected joints' extent per side: 24 joints bound the body loosely


def _person_box(joints2d: np.ndarray, imshape: tuple[int, int]) -> np.ndarray:
    """[4] x, y, w, h px around the joints, clipped to the image unless nothing would remain
    (every GT row needs a prediction, so a person outside the frame still gets its box)."""
    box = common.box_around_points(joints2d, BOX_MARGIN, imshape=imshape)
    return box if box[2] > 0 and box[3] > 0 else common.box_around_points(joints2d, BOX_MARGIN)


def model_inputs(gt: PW3DGT, boxes: str = 'gt') -> Iterator:
    """One `eval.model_predictions.ModelInput` per image with evaluated actors (boxes='gt') or
    per image of every evaluated sequence (boxes='detector': the tracker needs every frame).

    image: the JPEG path; boxes: [P, 4] x, y, w, h px, one per actor evaluated in that frame,
    person = actor index (boxes='gt'), or None (the model's detector, DETECTOR); camera: the
    sequence's intrinsics and that frame's camera pose (for the world's up direction;
    extrinsics identity, so predictions come out in the camera frame, mm, like the GT). Keys:
    sequence = pickle stem, frame = image index.
    """
    from eval.model_predictions import camera_frame_input
    from posepile.camera import Camera
    from posepile.datasets import tdpw

    root = pathlib.Path(gt.source)
    sequences, first_rows = np.unique(gt.sequence, return_index=True)
    for sequence in sequences[np.argsort(first_rows)]:  # in GT order
        rows = np.flatnonzero(gt.sequence == sequence)
        pkl = root / 'sequenceFiles' / str(gt.groups['split'][rows[0]]) / f'{sequence}.pkl'
        data = tdpw.load_sequence(pkl)
        image_dir = common.safe_path(root, f'imageFiles/{data["name"]}', str(pkl))
        intrinsics = Camera(intrinsic_matrix=data['intrinsics'])
        if boxes == 'detector':
            frames, frame_rows = np.arange(len(data['cam_poses'])), None
        else:
            rows = rows[np.lexsort((gt.person[rows], gt.frame[rows]))]
            frames, starts = np.unique(gt.frame[rows], return_index=True)
            frame_rows = np.split(rows, starts[1:])
            points2d = np.split(intrinsics.camera_to_image(gt.poses[rows]), starts[1:])
        imshape = None
        for i, frame in enumerate(frames):
            image = image_dir / f'image_{int(frame):05d}.jpg'
            if frame >= len(data['cam_poses']):
                raise ValueError(f'{pkl}: frame {frame} beyond the {len(data["cam_poses"])} '
                                 f'cam_poses')
            pose = data['cam_poses'][frame]  # world-to-camera, translation in mm
            rotation, translation = pose[:3, :3], pose[:3, 3]
            camera = Camera(-rotation.T @ translation, rotation, data['intrinsics'],
                            world_up=tdpw.WORLD_UP)
            if frame_rows is None:
                frame_boxes, person = None, None
            else:
                imshape = imshape or common.image_shape(image, f'frame {frame} of {data["name"]}')
                frame_boxes = np.stack([_person_box(p, imshape) for p in points2d[i]])
                person = gt.person[frame_rows[i]]
            yield camera_frame_input(str(image), frame_boxes, camera, str(sequence), int(frame),
                                     person=person, where=str(image))


# ------------------------------------------------------------------- detections -> actors ---
# The released predict_tdpw.py with --gtassoc: each frame's detections are assigned to the
# sequence's actors (Hungarian) by a 2D similarity to the actors' poses2d, falling back to the
# actor's previously assigned 2D pose when fewer than 5 of the keypoints are confident. (Its
# default associates with precomputed STCN masks, not part of 3DPW.) An actor without a
# detection keeps its last assigned pose.
# (poses2d index, smpl_24 index): lsho, rsho, lelb, relb, lhip, rhip, lkne, rkne.
ASSOCIATION_JOINTS = np.array([[5, 16], [2, 17], [6, 18], [3, 19], [11, 1], [8, 2], [12, 4],
                               [9, 5]])
SIZE_JOINTS = (17, 1)  # smpl_24 rsho, lhip: the predicted torso diagonal sets the scale
MIN_CONFIDENCE = 0.2
MIN_CONFIDENT_JOINTS = 5


def association_scores(true2d: np.ndarray, pred2d: np.ndarray, previous2d: np.ndarray
                       ) -> np.ndarray:
    """[A, P] similarity of actors to detections in one frame, in [0, 1].

    true2d [A, 18, 3] the actors' poses2d (x, y, confidence); pred2d [P, 24, 2] the detections'
    smpl_24 joints px; previous2d [A, 8, 2] each actor's previously assigned ASSOCIATION_JOINTS
    (zeros before the first). Score = mean over the confident joints of max(0, 1 - d / size),
    d = 2D distance, size = the detection's rsho-lhip distance.
    """
    true = true2d[:, ASSOCIATION_JOINTS[:, 0]]  # [A, 8, 3]
    pred = pred2d[:, ASSOCIATION_JOINTS[:, 1]]  # [P, 8, 2]
    size = np.linalg.norm(pred2d[:, SIZE_JOINTS[0]] - pred2d[:, SIZE_JOINTS[1]], axis=-1)
    confident = true[..., 2] >= MIN_CONFIDENCE  # [A, 8]
    reference = np.where((np.count_nonzero(confident, axis=1) >= MIN_CONFIDENT_JOINTS)
                         [:, np.newaxis, np.newaxis], true[..., :2], previous2d)
    used = np.where((np.count_nonzero(confident, axis=1) >= MIN_CONFIDENT_JOINTS)[:, np.newaxis],
                    confident, True)  # [A, 8]
    distance = np.linalg.norm(reference[:, np.newaxis] - pred[np.newaxis], axis=-1)  # [A, P, 8]
    with np.errstate(invalid='ignore', divide='ignore'):
        score = np.maximum(0.0, 1.0 - distance / size[np.newaxis, :, np.newaxis])
    score = np.where(used[:, np.newaxis], score, np.nan)
    return np.nan_to_num(metrics.nan_mean(score, axis=2), nan=0.0)


def track_sequence(true2d: np.ndarray, frames: np.ndarray, pred2d: np.ndarray) -> np.ndarray:
    """[A, F] detection row per actor and frame (-1 = not yet assigned), carrying each actor's
    last assignment forward.

    true2d [A, F, 18, 3] poses2d of every frame; frames [D] the frame of each detection row,
    pred2d [D, 24, 2] their smpl_24 joints px.
    """
    from scipy.optimize import linear_sum_assignment
    n_actors, n_frames = true2d.shape[:2]
    assigned = np.full((n_actors, n_frames), -1, np.int64)
    previous = np.zeros((n_actors, len(ASSOCIATION_JOINTS), 2))
    current = np.full(n_actors, -1, np.int64)
    order = np.argsort(frames, kind='stable')
    bounds = np.searchsorted(frames[order], np.arange(n_frames + 1))
    for frame in range(n_frames):
        rows = order[bounds[frame]:bounds[frame + 1]]
        if len(rows):
            scores = association_scores(true2d[:, frame], pred2d[rows], previous)
            actors, picks = linear_sum_assignment(-scores)
            current[actors] = rows[picks]
            previous[actors] = pred2d[rows[picks]][:, ASSOCIATION_JOINTS[:, 1]]
        assigned[:, frame] = current
    return assigned


def assign_detections(gt: PW3DGT, detections: Predictions) -> Predictions:
    """Detector-mode predictions (one row per detection) -> one row per ground-truth pose, the
    detection tracked to that actor (`track_sequence`); NaN poses where none is yet."""
    pred2d = select_protocol_joints(detections, SKELETON, 'poses2d')
    root = pathlib.Path(gt.source)
    picked = np.full(len(gt.sequence), -1, np.int64)
    for sequence in tqdm(np.unique(gt.sequence), desc='3dpw association', unit='sequence'):
        rows = np.flatnonzero(gt.sequence == sequence)
        pkl = root / 'sequenceFiles' / str(gt.groups['split'][rows[0]]) / f'{sequence}.pkl'
        data = common.load_pickled_dict(pkl, 'a 3DPW sequence .pkl')
        n_frames = len(common.get_field(data, 'cam_poses', pkl, (None, 4, 4)))
        n_actors = len(common.get_field(data, 'jointPositions', pkl))
        true2d = np.stack([poses2d_of(data, a, pkl, n_frames) for a in range(n_actors)])
        mine = np.flatnonzero(detections.sequence == sequence)
        if np.any(detections.frame[mine] >= n_frames):
            raise ValueError(f'{detections.source}: {sequence} has detections beyond its '
                             f'{n_frames} frames')
        assigned = track_sequence(true2d, detections.frame[mine], pred2d[mine])
        local = assigned[gt.person[rows], gt.frame[rows]]
        picked[rows] = np.where(local >= 0, mine[np.maximum(local, 0)], -1)
    take = np.maximum(picked, 0)
    missing = (picked < 0)[:, np.newaxis, np.newaxis]
    boxes = None if detections.boxes is None else np.where(
        missing[:, :, 0], np.nan, detections.boxes[take])
    return dataclasses.replace(
        detections, poses=np.where(missing, np.nan, detections.poses[take]),
        poses2d=None if detections.poses2d is None else np.where(
            missing, np.nan, detections.poses2d[take]),
        boxes=boxes, sequence=gt.sequence.copy(), frame=gt.frame.copy(),
        person=gt.person.copy())
