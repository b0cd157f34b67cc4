"""MuPoTS-3D protocol: 20 multi-person sequences, 3DPCK@150 mm and AUC, all / matched people.

Ground truth: `<root>/TS<i>/annot.mat` (old MATLAB format, scipy.io.loadmat), variable
'annotations': a frames x people cell of structs with
    annot2       2 x 17  image pixels
    annot3       3 x 17  mm, camera frame
    univ_annot3  3 x 17  mm, camera frame, rescaled to the universal skeleton
    isValidFrame 1 x 1   whether this person is annotated in this frame
Joints are the 17 of skeleton 'mupots_17' in file order, root = pelvis (row 14); PCK and AUC
average the first 14 joints.

Protocol (as the official evaluation and MeTRAbs): per frame, each annotated person, in file
order, takes the not-yet-taken detection with the most of joints 1..13 (neck to left ankle)
within MATCH_THRESHOLD_PX in both image coordinates; people with no such detection are
unmatched. Errors are root-relative; by default against univ_annot3 with the predicted bones
rescaled to the ground-truth bone lengths along the skeleton tree from the pelvis. "Matched"
averages over matched people; "all" counts unmatched people as wrong on every joint. Per-sequence
numbers are averaged over the 20 sequences.

Running a model (`model_inputs`, for `eval.run --model`) also reads the frames
`<root>/TS<i>/img_<frame, 6 digits>.jpg`. No calibration is distributed in a readable file: as in
the converter posepile/datasets/mupots.py, each sequence's pinhole intrinsics are fitted to the
annotated annot2 vs annot3 (posepile.camera.fit_intrinsics). The person boxes are the
ground-truth ones, around each annotated person's annot2 with a margin, as is standard when no
detector is given (the protocol's "matched" numbers then measure pose accuracy, not detection).
The model is asked for camera-frame poses, the frame of the annotation.
"""
from __future__ import annotations

import dataclasses
import pathlib
from collections import deque
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from eval import metrics
from eval.benchmarks import (BenchmarkResult, Table, select_protocol_joints,
                             skeleton_joint_names)
from eval.predictions import Predictions

SKELETON = 'mupots_17'
DESCRIPTION = 'MuPoTS-3D TS1-20 annot.mat, 17 joints, PCK/AUC all and matched, 2D matching'
SEQUENCES = tuple(f'TS{i}' for i in range(1, 21))
ROOT_INDEX = 14
EVAL_JOINTS = np.arange(14)
MATCH_JOINTS = np.arange(1, 14)
MATCH_THRESHOLD_PX = 40.0


@dataclasses.dataclass
class MuPoTSGT:
    """Annotated people, one row each (M rows). poses3d/univ3d [M, 17, 3] mm camera frame,
    poses2d [M, 17, 2] px; rows of one (sequence, frame) are contiguous and in file order."""

    sequence: np.ndarray
    frame: np.ndarray
    person: np.ndarray
    poses2d: np.ndarray
    poses3d: np.ndarray
    univ3d: np.ndarray
    joint_names: tuple[str, ...]
    n_frames: dict[str, int]
    source: str
    protocol: dict = dataclasses.field(default_factory=dict)


def _struct_field(entry, name: str, path: pathlib.Path) -> np.ndarray:
    try:
        return np.asarray(entry[name][0, 0] if entry[name].dtype == object else entry[name])
    except (ValueError, KeyError, IndexError) as e:
        raise KeyError(f'{path}: annotations entry lacks field {name!r} ({e})') from None


