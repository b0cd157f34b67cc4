"""MuPoTS-3D protocol: 20 multi-person sequences, 3DPCK@150 mm and AUC, all / matched people.

Ground truth: `<root>/TS<i>/annot.mat` (old MATLAB format, scipy.io.loadmat), variable
'annotations': a frames x people cell of structs with
    annot2       2 x 17  image pixels
    annot3       3 x 17  mm, camera frame
    univ_annot3  3 x 17  mm, camera frame, rescaled to the universal skeleton
    isValidFrame 1 x 1   whether this person is annotated in this frame
Joints are the 17 of skeleton 'mupots_17' in file order, root = pelvis (row 14); PCK and AUC
average the first 14 joints.

Protocol (the official mpii_mupots_multiperson_eval.m and the released MeTRAbs eval_mupots.py):
per frame, each annotated person, in file order, takes the not-yet-taken detection with the most
of joints 1..13 (neck to left ankle) within MATCH_THRESHOLD_PX in both image coordinates; people
with no such detection are unmatched. By default errors are root-relative, against univ_annot3,
with the predicted bones rescaled to the ground-truth lengths along the official parent table
(mpii_get_joints.m 'relevant': head top and head hang off the neck), rebuilt outward from the
predicted pelvis. Options: universal=False (annot3), rescale_bones, root_relative=False (the
absolute 3DPCK, the official script's is_relative = 0 mode). "Matched" averages over matched
people; "all" counts unmatched people as wrong on every joint. Per-sequence numbers are
averaged over the 20 sequences. Besides the chosen variant, the report has the numbers the
released MeTRAbs eval_mupots.py prints (root-relative and absolute PCK; metric-scale MPJPE) and
its WACV'23 metric set.

Running a model (`model_inputs`, for `eval.run --model`) also reads the frames
`<root>/TS<i>/img_<frame, 6 digits>.jpg`. Camera: `<root>/camera_intrinsics.json` ({"TS1":
3x3, ...}, the file the released predict_mupots.py reads) when present, else each sequence's
pinhole intrinsics fitted to the annotated annot2 vs annot3 (posepile.camera.fit_intrinsics).
Boxes: the model's detector as the released predictions (threshold 0.2, NMS 0.7, flip
augmentation; boxes='detector', the default), or the ground-truth ones around each annotated
person's annot2 (boxes='gt': then "all" measures no detection, every person has a box). The
model is asked for camera-frame poses, the frame of the annotation.
"""
from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from eval import metrics
from eval.benchmarks import (BenchmarkResult, Table, prediction_provenance,
                             select_protocol_joints, skeleton_joint_names, wacv23_table)
from eval.model_predictions import RELEASED_INFERENCE, DetectorSettings
from eval.predictions import Predictions

SKELETON = 'mupots_17'
DESCRIPTION = 'MuPoTS-3D TS1-20 annot.mat, 17 joints, PCK/AUC all and matched, 2D matching'
SEQUENCES = tuple(f'TS{i}' for i in range(1, 21))
ROOT_INDEX = 14
EVAL_JOINTS = np.arange(14)
MPJPE16_JOINTS = np.array([*range(14), 15, 16])  # all but the pelvis (eval_mupots.py mpjpe16)
MATCH_JOINTS = np.arange(1, 14)
MATCH_THRESHOLD_PX = 40.0
# mpii_get_joints.m, 'relevant' joint set: joint_parents_o1 (1-based) -> 0-based parents.
OFFICIAL_PARENTS = np.array([2, 16, 2, 3, 4, 2, 6, 7, 15, 9, 10, 15, 12, 13, 15, 15, 2]) - 1
# mpii_mupots_multiperson_eval.m: safe_traversal_order(2:end), the order bones are rescaled in.
RESCALE_ORDER = np.array([16, 2, 1, 17, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]) - 1
RESCALE_BONES = [(int(c), int(OFFICIAL_PARENTS[c])) for c in RESCALE_ORDER]  # (child, parent)
DEFAULT_BOXES = 'detector'
# predict_mupots.py: detect_poses_batched(detector_threshold=0.2, detector_nms_iou_threshold=0.7,
# detector_flip_aug=True, suppress_implausible_poses=False)
DETECTOR = DetectorSettings(threshold=0.2, nms_iou_threshold=0.7, flip_aug=True,
                            suppress_implausible_poses=False)
