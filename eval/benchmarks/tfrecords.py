"""Any built split as a benchmark: the TFRecords of `posepile.build` (any dataset, your own in the
`custom` layout included), in every skeleton format its records label in full.

    python -m eval.run --benchmark=tfrecords --root=BUILD_DIR --model=SAVEDMODEL --out=report.json
        [--split=test|validation|train]

Ground truth: `root` is a build directory (`posepile.build --out`: manifest.json + shards) or a
directory of them (`posepile.build_all --out`, one per dataset); every record of the split
(default 'test') of every dataset in them is read, with posepile.mix.read_build (which checks
the manifest and registers the user skeletons it carries) and posepile.tfrecord_schema. A record
is one person in one stored crop: the crop (JPEG), its camera (the crop camera, pinhole), the
person box (crop px) and the joints (world frame, mm), here converted to that camera's frame.
Records without 3D joints (2D-only datasets) are counted and skipped.

Formats: the registered skeletons whose union joints a record holds in full
(posepile.joints.skeletons_covered), evaluated in every pose that labels at least
MIN_LABELLED_JOINTS of them (fewer leave the mean and Procrustes alignments nearly nothing to
measure; such poses are counted). Only the formats the predictions have are evaluated (a model
predicts those of its training mix); the others are listed as missing. Metrics per format, over
all formats, per dataset, and the mean-pose baseline: eval/benchmarks/formats.py.

Prediction rows (eval/predictions.py layout) are matched on the records' meta fields:
    sequence  '<dataset>/<sequence>/<camera_id>'    frame  the record's frame    person  its person
with poses in the crop camera's frame (mm). `--model` runs estimate_poses on each crop with the
record's box, the crop camera's intrinsics and identity extrinsics, with the model API's
inference defaults (5 augmentations, antialias 1), as the synthetic benchmark.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

from eval.benchmarks import BenchmarkResult, match_rows
from eval.benchmarks.formats import evaluate_formats
from eval.predictions import Predictions

# The contract asks for one skeleton; the formats come from the records.
SKELETON = None
DESCRIPTION = ('any split built by posepile.build (TFRecords: any dataset, your own included), '
               'in every format its records label: MPJPE / PA-MPJPE / abs. MPJPE / PCK / AUC per '
               'format and per dataset + mean-pose baseline')
# eval.run imports TensorFlow (quietly, posepile.cli) before reading: the records need it.
READS_TFRECORDS = True
MIN_LABELLED_JOINTS = 3
SPLITS = ('train', 'validation', 'test')
MANIFEST_NAME = 'manifest.json'


@dataclasses.dataclass
class TFRecordGT:
    """The records of one split, N poses.

    Attributes:
        sequence: [N] str '<dataset>/<sequence>/<camera_id>'; frame, person: [N] int64.
        dataset: [N] str dataset names (the per-dataset breakdown).
        coords: format -> [N, J_f, 3] float64 mm, crop camera frame; NaN where a pose does not
            label a joint (all NaN: the pose does not label the format, or too few of it).
        joint_names: format -> its J_f union names.
        images: N lazy crops (ShardImage); cameras: N crop cameras (posepile.camera.Camera,
            world frame mm); boxes: [N, 4] person boxes x, y, w, h in crop px.
        source: what was read; protocol, counts: settings and counts for the report.
    """

    sequence: np.ndarray
    frame: np.ndarray
    person: np.ndarray
    dataset: np.ndarray
    coords: dict[str, np.ndarray]
    joint_names: dict[str, tuple[str, ...]]
    images: list
    cameras: list
    boxes: np.ndarray
    source: str
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)


class ShardImage:
    """Picklable lazy crop: record `index` of shard `path`, decoded to [S, S, 3] uint8 RGB."""

    def __init__(self, path: str, index: int):
        self.path, self.index = path, index

    def __call__(self) -> np.ndarray:
        from posepile.cropping import decode_jpeg
        return decode_jpeg(_shard_jpegs(self.path)[self.index],
                           f'{self.path}: record {self.index}: feature image/jpeg')


@functools.lru_cache(maxsize=1)
def _shard_jpegs(path: str) -> tuple[bytes, ...]:
    """The crops (JPEG bytes) of one shard. Model inputs come in shard order, so one shard at a
    time is read once and held: memory is one shard's JPEGs, not the split's."""
    from posepile.shards import read_shards
    from posepile.tfrecord_schema import decode_example
    return tuple(decode_example(record, decode_image=False, source=f'{path}: record {i}')[
        'image_jpeg'] for i, record in enumerate(read_shards([path])))


def build_directories(root: pathlib.Path) -> list[pathlib.Path]:
    """`root` if it holds a manifest.json, else its subdirectories that do (sorted)."""
    if (root / MANIFEST_NAME).is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f'{root}: no such directory (expected the output of '
                                f'python -m posepile.build or posepile.build_all)')
    found = sorted(p.parent for p in root.glob(f'*/{MANIFEST_NAME}'))
    if not found:
        raise FileNotFoundError(f'{root}: no {MANIFEST_NAME} in it or in its subdirectories '
                                f'(expected the output of python -m posepile.build or '
                                f'posepile.build_all)')
    return found


def _split_shards(root: pathlib.Path, split: str) -> list[str]:
    from posepile.mix import read_build
    paths = []
    held = set()
    for directory in build_directories(root):
        build = read_build(directory, 'all')
        held.update(f'{d}/{s}' for d, s in build.shards)
        for (_, shard_split), shard_paths in sorted(build.shards.items()):
            if shard_split == split:
                paths.extend(shard_paths)
    if not paths:
        raise ValueError(f'{root}: the build holds no {split!r} shards (it holds '
                         f'{sorted(held)}); posepile.build puts the sequences a converter '
                         f'assigns to {split!r} there (custom layout: dataset.json "splits")')
    return paths


def load_ground_truth(root: str | pathlib.Path, split: str = 'test') -> TFRecordGT:
    """Reads every record of `split` under `root` (module docstring)."""
    from posepile import joints
    from posepile.shards import read_shards
    from posepile.tfrecord_schema import camera_from_parsed, decode_example

    root = pathlib.Path(root)
    covered: dict[tuple[str, ...], tuple[str, ...]] = {}  # per joint set (registry can change)

    def formats_of(names: tuple[str, ...]) -> tuple[str, ...]:
        if names not in covered:
            covered[names] = tuple(joints.skeletons_covered(names))
        return covered[names]

    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    rows, n_2d_only = [], 0
    for path in _split_shards(root, split):
        for i, record in enumerate(tqdm(read_shards([path]), desc=f'read {pathlib.Path(path).name}',
                                        unit='rec', leave=False)):
            parsed = decode_example(record, decode_image=False, source=f'{path}: record {i}')
            if parsed['is_2d_only'] or not parsed['joint_valid'].any():
                n_2d_only += 1
                continue
            camera = camera_from_parsed(parsed)
            rows.append(dict(
                names=tuple(parsed['joint_names']), image=ShardImage(path, i), camera=camera,
                coords=camera.world_to_camera(parsed['world_coords'].astype(np.float64)),
                box=parsed['box'], dataset=parsed['dataset'],
                key=f'{parsed["dataset"]}/{parsed["sequence"]}/{parsed["camera_id"]}',
                frame=parsed['frame'], person=parsed['person']))
    if not rows:
        raise ValueError(f'{root}: the {split!r} split holds no record with 3D joints '
                         f'({n_2d_only} 2D-only records)')
    formats = list(dict.fromkeys(f for row in rows for f in formats_of(row['names'])))
    if not formats:
        raise ValueError(f'{root}: no registered skeleton is labelled in full by the records '
                         f'(e.g. {list(rows[0]["names"][:5])})')
    joint_names = {f: tuple(joints.union_names(f)) for f in formats}
    coords = {f: np.full((len(rows), len(names), 3), np.nan) for f, names in joint_names.items()}
    too_few = dict.fromkeys(formats, 0)
    for n, row in enumerate(rows):
        position = {name: j for j, name in enumerate(row['names'])}
        for fmt in formats_of(row['names']):
            values = row['coords'][[position[name] for name in joint_names[fmt]]]
            if np.count_nonzero(np.all(np.isfinite(values), axis=1)) < MIN_LABELLED_JOINTS:
                too_few[fmt] += 1
                continue
            coords[fmt][n] = values
    return TFRecordGT(
        sequence=np.array([r['key'] for r in rows]), frame=np.array([r['frame'] for r in rows],
                                                                     np.int64),
        person=np.array([r['person'] for r in rows], np.int64),
        dataset=np.array([r['dataset'] for r in rows]), coords=coords, joint_names=joint_names,
        images=[r['image'] for r in rows], cameras=[r['camera'] for r in rows],
        boxes=np.array([r['box'] for r in rows], np.float32), source=str(root),
        protocol=dict(split=split, frame='crop camera', formats=formats,
                      min_labelled_joints=MIN_LABELLED_JOINTS),
        counts=dict(n_2d_only_records_skipped=n_2d_only,
                    **{f'n_poses_too_few_{f}_joints': k for f, k in too_few.items() if k}))


def evaluate(gt: TFRecordGT, predictions: Predictions) -> BenchmarkResult:
    """Per-format and per-dataset tables and the mean-pose baseline (module docstring)."""
    index, n_unused = match_rows(gt, predictions)
    title = f'{pathlib.Path(gt.source).name} {gt.protocol["split"]} split'
    result = evaluate_formats(title, gt.coords, gt.joint_names, gt.dataset, predictions, index,
                              n_unused)
    counts = {**result.counts, **gt.counts}
    protocol = {**gt.protocol, **result.protocol}
    return BenchmarkResult('tfrecords', result.summary, result.tables, counts, protocol,
                           result.per_joint, result.conventions)


def model_inputs(gt: TFRecordGT) -> Iterator:
    """One `eval.model_predictions.ModelInput` per record: the crop (lazily, shard by shard),
    the record's box, the crop camera and identity extrinsics (crop-camera-frame poses)."""
    from eval.model_predictions import camera_frame_input

    for i in range(len(gt)):
        yield camera_frame_input(
            gt.images[i], gt.boxes[i:i + 1], gt.cameras[i], str(gt.sequence[i]),
            int(gt.frame[i]), person=gt.person[i:i + 1],
            where=f'{gt.images[i].path}: record {gt.images[i].index}')