def read_annotations(path: pathlib.Path):
    """(rows, number of frames) of one annot.mat; a row per annotated person and frame:
    (frame, person, annot2 [17, 2] px, annot3 [17, 3] mm, univ_annot3 [17, 3] mm)."""
    import scipy.io
    mat = scipy.io.loadmat(path)
    if 'annotations' not in mat:
        raise KeyError(f'{path}: missing variable "annotations"')
    annotations = mat['annotations']
    if annotations.ndim != 2:
        raise ValueError(f'{path}: "annotations" must be frames x people, got {annotations.shape}')
    rows = []
    n_frames, n_people = annotations.shape
    for frame in range(n_frames):
        for person in range(n_people):
            entry = annotations[frame, person]
            if not np.any(_struct_field(entry, 'isValidFrame', path)):
                continue
            fields = [_struct_field(entry, k, path) for k in ('annot2', 'annot3', 'univ_annot3')]
            for field, k, d in zip(fields, ('annot2', 'annot3', 'univ_annot3'), (2, 3, 3)):
                if field.shape != (d, 17):
                    raise ValueError(f'{path}: frame {frame} person {person} field {k!r} has '
                                     f'shape {field.shape}, expected ({d}, 17)')
            rows.append((frame, person, *(f.T.astype(np.float64) for f in fields)))
    return rows, n_frames


def load_ground_truth(root: str | pathlib.Path, sequences: tuple[str, ...] = SEQUENCES,
                      universal: bool = True, rescale_bones: bool | None = None) -> MuPoTSGT:
    """Reads TS1..TS20. universal: compare with univ_annot3 (else annot3). rescale_bones:
    default = universal (the official univ. protocol rescales, the metric-scale one does not)."""
    root = pathlib.Path(root)
    joint_names = skeleton_joint_names(SKELETON)
    if len(joint_names) != 17:
        raise ValueError(f'skeleton {SKELETON} has {len(joint_names)} joints, the protocol 17')
    columns = {k: [] for k in ('sequence', 'frame', 'person', 'poses2d', 'poses3d', 'univ3d')}
    n_frames = {}
    for sequence in tqdm(sequences, desc='mupots ground truth', unit='sequence'):
        path = root / sequence / 'annot.mat'
        if not path.is_file():
            raise FileNotFoundError(f'{path} not found')
        rows, n_frames[sequence] = read_annotations(path)
        for frame, person, p2, p3, u3 in rows:
            for key, value in zip(columns, (sequence, frame, person, p2, p3, u3)):
                columns[key].append(value)
    arrays = {k: np.array(v) for k, v in columns.items()}
    return MuPoTSGT(**arrays, joint_names=joint_names, n_frames=n_frames, source=str(root),
                    protocol=dict(universal=universal, sequences=list(sequences),
                                  rescale_bones=universal if rescale_bones is None
                                  else rescale_bones))


def match_people(true2d: np.ndarray, pred2d: np.ndarray,
                 threshold_px: float = MATCH_THRESHOLD_PX) -> list[tuple[int, int]]:
    """Greedy matching of one frame: [(true index, prediction index)].

    true2d [T, J, 2], pred2d [P, J, 2] px (already restricted to the matching joints). Each
    true person, in order, takes the free prediction with the most joints within threshold_px in
    both coordinates (predicted joints at exactly (0, 0) do not count), if it has any.
    """
    if len(true2d) == 0 or len(pred2d) == 0:
        return []
    close = np.all(np.abs(true2d[:, np.newaxis] - pred2d[np.newaxis]) < threshold_px, axis=-1)
    close &= np.any(pred2d != 0, axis=-1)[np.newaxis]
    n_close = np.count_nonzero(close, axis=-1)  # [T, P]
    taken = np.zeros(len(pred2d), bool)
    matching = []
    for i_true in range(len(true2d)):
        candidates = np.where(taken, -1, n_close[i_true])
        best = int(np.argmax(candidates))
        if candidates[best] > 0:
            matching.append((i_true, best))
            taken[best] = True
    return matching