INFERENCE_DEFAULTS = RELEASED_INFERENCE


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
                      universal: bool = True, rescale_bones: bool | None = None,
                      root_relative: bool = True) -> MuPoTSGT:
    """Reads TS1..TS20. universal: compare with univ_annot3 (else annot3). rescale_bones:
    default = universal (the official univ. protocol rescales, the metric-scale one does not).
    root_relative=False: absolute errors (3DPCK of the camera-frame positions)."""
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
                                  else rescale_bones, root_relative=root_relative))


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


def rescale_bones(pred: np.ndarray, gt: np.ndarray,
                  bones: list[tuple[int, int]] = RESCALE_BONES) -> np.ndarray:
    """Keeps each predicted bone's direction but gives it the GT bone length, rebuilding the
    pose outward from the predicted root along `bones` (child, parent; each parent rebuilt
    before its children); [N, J, 3] mm. The root keeps its predicted position."""
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


def match_all(gt: MuPoTSGT, predictions: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """(GT rows, prediction rows) of every match, frame by frame (`match_people`)."""
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
    return np.asarray(matched_true, np.int64), np.asarray(matched_pred, np.int64)


def variant_errors(pred: np.ndarray, target: np.ndarray, rescale: bool,
                   root_relative: bool) -> np.ndarray:
    """[M, 17] errors mm of matched predictions against their targets, [M, 17, 3] each."""
    if rescale:
        pred = rescale_bones(pred, target)
    if root_relative:
        return metrics.joint_errors(pred, target, 'root', ROOT_INDEX)
    return metrics.joint_errors(pred, target, 'none')


def per_sequence(errors: np.ndarray, matched_sequence: np.ndarray, sequences: list[str],
                 n_annotated: dict[str, int]) -> dict[str, list[float]]:
    """Per-sequence means of one variant: {metric: [value per sequence]}. PCK/AUC over the 14
    joints; 'all' = matched x matched people / annotated people (unmatched = all joints wrong);
    MPJPE over 14 and 16 joints of matched people. NaN where a sequence has no match (its
    'all' numbers are then 0)."""
    pose_values = {
        'PCK matched': 100.0 * metrics.nan_mean(metrics.pck_hits(errors[:, EVAL_JOINTS]), axis=1),
        'AUC matched': 100.0 * metrics.nan_mean(metrics.auc_scores(errors[:, EVAL_JOINTS]),
                                                axis=1),
        'MPJPE-14 matched': metrics.nan_mean(errors[:, EVAL_JOINTS], axis=1),
        'MPJPE-16 matched': metrics.nan_mean(errors[:, MPJPE16_JOINTS], axis=1)}
    result = {name: [] for name in ('PCK all', 'PCK matched', 'AUC all', 'AUC matched',
                                    'MPJPE-14 matched', 'MPJPE-16 matched')}
    for s in sequences:
        in_seq = matched_sequence == s
        fraction = np.count_nonzero(in_seq) / n_annotated[s]
        for name, values in pose_values.items():
            result[name].append(metrics.nan_mean(values[in_seq]) if np.any(in_seq)
                                else float('nan'))
        for kind in ('PCK', 'AUC'):
            matched = result[f'{kind} matched'][-1]
            result[f'{kind} all'].append(matched * fraction if np.any(in_seq) else 0.0)
    return result


def _with_average(rows: dict[str, list[float]]) -> dict[str, list[float]]:
    return {name: values + [metrics.nan_mean(np.array(values))] for name, values in rows.items()}


def _variant_key(universal: bool, rescale: bool, root_relative: bool) -> str:
    return '_'.join(['rel' if root_relative else 'abs', 'univ' if universal else 'metric',
                     'rescaled' if rescale else 'unscaled'])


def evaluate(gt: MuPoTSGT, predictions: Predictions) -> BenchmarkResult:
    """PCK and AUC (all / matched) per sequence and averaged over sequences, for the chosen
    variant, plus the released MeTRAbs evaluation's set of variants."""
    pred3d_all = select_protocol_joints(predictions, SKELETON, 'poses')
    matched_true, matched_pred = match_all(gt, predictions)
    pred = pred3d_all[matched_pred]
    targets = {True: gt.univ3d[matched_true], False: gt.poses3d[matched_true]}
    sequences = [s for s in gt.protocol['sequences'] if s in set(gt.sequence.tolist())]
    matched_sequence = gt.sequence[matched_true]
    n_annotated = {s: int(np.count_nonzero(gt.sequence == s)) for s in sequences}

    grid = {}  # (universal, rescale, root_relative) -> rows with the average appended
    for universal in (True, False):
        for rescale in (True, False):
            for root_relative in (True, False):
                errors = variant_errors(pred, targets[universal], rescale, root_relative)
                grid[universal, rescale, root_relative] = _with_average(
                    per_sequence(errors, matched_sequence, sequences, n_annotated))
    chosen = (gt.protocol['universal'], gt.protocol['rescale_bones'],
              gt.protocol['root_relative'])
    rows = grid[chosen]
    recall_rows = [100.0 * np.count_nonzero(matched_sequence == s) / n_annotated[s]
                   for s in sequences]
    total_annotated = sum(n_annotated.values())
    recall = 100.0 * len(matched_true) / max(total_annotated, 1)

    describe = ('root-relative' if chosen[2] else 'absolute') + ', ' + (
        'univ_annot3' if chosen[0] else 'annot3') + (', bones rescaled' if chosen[1] else '')
    main = Table(f'MuPoTS-3D ({describe}; PCK@150mm %, AUC %, MPJPE mm; per sequence)',
                 sequences + ['Avg'], rows)
    released = {  # what eval_mupots.py prints, in its order (its Table 11, then Table 8)
        'PCK all, rel, univ, rescaled': grid[True, True, True]['PCK all'],
        'PCK matched, rel, univ, rescaled': grid[True, True, True]['PCK matched'],
        'PCK all, abs, univ, rescaled': grid[True, True, False]['PCK all'],
        'PCK matched, abs, univ, rescaled': grid[True, True, False]['PCK matched'],
        'MPJPE-14 matched, abs, annot3': grid[False, False, False]['MPJPE-14 matched'],
        'MPJPE-16 matched, abs, annot3': grid[False, False, False]['MPJPE-16 matched'],
        'MPJPE-14 matched, rel, annot3': grid[False, False, True]['MPJPE-14 matched'],
        'MPJPE-16 matched, rel, annot3': grid[False, False, True]['MPJPE-16 matched'],
        'PCK matched, abs, annot3': grid[False, False, False]['PCK matched'],
        'PCK matched, rel, annot3': grid[False, False, True]['PCK matched'],
        'recall (Avg: pooled)': recall_rows + [recall],
    }
    released_table = Table('MuPoTS-3D as the released MeTRAbs eval_mupots.py prints it '
                           '(rel = root-relative, abs = absolute; annot3 = no rescaling)',
                           sequences + ['Avg'], released)
    wacv23 = wacv23_table('MuPoTS-3D (matched people, annot3)', pred, targets[False],
                          ROOT_INDEX)

    summary = {name.lower().replace(' ', '_').replace('-', ''): values[-1]
               for name, values in rows.items()}
    summary['recall'] = recall
    for key, variant_rows in grid.items():
        suffix = _variant_key(*key)
        summary.update({f'{name.lower().replace(" ", "_").replace("-", "")}_{suffix}': v[-1]
                        for name, v in variant_rows.items()})
    provenance, provenance_counts = prediction_provenance(predictions)
    counts = dict(n_annotated_people=total_annotated, n_matched_people=int(len(matched_true)),
                  n_predictions=int(len(predictions)),
                  n_unmatched_predictions=int(len(predictions) - len(matched_true)),
                  n_missing_gt_joints=int(np.count_nonzero(
                      ~metrics.valid_mask(targets[chosen[0]]))), **provenance_counts)
    protocol = dict(**gt.protocol, joints=[gt.joint_names[i] for i in EVAL_JOINTS],
                    root=gt.joint_names[ROOT_INDEX], match_threshold_px=MATCH_THRESHOLD_PX,
                    pck_threshold_mm=metrics.PCK_THRESHOLD_MM,
                    rescale_bones_order=[[gt.joint_names[c], gt.joint_names[p]]
                                         for c, p in RESCALE_BONES],
                    inference=predictions.inference)
    conventions = {
        'target': ('univ_annot3 (official MATLAB script, MeTRAbs Table 11 rows)' if chosen[0]
                   else 'annot3, true body size (MeTRAbs\'s MPJPE rows); --universal: '
                        'univ_annot3'),
        'bones': ('predicted bones rescaled to the GT lengths, official parent table (head top '
                  'and head from the neck)' if chosen[1] else 'not rescaled'),
        'PCK': ('root-relative (official is_relative = 1)' if chosen[2] else
                'absolute, camera frame (official is_relative = 0; MeTRAbs "absolute PCK")') +
               '; 14 joints, < 150 mm; AUC 0:5:150 mm',
        'averaging': 'per sequence, then the mean of the 20 sequences (official, MeTRAbs)',
        'all vs matched': 'all = unmatched annotated people count as wrong on every joint',
        **provenance}
    if predictions.box_source == 'gt':
        conventions['all vs matched'] += ('; NOTE: ground-truth boxes give every annotated '
                                          'person a box, so "all" here measures no detection')
    return BenchmarkResult('mupots', summary, [main, released_table, wacv23], counts, protocol,
                           conventions=conventions)


BOX_MARGIN = 0.1  # of the annotated joints' extent per side: 17 joints bound the body loosely
INTRINSICS_FILE = 'camera_intrinsics.json'


def sequence_camera(root: pathlib.Path, sequence: str, annot3: np.ndarray, annot2: np.ndarray):
    """(Camera, description): the 3x3 intrinsics of `sequence` in <root>/camera_intrinsics.json
    (the released MeTRAbs predict_mupots.py's file) if it exists, else pinhole intrinsics fitted
    to annot2 [n, 17, 2] px vs annot3 [n, 17, 3] mm. No distortion, world up = -y (camera)."""
    import json

    from posepile.camera import Camera, camera_from_projection
    path = root / INTRINSICS_FILE
    if path.is_file():
        table = json.loads(path.read_text())
        if sequence not in table:
            raise KeyError(f'{path}: no intrinsics for {sequence!r}')
        try:
            camera = Camera(intrinsic_matrix=np.asarray(table[sequence], np.float64),
                            world_up=(0, -1, 0))
        except ValueError as e:
            raise ValueError(f'{path}: field {sequence!r}: {e}') from None
        residual = np.linalg.norm(camera.camera_to_image(annot3) - annot2, axis=-1)
        return camera, (f'{INTRINSICS_FILE}; median reprojection error vs annot2 '
                        f'{np.nanmedian(residual):.2f} px')
    camera = camera_from_projection(annot3, annot2, f'{root / sequence / "annot.mat"} annot2 '
                                                    f'vs annot3')
    return camera, 'pinhole intrinsics fitted to annot2 vs annot3 (no camera_intrinsics.json)'


def model_inputs(gt: MuPoTSGT, boxes: str = 'gt') -> Iterator:
    """One `eval.model_predictions.ModelInput` per frame with annotated people (boxes='gt') or
    per image of the sequence (boxes='detector', as the released predictions).

    image: the JPEG path; boxes: [P, 4] x, y, w, h px around each annotated person's annot2,
    person = annotation column (boxes='gt'), or None: the model's detector (DETECTOR); camera:
    `sequence_camera`, identity extrinsics (camera-frame predictions, mm). Keys: sequence
    'TS<i>', frame (0-based annotation row). The camera used per sequence is logged in
    gt.protocol['cameras'].
    """
    from eval.model_predictions import camera_frame_input
    from posepile.datasets import common

    root = pathlib.Path(gt.source)
    sequences, first_rows = np.unique(gt.sequence, return_index=True)
    descriptions = gt.protocol.setdefault('cameras', {})
    for sequence in sequences[np.argsort(first_rows)]:  # in GT order
        rows = np.flatnonzero(gt.sequence == sequence)
        camera, descriptions[str(sequence)] = sequence_camera(
            root, str(sequence), gt.poses3d[rows], gt.poses2d[rows])
        if boxes == 'detector':  # every image of the sequence, annotated or not
            for frame in range(gt.n_frames[str(sequence)]):
                image = common.safe_path(root, f'{sequence}/img_{frame:06d}.jpg')
                yield camera_frame_input(str(image), None, camera, str(sequence), frame,
                                         where=str(image))
            continue
        rows = rows[np.lexsort((gt.person[rows], gt.frame[rows]))]
        frames, starts = np.unique(gt.frame[rows], return_index=True)
        imshape = None
        for frame, frame_rows in zip(frames, np.split(rows, starts[1:])):
            image = common.safe_path(root, f'{sequence}/img_{int(frame):06d}.jpg')
            imshape = imshape or common.image_shape(image, f'frame {frame} of {sequence}')
            frame_boxes = np.stack([common.box_around_points(p, BOX_MARGIN, imshape=imshape)
                                    for p in gt.poses2d[frame_rows]])
            yield camera_frame_input(
                str(image), frame_boxes, camera, str(sequence), int(frame),
                person=gt.person[frame_rows], where=str(image))
