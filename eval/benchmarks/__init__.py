"""Benchmark protocol runners: one module per benchmark, `eval/benchmarks/<name>.py`.

A benchmark module defines:
    SKELETON: str                 posepile.joints skeleton whose joint order the ground truth uses
    DESCRIPTION: str              one line: which files it reads and which protocol it follows
    def load_ground_truth(root: pathlib.Path, **options) -> ground truth object
        Reads the benchmark's annotation files exactly as distributed under `root`.
    def evaluate(gt, predictions: eval.predictions.Predictions) -> BenchmarkResult
and optionally, to support `eval.run --model=SAVEDMODEL`:
    def model_inputs(gt, boxes='gt') -> Iterable[eval.model_predictions.ModelInput]
        One per test image. boxes='gt': person boxes from the ground truth; 'detector' (if the
        module defines DETECTOR): boxes=None, the model's detector finds the people.
    DETECTOR: eval.model_predictions.DetectorSettings   the released predict script's settings
    DEFAULT_BOXES: 'gt' | 'detector'                     what --boxes defaults to
    INFERENCE_DEFAULTS: dict                             InferenceOptions fields to default to
    def assign_detections(gt, detections: Predictions) -> Predictions
        (detector mode, optional) gives detections the GT person ids the protocol joins on.

Adding a benchmark = one module with these three names plus its entry in `BENCHMARKS`.
Single-person benchmarks can return `SinglePersonGT` and use `match_rows` + `evaluate_single`.
"""
from __future__ import annotations

import dataclasses
import importlib
import types
from typing import Any

import numpy as np

from eval import metrics
from eval.predictions import WHOLE_IMAGE_SCORE, Predictions

BENCHMARKS = {
    'h36m': 'eval.benchmarks.h36m',
    'pw3d': 'eval.benchmarks.pw3d',
    'mpi_inf_3dhp': 'eval.benchmarks.mpi_inf_3dhp',
    'mupots': 'eval.benchmarks.mupots',
    'synthetic': 'eval.benchmarks.synthetic',
    'tfrecords': 'eval.benchmarks.tfrecords',
}


def get_benchmark(name: str) -> types.ModuleType:
    """The protocol module of benchmark `name`; raises listing the known names."""
    if name not in BENCHMARKS:
        raise KeyError(f'unknown benchmark {name!r}; known: {", ".join(sorted(BENCHMARKS))}')
    module = importlib.import_module(BENCHMARKS[name])
    for attr in ('SKELETON', 'load_ground_truth', 'evaluate'):
        if not hasattr(module, attr):
            raise TypeError(f'benchmark module {BENCHMARKS[name]} lacks {attr}')
    return module


def skeleton_joint_names(skeleton: str) -> tuple[str, ...]:
    """Plain joint names of a posepile.joints skeleton (the one place joint sets are defined)."""
    from posepile.joints import get_skeleton
    return tuple(get_skeleton(skeleton).names)


def select_protocol_joints(predictions: Predictions, skeleton: str, what: str = 'poses'
                           ) -> np.ndarray:
    """`predictions.poses` (or poses2d) at the skeleton's joints, in the skeleton's order.

    The predictions may name joints in the union naming ('pelv_h36m', what a multi-skeleton model
    outputs) or plainly ('pelv'); the union names are tried first.
    """
    from posepile.joints import union_names
    union = union_names(skeleton)
    if all(n in predictions.joint_names for n in union):
        return predictions.select_joints(union, what)
    plain = skeleton_joint_names(skeleton)
    if all(n in predictions.joint_names for n in plain):
        return predictions.select_joints(plain, what)
    missing = [n for n in union if n not in predictions.joint_names]
    raise KeyError(f'{predictions.source}: joint_names lacks the {skeleton} joints {missing} '
                   f'(plain names {list(plain)} are accepted too)')