def traversal_bones(edges: np.ndarray, root: int, n_joints: int) -> list[tuple[int, int]]:
    """(child, parent) bones in breadth-first order from `root` over the skeleton's edges."""
    neighbours = {j: [] for j in range(n_joints)}
    for a, b in np.asarray(edges):
        neighbours[int(a)].append(int(b))
        neighbours[int(b)].append(int(a))
    order, seen, queue = [], {root}, deque([root])
    while queue:
        parent = queue.popleft()
        for child in neighbours[parent]:
            if child not in seen:
                seen.add(child)
                order.append((child, parent))
                queue.append(child)
    if len(seen) != n_joints:
        raise ValueError(f'skeleton edges do not connect all {n_joints} joints to the root')
    return order


def rescale_bones(pred: np.ndarray, gt: np.ndarray, bones: list[tuple[int, int]]) -> np.ndarray:
    """Keeps each predicted bone's direction but gives it the GT bone length, rebuilding the
    pose outward from the root along `bones` (child, parent); [N, J, 3] mm."""
    result = pred.copy()
    for child, parent in bones:
        vector = pred[:, child] - pred[:, parent]
        length = np.linalg.norm(vector, axis=-1, keepdims=True)
        gt_length = np.linalg.norm(gt[:, child] - gt[:, parent], axis=-1, keepdims=True)
        result[:, child] = result[:, parent] + vector * gt_length / np.maximum(length, 1e-9)
    return result


def _frame_groups(sequence: np.ndarray, frame: np.ndarray) -> dict[tuple[str, int], np.ndarray]:
    keys = np.char.add(np.char.add(sequence.astype(str), '|'), frame.astype(str))
    unique, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind='stable')
    splits = np.split(order, np.cumsum(np.bincount(inverse, minlength=len(unique)))[:-1])
    return {tuple(k.rsplit('|', 1)): rows for k, rows in zip(unique, splits)}


def evaluate(gt: MuPoTSGT, predictions: Predictions) -> BenchmarkResult:
    """PCK and AUC (all / matched) per sequence and averaged over sequences."""
    pred3d_all = select_protocol_joints(predictions, SKELETON, 'poses')
    pred2d_all = select_protocol_joints(predictions, SKELETON, 'poses2d')
    pred_groups = _frame_groups(predictions.sequence, predictions.frame)
    gt_groups = _frame_groups(gt.sequence, gt.frame)
    matched_true, matched_pred = [], []
    for key, true_rows in tqdm(gt_groups.items(), desc='mupots matching', unit='frame'):
        pred_rows = pred_groups.get(key, np.zeros(0, np.int64))
        for i_true, i_pred in match_people(gt.poses2d[true_rows][:, MATCH_JOINTS],
                                           pred2d_all[pred_rows][:, MATCH_JOINTS]):
            matched_true.append(true_rows[i_true])
            matched_pred.append(pred_rows[i_pred])
    matched_true = np.asarray(matched_true, np.int64)
    matched_pred = np.asarray(matched_pred, np.int64)

    target = (gt.univ3d if gt.protocol['universal'] else gt.poses3d)[matched_true]
    pred = metrics.root_align(pred3d_all[matched_pred], ROOT_INDEX)
    target = metrics.root_align(target, ROOT_INDEX)
    if gt.protocol['rescale_bones']:
        from posepile.joints import get_skeleton
        bones = traversal_bones(get_skeleton(SKELETON).edges, ROOT_INDEX, len(gt.joint_names))
        pred = rescale_bones(pred, target, bones)
    errors = metrics.joint_errors(pred, target, 'none')[:, EVAL_JOINTS]
    pck_rows = 100.0 * metrics.nan_mean(metrics.pck_hits(errors), axis=1)
    auc_rows = 100.0 * metrics.nan_mean(metrics.auc_scores(errors), axis=1)
    mpjpe_rows = metrics.nan_mean(errors, axis=1)

    sequences = [s for s in gt.protocol['sequences'] if s in set(gt.sequence.tolist())]
    matched_sequence = gt.sequence[matched_true]
    per_sequence = {name: [] for name in
                    ('PCK all', 'PCK matched', 'AUC all', 'AUC matched', 'MPJPE matched')}
    n_annotated, n_matched = {}, {}
    for s in sequences:
        in_seq = matched_sequence == s
        n_annotated[s] = int(np.count_nonzero(gt.sequence == s))
        n_matched[s] = int(np.count_nonzero(in_seq))
        fraction = n_matched[s] / n_annotated[s]
        pck_m = float(np.mean(pck_rows[in_seq])) if n_matched[s] else float('nan')
        auc_m = float(np.mean(auc_rows[in_seq])) if n_matched[s] else float('nan')
        per_sequence['PCK matched'].append(pck_m)
        per_sequence['AUC matched'].append(auc_m)
        per_sequence['PCK all'].append(pck_m * fraction if n_matched[s] else 0.0)
        per_sequence['AUC all'].append(auc_m * fraction if n_matched[s] else 0.0)
        per_sequence['MPJPE matched'].append(
            float(np.mean(mpjpe_rows[in_seq])) if n_matched[s] else float('nan'))
    rows = {name: values + [metrics.nan_mean(np.array(values))]
            for name, values in per_sequence.items()}
    table = Table('MuPoTS-3D (PCK@150mm %, AUC %, per sequence)', sequences + ['Avg'], rows)
    summary = {name.lower().replace(' ', '_'): values[-1] for name, values in rows.items()}
    total_annotated = sum(n_annotated.values())
    summary['recall'] = 100.0 * len(matched_true) / max(total_annotated, 1)
    counts = dict(n_annotated_people=total_annotated, n_matched_people=int(len(matched_true)),
                  n_predictions=int(len(predictions)),
                  n_unmatched_predictions=int(len(predictions) - len(matched_true)),
                  n_missing_gt_joints=int(np.count_nonzero(np.isnan(errors))))
    protocol = dict(**gt.protocol, joints=[gt.joint_names[i] for i in EVAL_JOINTS],
                    root=gt.joint_names[ROOT_INDEX], match_threshold_px=MATCH_THRESHOLD_PX,
                    pck_threshold_mm=metrics.PCK_THRESHOLD_MM)
    return BenchmarkResult('mupots', summary, [table], counts, protocol)


