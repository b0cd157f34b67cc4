"""Per-format evaluation, for ground truth labelled in several skeleton formats that share no
root joint (the synthetic world's six formats; a built test split's formats, yours included).

Ground truth and predictions are dicts {format: [N, J_f, 3] mm, camera frame}, NaN where a pose
does not label a joint (rows of poses that do not label a format at all are all NaN and drop
out of every mean). Metrics per format, and over all formats joint-weighted:
    MPJPE      after subtracting each pose's mean over the format's labelled joints from
               prediction and truth (eval.metrics 'mean' alignment): the one alignment that
               treats every format alike (syncoco has no pelvis, a marker set no joints at all)
    PA-MPJPE   after a similarity Procrustes fit per pose and format
    MPJPE-abs  no alignment, camera frame
    PCK, AUC   3DPCK@150 mm and AUC (0..150 mm) of the mean-aligned errors, percent
The MEAN-POSE BASELINE predicts for every pose of a format the same pose: the average of the
mean-centred ground truth, placed at the average ground-truth centroid. It uses the test labels,
so it is a generous baseline; a model that learned anything about the person must beat it.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from eval import metrics
from eval.benchmarks import Table, breakdown_table, per_joint_dict, prediction_provenance
from eval.predictions import Predictions

METRIC_COLUMNS = ('MPJPE', 'PA-MPJPE', 'MPJPE-abs', 'PCK', 'AUC')
SUMMARY_KEYS = dict(zip(METRIC_COLUMNS, ('mpjpe', 'pa_mpjpe', 'mpjpe_abs', 'pck', 'auc')))
ALL_FORMATS_LABEL = 'All formats'


def error_sets(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per-entry arrays [N, J] (mm, or percent for PCK/AUC) of one format, keyed by
    METRIC_COLUMNS; NaN where the ground truth is missing."""
    centred = metrics.joint_errors(pred, gt, 'mean')
    return {
        'MPJPE': centred,
        'PA-MPJPE': metrics.joint_errors(pred, gt, 'procrustes'),
        'MPJPE-abs': metrics.joint_errors(pred, gt, 'none'),
        'PCK': 100.0 * metrics.pck_hits(centred),
        'AUC': 100.0 * metrics.auc_scores(centred),
    }


def mean_pose_baseline(coords: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """format -> [N, J_f, 3] mm: the same pose for every row, the mean of the mean-centred ground
    truth (over the rows labelling each joint) at the mean ground-truth centroid. A joint no
    row labels is 0 (nothing is evaluated there)."""
    result = {}
    for fmt, gt in coords.items():
        gt = np.asarray(gt, np.float64)
        valid = metrics.valid_mask(gt)
        centroid = metrics.joint_mean(gt, valid)  # [N, 1, 3]
        centred = gt - centroid
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)  # joints / formats nobody labels
            pose = np.nanmean(np.where(valid[..., None], centred, np.nan), axis=0)
            centre = np.nanmean(np.where(valid.any(axis=1)[:, None, None], centroid, np.nan),
                                axis=0)
        pose = np.nan_to_num(pose + np.nan_to_num(centre))
        result[fmt] = np.broadcast_to(pose, gt.shape).copy()
    return result


def per_format_errors(pred: dict[str, np.ndarray], coords: dict[str, np.ndarray],
                      formats) -> dict[str, dict[str, np.ndarray]]:
    """{format: error_sets(pred[format], coords[format])} for the given formats."""
    return {f: error_sets(pred[f], coords[f]) for f in formats}