@dataclasses.dataclass
class Table:
    """One printed table: `rows` maps a row label to one value per column (None = blank)."""

    title: str
    columns: list[str]
    rows: dict[str, list[float | None]]
    decimals: int = 1


@dataclasses.dataclass
class BenchmarkResult:
    """What `evaluate` returns; eval.report prints the tables and writes all of it as JSON.

    summary: headline numbers (mm or percent). tables: the paper-layout tables. counts: how many
    poses/frames were evaluated, GT joints missing (excluded), predictions unused, people
    unmatched, etc. protocol: the settings that produced the numbers. conventions: one line per
    choice where published numbers differ (which frames, skeleton, boxes, thresholds...), saying
    which convention these numbers follow and who else uses it; printed above the tables.
    """

    benchmark: str
    summary: dict[str, float]
    tables: list[Table]
    counts: dict[str, int]
    protocol: dict[str, Any]
    per_joint: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    conventions: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class SinglePersonGT:
    """Ground truth of a benchmark with one annotated pose per (sequence, frame, person) key.

    poses: [N, J, 3] mm camera frame, NaN for unlabelled joints, J in `joint_names` order (the
        plain names of posepile.joints skeleton `skeleton`).
    groups: per-pose labels for breakdowns, e.g. {'action': [N] str}.
    protocol: the loading options (e.g. frame_step), copied into the report.
    """

    sequence: np.ndarray
    frame: np.ndarray
    person: np.ndarray
    poses: np.ndarray
    joint_names: tuple[str, ...]
    groups: dict[str, np.ndarray]
    source: str
    skeleton: str
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)


def _keys(sequence, frame, person) -> np.ndarray:
    return np.char.add(np.char.add(np.char.add(np.asarray(sequence).astype(str), '|'),
                                   np.asarray(frame).astype(str)),
                       np.char.add('|', np.asarray(person).astype(str)))


def match_rows(gt: SinglePersonGT, predictions: Predictions) -> tuple[np.ndarray, int]:
    """For each GT row, the index of its prediction row (joined on sequence, frame, person).

    Returns (indices [N_gt], number of unused prediction rows). Raises KeyError naming the first
    few GT keys that have no prediction, or duplicated prediction keys.
    """
    person = predictions.person if predictions.person is not None else np.zeros(
        len(predictions), np.int64)
    pred_keys = _keys(predictions.sequence, predictions.frame, person)
    unique, counts = np.unique(pred_keys, return_counts=True)
    if np.any(counts > 1):
        raise KeyError(f'{predictions.source}: duplicated (sequence, frame, person) rows, e.g. '
                       f'{unique[counts > 1][:3].tolist()}')
    gt_keys = _keys(gt.sequence, gt.frame, gt.person)
    order = np.argsort(pred_keys)
    sorted_keys = pred_keys[order]
    if len(sorted_keys):
        position = np.minimum(np.searchsorted(sorted_keys, gt_keys), len(sorted_keys) - 1)
        found = sorted_keys[position] == gt_keys
    else:
        position, found = np.zeros(len(gt_keys), np.int64), np.zeros(len(gt_keys), bool)
    if not np.all(found):
        raise KeyError(f'{predictions.source}: no prediction for {np.count_nonzero(~found)} of '
                       f'{len(gt_keys)} ground-truth poses of {gt.source}, e.g. '
                       f'{gt_keys[~found][:3].tolist()} (sequence|frame|person)')
    return order[position], len(pred_keys) - len(gt_keys)


def aligned_predictions(gt: SinglePersonGT, predictions: Predictions) -> tuple[np.ndarray, int]:
    """Prediction poses in GT row order and GT joint order: ([N_gt, J, 3], unused rows)."""
    index, n_unused = match_rows(gt, predictions)
    return select_protocol_joints(predictions, gt.skeleton)[index], n_unused


