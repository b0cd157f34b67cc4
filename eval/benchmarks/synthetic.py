"""Synthetic-world benchmark: the test split of `python -m posepile.synthetic`, all six formats.

Ground truth: the world under `root` as written by `python -m posepile.synthetic --out DIR`,
read through `posepile.synthetic.ground_truth.load_test_ground_truth` (the one parser of the
layout). Every test frame labels every synthetic format (`format_weights.FORMAT_NAMES`) of the
same person; here the joints are converted to each frame's CAMERA frame (mm, OpenCV axes).

Prediction rows (eval/predictions.py layout) are matched on:
    sequence  '<dataset>/<split>/<sequence>/<camera_id>', e.g. 'synwide/test/seq003/cam1'
              (`sequence_keys`), one video per (dataset, sequence, camera)
    frame     the time index within that video (the frame number of the image file)
    person    0 (each synthetic test image shows one person; the field may be omitted)
`joint_names` must use the union naming '<joint>_<format>' ('lhip_synmocap', ...). Formats whose
joints are not all present are skipped and listed under protocol['missing_formats'] and
counts['n_formats_missing']; at least one format must be present.

Metrics per format and over all formats (joint-weighted):
    MPJPE      after subtracting each pose's mean over the format's joints from prediction and
               truth. The formats have no common root joint (syncoco has no pelvis, synmarker
               only surface markers), so the joint mean is the one alignment that treats every
               format alike.
    PA-MPJPE   after a similarity Procrustes fit per pose and format.
    MPJPE-abs  no alignment, camera frame.
    PCK, AUC   3DPCK@150 mm and AUC (0..150 mm) of the mean-aligned errors, percent.
A MEAN-POSE BASELINE is evaluated alongside: for every frame it predicts the same pose, the
average over the test split of the mean-centred ground truth (camera frame), placed at the
average ground-truth centroid. It uses the test labels, so it is a generous baseline; a model
that learned anything about the person in the image must beat it.
When every format is predicted, the cross-skeleton consistency of `eval.consistency` is reported
too (maps fitted on hidden-world poses), with the same number on the test ground truth as the
floor.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from eval import metrics
from eval.benchmarks import (BenchmarkResult, Table, breakdown_table, match_rows, per_joint_dict,
                             prediction_provenance)
from eval.predictions import Predictions
from posepile import joints as joint_registry
from posepile.camera import Camera

SKELETON = 'synmocap'  # the contract asks for one; the ground truth holds every format
DESCRIPTION = ('synthetic world test split (posepile.synthetic), all 6 formats, camera frame, '
               'mean-aligned MPJPE / PA-MPJPE / abs. MPJPE / PCK / AUC + mean-pose baseline')
METRIC_COLUMNS = ('MPJPE', 'PA-MPJPE', 'MPJPE-abs', 'PCK', 'AUC')
ALL_FORMATS_LABEL = 'All formats'


def synthetic_formats() -> tuple[str, ...]:
    from posepile.synthetic.format_weights import FORMAT_NAMES
    return tuple(FORMAT_NAMES)


@dataclasses.dataclass
class SyntheticGT:
    """The test split's ground truth, N frames, one person each.

    Attributes:
        sequence: [N] str keys '<dataset>/<split>/<sequence>/<camera_id>'; frame: [N] int64;
            person: [N] int64 (all 0: the box index within the image).
        dataset: [N] str synthetic dataset names (the per-dataset breakdown).
        coords: format -> [N, J_f, 3] float64 mm, camera frame of each frame's camera.
        joint_names: format -> the J_f union names '<joint>_<format>'.
        image_paths: [N] str JPEG paths; cameras: N `Camera`s (world frame mm, as written);
        boxes: [N, 4] person boxes x, y, w, h in image px.
        source: the world directory; protocol: settings copied into the report.
    """

    sequence: np.ndarray
    frame: np.ndarray
    person: np.ndarray
    dataset: np.ndarray
    coords: dict[str, np.ndarray]
    joint_names: dict[str, tuple[str, ...]]
    image_paths: np.ndarray
    cameras: list[Camera]
    boxes: np.ndarray
    source: str
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)


def sequence_keys(dataset, sequence, camera_id) -> np.ndarray:
    """[N] keys '<dataset>/<sequence>/<camera_id>' (sequence is '<split>/<name>' here)."""
    return np.char.add(np.char.add(np.char.add(np.asarray(dataset).astype(str), '/'),
                                   np.char.add(np.asarray(sequence).astype(str), '/')),
                       np.asarray(camera_id).astype(str))


def load_ground_truth(root: str | pathlib.Path) -> SyntheticGT:
    """Reads the test split of the world under `root`; joints of all formats in camera frame."""
    from posepile.synthetic.ground_truth import load_test_ground_truth

    root = pathlib.Path(root)
    if not (root / 'world.json').is_file():
        raise FileNotFoundError(f'{root}: no world.json; not a complete synthetic world '
                                f'(write one with python -m posepile.synthetic --out {root})')
    test = load_test_ground_truth(root)
    formats = synthetic_formats()
    sizes = [test.coords[f].shape[1] for f in formats]
    world = np.concatenate([test.coords[f] for f in formats], axis=1).astype(np.float64)
    # One camera per frame: the loop is over frames, each converting all its joints at once.
    camera_frame = np.stack([cam.world_to_camera(points)
                             for cam, points in zip(test.cameras, world)])
    split = np.split(camera_frame, np.cumsum(sizes)[:-1], axis=1)
    return SyntheticGT(
        sequence=sequence_keys(test.dataset, test.sequence, test.camera_id),
        frame=np.asarray(test.frame, np.int64), person=np.zeros(len(test), np.int64),
        dataset=np.asarray(test.dataset).astype(str),
        coords=dict(zip(formats, split)),
        joint_names={f: tuple(joint_registry.union_names(f)) for f in formats},
        image_paths=np.asarray(test.image_paths).astype(str), cameras=list(test.cameras),
        boxes=np.asarray(test.boxes, np.float32), source=str(root),
        protocol=dict(split='test', frame='camera', formats=list(formats)))


def mean_pose_baseline(gt: SyntheticGT) -> dict[str, np.ndarray]:
    """format -> [N, J_f, 3] mm camera frame: the same pose for every frame, the test split's
    mean of the mean-centred ground truth, translated to the mean ground-truth centroid."""
    result = {}
    for fmt, coords in gt.coords.items():
        centroid = coords.mean(axis=1, keepdims=True)
        pose = (coords - centroid).mean(axis=0) + centroid.mean(axis=0)
        result[fmt] = np.broadcast_to(pose, coords.shape).copy()
    return result


def error_sets(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per-entry arrays [N, J] (mm, or percent for PCK/AUC) of one format, keyed by
    METRIC_COLUMNS. Mean alignment subtracts each pose's mean over this format's joints."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    centred = metrics.joint_errors(pred - pred.mean(axis=1, keepdims=True),
                                   gt - gt.mean(axis=1, keepdims=True), 'none')
    return {
        'MPJPE': centred,
        'PA-MPJPE': metrics.joint_errors(pred, gt, 'procrustes'),
        'MPJPE-abs': metrics.joint_errors(pred, gt, 'none'),
        'PCK': 100.0 * metrics.pck_hits(centred),
        'AUC': 100.0 * metrics.auc_scores(centred),
    }


def _present_formats(predictions: Predictions, gt: SyntheticGT) -> tuple[list[str], list[str]]:
    names = set(predictions.joint_names)
    present = [f for f in gt.coords if all(n in names for n in gt.joint_names[f])]
    missing = [f for f in gt.coords if f not in present]
    if not present:
        raise KeyError(f'{predictions.source}: joint_names holds no complete synthetic format; '
                       f'expected union names such as {list(gt.joint_names[missing[0]][:3])} '
                       f'for formats {missing}')
    return present, missing


def _per_format_errors(pred: dict[str, np.ndarray], gt: SyntheticGT, formats: list[str]
                       ) -> dict[str, dict[str, np.ndarray]]:
    return {f: error_sets(pred[f], gt.coords[f]) for f in formats}


def _joined(errors: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """metric -> [N, sum J_f]: all formats side by side (joint-weighted means over formats)."""
    return {m: np.concatenate([e[m] for e in errors.values()], axis=1) for m in METRIC_COLUMNS}


def _format_table(title: str, errors: dict[str, dict[str, np.ndarray]]) -> Table:
    rows = {f: [metrics.nan_mean(e[m]) for m in METRIC_COLUMNS] for f, e in errors.items()}
    joined = _joined(errors)
    rows[ALL_FORMATS_LABEL] = [metrics.nan_mean(joined[m]) for m in METRIC_COLUMNS]
    return Table(title, list(METRIC_COLUMNS), rows)


def _overall(errors: dict[str, dict[str, np.ndarray]], prefix: str = '') -> dict[str, float]:
    joined = _joined(errors)
    keys = dict(zip(METRIC_COLUMNS, ('mpjpe', 'pa_mpjpe', 'mpjpe_abs', 'pck', 'auc')))
    return {prefix + keys[m]: metrics.nan_mean(joined[m]) for m in METRIC_COLUMNS}


@functools.lru_cache(maxsize=4)
def _consistency_maps(formats: tuple[str, ...]):
    from eval import consistency
    return consistency.fit_implied_maps(consistency.hidden_world_poses(seed=0, formats=formats))


def consistency_results(pred: dict[str, np.ndarray], gt: SyntheticGT,
                        baseline: dict[str, np.ndarray]) -> dict[str, Any]:
    """{'model', 'mean-pose baseline', 'ground truth (floor)'} -> eval.consistency results
    (mm, camera frame), with the maps fitted once per process on hidden-world poses."""
    from eval import consistency

    formats = tuple(gt.coords)
    maps = _consistency_maps(formats)
    return {'model': consistency.consistency({f: pred[f] for f in formats}, maps),
            'mean-pose baseline': consistency.consistency(baseline, maps),
            'ground truth (floor)': consistency.consistency(gt.coords, maps)}


def _consistency_table(results: dict[str, Any]) -> Table:
    formats = list(next(iter(results.values())).per_format)
    rows = {name: [r.mean_mm, r.depth_mm, r.plane_mm] +
            [r.per_format[f]['mean_mm'] for f in formats] for name, r in results.items()}
    return Table('Cross-skeleton consistency (mm; eval.consistency, hidden-world maps)',
                 ['mean', 'depth', 'image plane'] + formats, rows)


def evaluate(gt: SyntheticGT, predictions: Predictions) -> BenchmarkResult:
    """Per-format and per-dataset tables, the mean-pose baseline, consistency (module doc)."""
    formats, missing = _present_formats(predictions, gt)
    index, n_unused = match_rows(gt, predictions)
    pred = {f: predictions.select_joints(list(gt.joint_names[f]))[index] for f in formats}
    baseline = mean_pose_baseline(gt)
    model_errors = _per_format_errors(pred, gt, formats)
    baseline_errors = _per_format_errors(baseline, gt, formats)

    n_test = len(gt)
    tables = [
        _format_table(f'Synthetic test split, model, per format ({n_test} frames; mm, %)',
                      model_errors),
        _format_table('Synthetic test split, mean-pose baseline, per format (mm, %)',
                      baseline_errors)]
    joined_model = _joined(model_errors)
    by_dataset = {m: joined_model[m] for m in METRIC_COLUMNS}
    by_dataset['Baseline MPJPE'] = _joined(baseline_errors)['MPJPE']
    tables.append(breakdown_table('Synthetic test split, per dataset (all evaluated formats; '
                                  'mm, %)', by_dataset, gt.dataset))

    summary = _overall(model_errors)
    summary.update(_overall(baseline_errors, prefix='baseline_'))
    if not missing:
        results = consistency_results(pred, gt, baseline)
        tables.append(_consistency_table(results))
        summary.update(consistency_mm=results['model'].mean_mm,
                       consistency_depth_mm=results['model'].depth_mm,
                       consistency_plane_mm=results['model'].plane_mm,
                       baseline_consistency_mm=results['mean-pose baseline'].mean_mm,
                       gt_consistency_floor_mm=results['ground truth (floor)'].mean_mm)

    labelled = np.concatenate([metrics.valid_mask(gt.coords[f]) for f in formats], axis=1)
    counts = dict(n_poses=n_test, n_joint_entries=int(np.count_nonzero(labelled)),
                  n_missing_gt_joints=int(np.count_nonzero(~labelled)),
                  n_unused_predictions=int(n_unused), n_formats_evaluated=len(formats),
                  n_formats_missing=len(missing))
    protocol = dict(**gt.protocol, evaluated_formats=formats, missing_formats=missing,
                    alignment='MPJPE/PCK/AUC: mean over each format\'s joints subtracted',
                    pck_threshold_mm=metrics.PCK_THRESHOLD_MM,
                    baseline='test-split mean of mean-centred GT at the mean GT centroid',
                    consistency='reported' if not missing else
                    f'skipped: formats {missing} not predicted')
    per_joint = per_joint_dict(joined_model,
                               [n for f in formats for n in gt.joint_names[f]])
    conventions, provenance_counts = prediction_provenance(predictions)
    counts.update(provenance_counts)
    protocol['inference'] = predictions.inference
    return BenchmarkResult('synthetic', summary, tables, counts, protocol, per_joint,
                           conventions)


def model_inputs(gt: SyntheticGT) -> Iterator:
    """One `eval.model_predictions.ModelInput` per test frame: the JPEG, the GT box, the frame's
    camera (intrinsics, 5 OpenCV distortion coefficients) and identity extrinsics, so the
    model's poses come out in the camera frame the ground truth uses."""
    from eval.model_predictions import camera_frame_input

    for i in range(len(gt)):
        yield camera_frame_input(
            gt.image_paths[i], gt.boxes[i:i + 1], gt.cameras[i], str(gt.sequence[i]),
            int(gt.frame[i]), where=f'{gt.source}: test frame {gt.sequence[i]} #{gt.frame[i]}')
