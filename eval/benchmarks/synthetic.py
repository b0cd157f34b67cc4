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

Metrics per format and over all formats (joint-weighted), and the mean-pose baseline:
eval/benchmarks/formats.py (MPJPE after subtracting each pose's mean over the format's joints,
PA-MPJPE, MPJPE-abs in the camera frame, PCK@150 mm and AUC).
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

from eval.benchmarks import BenchmarkResult, Table, match_rows
from eval.benchmarks.formats import evaluate_formats
from eval.predictions import Predictions
from posepile import joints as joint_registry
from posepile.camera import Camera

SKELETON = 'synmocap'  # the contract asks for one; the ground truth holds every format
DESCRIPTION = ('synthetic world test split (posepile.synthetic), all 6 formats, camera frame, '
               'mean-aligned MPJPE / PA-MPJPE / abs. MPJPE / PCK / AUC + mean-pose baseline')


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
    index, n_unused = match_rows(gt, predictions)
    result = evaluate_formats('Synthetic test split', gt.coords, gt.joint_names, gt.dataset,
                              predictions, index, n_unused)
    missing = result.protocol['missing_formats']
    if not missing:
        consistency = consistency_results(result.pred, gt, result.baseline)
        result.tables.append(_consistency_table(consistency))
        result.summary.update(
            consistency_mm=consistency['model'].mean_mm,
            consistency_depth_mm=consistency['model'].depth_mm,
            consistency_plane_mm=consistency['model'].plane_mm,
            baseline_consistency_mm=consistency['mean-pose baseline'].mean_mm,
            gt_consistency_floor_mm=consistency['ground truth (floor)'].mean_mm)
    protocol = dict(**gt.protocol, **result.protocol,
                    consistency='reported' if not missing else
                    f'skipped: formats {missing} not predicted')
    return BenchmarkResult('synthetic', result.summary, result.tables, result.counts, protocol,
                           result.per_joint, result.conventions)


def model_inputs(gt: SyntheticGT) -> Iterator:
    """One `eval.model_predictions.ModelInput` per test frame: the JPEG, the GT box, the frame's
    camera (intrinsics, 5 OpenCV distortion coefficients) and identity extrinsics, so the
    model's poses come out in the camera frame the ground truth uses."""
    from eval.model_predictions import camera_frame_input

    for i in range(len(gt)):
        yield camera_frame_input(
            gt.image_paths[i], gt.boxes[i:i + 1], gt.cameras[i], str(gt.sequence[i]),
            int(gt.frame[i]), where=f'{gt.source}: test frame {gt.sequence[i]} #{gt.frame[i]}')