def breakdown_table(title: str, errors: dict[str, np.ndarray], groups: np.ndarray,
                    column_order: list[str] | None = None,
                    column_labels: dict[str, str] | None = None) -> Table:
    """Rows = metrics ({row label: [N, J] per-joint values}), columns = groups + 'Avg'.

    'Avg' is the mean over all labelled entries (not the mean of the columns), as tables report.
    """
    present = sorted(set(np.asarray(groups).astype(str).tolist()))
    order = [c for c in (column_order or present) if c in present]
    order += [c for c in present if c not in order]
    rows = {}
    for label, values in errors.items():
        means = metrics.group_means(values, groups)
        rows[label] = [means[c] for c in order] + [metrics.nan_mean(values)]
    labels = column_labels or {}
    return Table(title, [labels.get(c, c) for c in order] + ['Avg'], rows)


def error_sets(pred: np.ndarray, gt: np.ndarray, root_index: int) -> dict[str, np.ndarray]:
    """Per-entry arrays [N, J] for each metric: errors in mm, PCK@150 mm / AUC hits in percent
    (strict <, the 3DHP convention); protocols select their joints from these."""
    root = metrics.joint_errors(pred, gt, 'root', root_index)
    return {
        'MPJPE': root,
        'PA-MPJPE': metrics.joint_errors(pred, gt, 'procrustes', root_index),
        'N-MPJPE': metrics.joint_errors(pred, gt, 'scale', root_index),
        'MPJPE-abs': metrics.joint_errors(pred, gt, 'none', root_index),
        'PCK': 100.0 * metrics.pck_hits(root),
        'AUC': 100.0 * metrics.auc_scores(root),
    }


def per_joint_dict(errors: dict[str, np.ndarray], joint_names) -> dict[str, dict[str, float]]:
    """{metric: {joint name: mean}} for the JSON report."""
    return {metric: dict(zip(joint_names, map(float, metrics.per_joint(values))))
            for metric, values in errors.items()}


BOX_SOURCE_TEXT = {
    'gt': 'ground-truth boxes (eval.run --model --boxes=gt); the released MeTRAbs predictions '
          'used detector boxes',
    'detector': "the model's detector (detect_poses), as the released MeTRAbs predictions",
    None: 'unknown (the predictions file does not say; eval.run --model records it)',
}


def prediction_provenance(predictions: Predictions) -> tuple[dict[str, str], dict[str, int]]:
    """(conventions lines, counts) saying where the predictions came from: box source, the
    inference settings of the model run, and how many rows had to fall back to the whole-image
    box because the detector found nobody."""
    conventions = {'boxes': BOX_SOURCE_TEXT[predictions.box_source]}
    counts = {}
    if predictions.inference:
        flat = {k: v for k, v in predictions.inference.items() if k != 'detector'}
        flat.update({f'detector_{k}': v
                     for k, v in (predictions.inference.get('detector') or {}).items()})
        conventions['inference'] = ', '.join(f'{k}={v}' for k, v in flat.items())
    if predictions.boxes is not None and predictions.box_source == 'detector':
        counts['n_whole_image_fallbacks'] = int(np.count_nonzero(
            predictions.boxes[:, 4] == WHOLE_IMAGE_SCORE))
    return conventions, counts


def wacv23_table(title: str, pred: np.ndarray, gt: np.ndarray, root_index: int,
                 subsets: dict[str, Any] | None = None) -> Table:
    """MeTRAbs's WACV'23 metric set (eval.metrics.wacv23_metric_set) as a table: rows = metrics,
    one column per subset ({label: row selection of pred / gt}; default: all rows)."""
    subsets = subsets or {'All': slice(None)}
    values = {label: metrics.wacv23_metric_set(pred[rows], gt[rows], root_index)
              for label, rows in subsets.items()}
    names = list(next(iter(values.values())))
    return Table(f"{title}: MeTRAbs WACV'23 metric set (released eval_wacv23: all joints, "
                 f"pooled; mm, %)", list(subsets),
                 {name: [values[label][name] for label in subsets] for name in names})