def joined(errors: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """metric -> [N, sum J_f]: all formats side by side (joint-weighted means over formats)."""
    return {m: np.concatenate([e[m] for e in errors.values()], axis=1) for m in METRIC_COLUMNS}


def format_table(title: str, errors: dict[str, dict[str, np.ndarray]]) -> Table:
    """Rows = formats + 'All formats', columns = METRIC_COLUMNS."""
    rows = {f: [metrics.nan_mean(e[m]) for m in METRIC_COLUMNS] for f, e in errors.items()}
    together = joined(errors)
    rows[ALL_FORMATS_LABEL] = [metrics.nan_mean(together[m]) for m in METRIC_COLUMNS]
    return Table(title, list(METRIC_COLUMNS), rows)


def overall(errors: dict[str, dict[str, np.ndarray]], prefix: str = '') -> dict[str, float]:
    """{'mpjpe', 'pa_mpjpe', 'mpjpe_abs', 'pck', 'auc'} over all formats (with `prefix`)."""
    together = joined(errors)
    return {prefix + SUMMARY_KEYS[m]: metrics.nan_mean(together[m]) for m in METRIC_COLUMNS}


def per_format_summary(errors: dict[str, dict[str, np.ndarray]], prefix: str = ''
                       ) -> dict[str, float]:
    """{'<format>_mpjpe', '<format>_pa_mpjpe', ...}: each format's numbers (with `prefix`)."""
    return {f'{prefix}{fmt}_{SUMMARY_KEYS[m]}': metrics.nan_mean(e[m])
            for fmt, e in errors.items() for m in METRIC_COLUMNS}


def standard_tables(name: str, model_errors, baseline_errors, datasets: np.ndarray,
                    n_poses: int) -> list[Table]:
    """The model's and the baseline's per-format tables and the per-dataset breakdown (all
    evaluated formats, with the baseline's MPJPE beside)."""
    by_dataset = dict(joined(model_errors))
    by_dataset['Baseline MPJPE'] = joined(baseline_errors)['MPJPE']
    return [
        format_table(f'{name}, model, per format ({n_poses} poses; mm, %)', model_errors),
        format_table(f'{name}, mean-pose baseline, per format (mm, %)', baseline_errors),
        breakdown_table(f'{name}, per dataset (all evaluated formats; mm, %)', by_dataset,
                        datasets)]


def present_formats(predictions: Predictions, joint_names: dict[str, tuple[str, ...]]
                    ) -> tuple[list[str], list[str]]:
    """(formats whose union joints the predictions all have, the other formats); KeyError if
    none is present."""
    names = set(predictions.joint_names)
    present = [f for f, wanted in joint_names.items() if all(n in names for n in wanted)]
    missing = [f for f in joint_names if f not in present]
    if not present:
        raise KeyError(f'{predictions.source}: joint_names holds no complete format of the ground '
                       f'truth; expected union names such as {list(joint_names[missing[0]][:3])} '
                       f'for formats {missing}')
    return present, missing


@dataclasses.dataclass
class FormatEvaluation:
    """What evaluate_formats computes: the predictions and the baseline per format ([N, J_f, 3]
    mm), the standard tables, summary, counts, protocol entries, per-joint means and where the
    predictions came from (conventions)."""

    pred: dict[str, np.ndarray]
    baseline: dict[str, np.ndarray]
    tables: list[Table]
    summary: dict[str, float]
    counts: dict[str, int]
    protocol: dict[str, Any]
    per_joint: dict[str, dict[str, float]]
    conventions: dict[str, str]


def evaluate_formats(name: str, coords: dict[str, np.ndarray],
                     joint_names: dict[str, tuple[str, ...]], datasets: np.ndarray,
                     predictions: Predictions, index: np.ndarray, n_unused: int
                     ) -> FormatEvaluation:
    """The model (predictions rows `index`, one per ground-truth row) against `coords` in every
    format the predictions have, and the mean-pose baseline (module docstring)."""
    formats, missing = present_formats(predictions, joint_names)
    pred = {f: predictions.select_joints(list(joint_names[f]))[index] for f in formats}
    baseline = mean_pose_baseline({f: coords[f] for f in formats})
    model_errors = per_format_errors(pred, coords, formats)
    baseline_errors = per_format_errors(baseline, coords, formats)
    n_poses = len(index)
    summary = overall(model_errors)
    summary.update(overall(baseline_errors, prefix='baseline_'))
    summary.update(per_format_summary(model_errors))
    labelled = np.concatenate([metrics.valid_mask(coords[f]) for f in formats], axis=1)
    counts = dict(n_poses=n_poses, n_joint_entries=int(np.count_nonzero(labelled)),
                  n_missing_gt_joints=int(np.count_nonzero(~labelled)),
                  n_unused_predictions=int(n_unused), n_formats_evaluated=len(formats),
                  n_formats_missing=len(missing))
    protocol = dict(evaluated_formats=formats, missing_formats=missing,
                    alignment="MPJPE/PCK/AUC: mean over each format's labelled joints subtracted",
                    pck_threshold_mm=metrics.PCK_THRESHOLD_MM,
                    baseline='mean of the mean-centred GT at the mean GT centroid, per format',
                    inference=predictions.inference)
    per_joint = per_joint_dict(joined(model_errors), [n for f in formats for n in joint_names[f]])
    conventions, provenance_counts = prediction_provenance(predictions)
    counts.update(provenance_counts)
    return FormatEvaluation(
        pred, baseline, standard_tables(name, model_errors, baseline_errors, datasets, n_poses),
        summary, counts, protocol, per_joint, conventions)