BOX_MARGIN = 0.1  # of the annotated joints' extent per side: 17 joints bound the body loosely


def model_inputs(gt: MuPoTSGT) -> Iterator:
    """One `eval.model_predictions.ModelInput` per frame with annotated people.

    image: the JPEG path; boxes: [P, 4] x, y, w, h px around each annotated person's annot2 (GT
    boxes), person = annotation column; camera: intrinsics fitted to the sequence's annot2 vs
    annot3, no distortion, identity extrinsics (camera-frame predictions, mm), world up = -y.
    Keys: sequence 'TS<i>', frame (0-based annotation row).
    """
    from eval.model_predictions import camera_frame_input
    from posepile.camera import camera_from_projection
    from posepile.datasets import common

    root = pathlib.Path(gt.source)
    sequences, first_rows = np.unique(gt.sequence, return_index=True)
    for sequence in sequences[np.argsort(first_rows)]:  # in GT order
        rows = np.flatnonzero(gt.sequence == sequence)
        camera = camera_from_projection(gt.poses3d[rows], gt.poses2d[rows],
                                        f'{root / str(sequence) / "annot.mat"} annot2 vs annot3')
        rows = rows[np.lexsort((gt.person[rows], gt.frame[rows]))]
        frames, starts = np.unique(gt.frame[rows], return_index=True)
        imshape = None
        for frame, frame_rows in zip(frames, np.split(rows, starts[1:])):
            image = common.safe_path(root, f'{sequence}/img_{int(frame):06d}.jpg')
            imshape = imshape or common.image_shape(image, f'frame {frame} of {sequence}')
            boxes = np.stack([common.box_around_points(p, BOX_MARGIN, imshape=imshape)
                              for p in gt.poses2d[frame_rows]])
            yield camera_frame_input(
                str(image), boxes, camera, str(sequence), int(frame),
                person=gt.person[frame_rows], where=str(image))
