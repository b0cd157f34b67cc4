"""tf.data input pipeline: posepile TFRecord shards -> MeTRAbs training / evaluation batches.

Output (the batch contract of metrabs.training.step): 'image' float32 [B, P, P, 3] in [0, 1],
'intrinsics' float32 [B, 3, 3] (augmented crop camera K, px), 'coords3d_cam' float32 [B, J, 3]
(that camera's frame, mm, 0 where invalid), 'valid3d' bool [B, J], 'coords2d' float32 [B, J, 2]
(crop px, the projections of the 3D labels, 0 where invalid), 'valid2d' bool [B, J],
'labels2d' float32 [B, K, 2] (crop px of a 2D-only example's labels, 0 where invalid),
'valid_labels2d' bool [B, K], 'dataset_index' int32 [B]. J follows `InputConfig.joint_names`
(union names), K `InputConfig.label_names_2d` (base names, metrabs.data.labels2d);
P = `InputConfig.proc_side`.

Batch composition: each dataset ("part") has its own endless stream and contributes exactly
`examples_per_batch` consecutive rows to every batch: the 3D parts first, then the 2D parts, in
config order. 'dataset_index' is the part's position in that order.

Data order and augmentation are a pure function of the step. Stream position n of a part (the
n-th example it ever delivers; step s uses positions s*c .. s*c+c-1 for a part with c rows) is
found without reading what came before: epoch e = n // N (N = records of the part), the shards
are visited in a seeded permutation per epoch and each shard's records in a seeded permutation
per (epoch, shard); resuming at a step therefore reads at most one shard's head. The
augmentation of position n uses `augmentation.example_rng(seed, stream_id, n)`, with the stream
id a CRC32 of the part's name (adding a part does not change the others' streams).
Shuffling is at shard granularity plus within shards, so shards should mix sequences (the
posepile writer assigns examples to shards by a hash of each example's key).

Multi-worker input: `rows=(a, b)` makes the pipeline produce only rows a..b-1 of every global
batch (worker w of W: a = w*B/W), bit-identical to those rows of the full batch. A part none of
whose rows fall in the range is not opened at all, so each worker reads only the shards of the
datasets it has rows of; a part cut by the range reads its records but decodes and augments only
the positions in range (the rest are dropped as serialized bytes, before the JPEG decode).
"""
from __future__ import annotations

import dataclasses
import glob
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from metrabs.data import augmentation as aug_lib
from metrabs.data import labels2d as labels2d_lib
from metrabs.data import occlusion
from posepile import shards as shards_lib
from posepile import tfrecord_schema
from posepile.camera import Camera
from posepile.cropping import decode_jpeg, decode_rle
from posepile.joints import get_union, register_skeleton, three_d_union_names

_INT64_MAX = np.iinfo(np.int64).max


@dataclasses.dataclass(frozen=True)
class DatasetPart:
    """One dataset's share of every batch.

    Attributes:
        name: dataset name (unique within the config; seeds its stream).
        shard_patterns: glob patterns of its TFRecord shards (matches are sorted).
        examples_per_batch: rows of every batch taken from this dataset (> 0).
        background_prob: probability of background replacement for this dataset, or None for
            AugmentationConfig.background_prob (the released code: 0.2 for datasets whose
            backgrounds are already realistic, SAIL-VOS, AGORA, SPEC, HSPACE; 0.7 otherwise).
    """
    name: str
    shard_patterns: tuple[str, ...]
    examples_per_batch: int
    background_prob: float | None = None

    def __post_init__(self):
        if isinstance(self.shard_patterns, str):
            object.__setattr__(self, 'shard_patterns', (self.shard_patterns,))
        else:
            object.__setattr__(self, 'shard_patterns', tuple(self.shard_patterns))
        if self.examples_per_batch < 1:
            raise ValueError(f'DatasetPart {self.name!r}: examples_per_batch must be >= 1, got '
                             f'{self.examples_per_batch}')
        if self.background_prob is not None and not 0 <= self.background_prob <= 1:
            raise ValueError(f'DatasetPart {self.name!r}: background_prob must be in [0, 1] or '
                             f'None, got {self.background_prob}')

    def shard_paths(self) -> list[str]:
        paths = sorted({p for pattern in self.shard_patterns for p in glob.glob(pattern)})
        if not paths:
            raise FileNotFoundError(f'dataset part {self.name!r}: no shard matches '
                                    f'{list(self.shard_patterns)}')
        return paths


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """What the input pipeline reads and how it augments.

    Attributes:
        joint_names: the model's joints J (union names, in output order).
        parts_3d: datasets with 3D labels (DatasetPart each).
        parts_2d: 2D-only datasets (their rows come after the 3D ones).
        proc_side: output crop side P, px (ModelConfig.proc_side).
        augmentation: AugmentationConfig (ranges and probabilities).
        seed: global seed of data order and augmentation.
        union: the posepile union the records' joint names belong to ('real', 'synthetic',
            'all'); records are densified into it before the model's joints are picked.
        num_parallel_calls: parallel augmentation calls (tf.data.AUTOTUNE = -1).
        prefetch_batches: batches prefetched at the end of the pipeline.
        background_dir: real photos for background replacement: a directory (every image file
            under it) or a .txt list of image paths (relative to the list's directory), e.g.
            the INRIA Holidays photos without people; None: synthetic textures.
        occluder_dir: a Pascal VOC tree (VOCdevkit/VOC2012: Annotations/, JPEGImages/,
            SegmentationObject/) whose segmented objects occlude; None: synthetic shapes.
        skeletons: definitions of user-defined skeleton formats (posepile.joints
            .register_skeleton) whose joints are among joint_names; registered when the
            config is made, so a fresh process knows them (posepile.mix fills this in).
    Joints that only 2D formats label (e.g. '*_mpii') cannot be model joints: 2D-only labels
    supervise the model joints sharing their base name (metrabs.data.labels2d).
    """
    joint_names: tuple[str, ...]
    parts_3d: tuple[DatasetPart, ...]
    parts_2d: tuple[DatasetPart, ...] = ()
    proc_side: int = 256
    augmentation: aug_lib.AugmentationConfig = aug_lib.AugmentationConfig()
    seed: int = 0
    union: str = 'all'
    num_parallel_calls: int = tf.data.AUTOTUNE
    prefetch_batches: int = 2
    background_dir: str | None = None
    occluder_dir: str | None = None
    skeletons: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, 'joint_names', tuple(self.joint_names))
        object.__setattr__(self, 'skeletons', tuple(self.skeletons))
        for definition in self.skeletons:
            register_skeleton(definition)
        object.__setattr__(self, 'parts_3d', tuple(self.parts_3d))
        object.__setattr__(self, 'parts_2d', tuple(self.parts_2d))
        if not self.joint_names:
            raise ValueError('InputConfig.joint_names is empty')
        if not self.parts_3d and not self.parts_2d:
            raise ValueError('InputConfig: no dataset parts (parts_3d and parts_2d are empty)')
        names = [p.name for p in self.parts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f'InputConfig: dataset parts named more than once: {duplicates}')
        if self.proc_side < 1:
            raise ValueError(f'InputConfig.proc_side must be >= 1, got {self.proc_side}')
        unknown = sorted(set(self.joint_names) - set(get_union(self.union).names))
        if unknown:
            raise KeyError(f'InputConfig.joint_names: not in the {self.union!r} union: '
                           f'{unknown[:10]}{" ..." if len(unknown) > 10 else ""}')
        two_d_only = sorted(set(self.joint_names) - set(three_d_union_names(self.union)))
        if two_d_only:
            raise ValueError(
                f'InputConfig.joint_names: {two_d_only[:10]}{" ..." if len(two_d_only) > 10 else ""}'
                f' are labelled only by 2D-only formats, so nothing would supervise them in 3D; '
                f'drop them (posepile.mix does by default): 2D labels supervise the joints that '
                f'share their base name')
        for field in ('background_dir', 'occluder_dir'):
            path = getattr(self, field)
            if path is not None and not os.path.exists(path):
                raise FileNotFoundError(f'InputConfig.{field}: {path} does not exist')

    @property
    def label_names_2d(self) -> tuple[str, ...]:
        """K: the base names 2D-only labels are gathered into (labels2d.label_names_2d)."""
        return labels2d_lib.label_names_2d(self.union, self.joint_names)

    @property
    def parts(self) -> tuple[DatasetPart, ...]:
        """All parts in batch order: 3D, then 2D."""
        return self.parts_3d + self.parts_2d

    @property
    def batch_size(self) -> int:
        return sum(p.examples_per_batch for p in self.parts)

    @classmethod
    def from_mappings(cls, joint_names: Sequence[str], shard_patterns: Mapping[str, Any],
                      counts_3d: Mapping[str, int], counts_2d: Mapping[str, int] = None,
                      **kwargs) -> InputConfig:
        """Builds the parts from {dataset: glob(s)} and {dataset: examples per batch} maps."""
        counts_2d = dict(counts_2d or {})
        missing = sorted((set(counts_3d) | set(counts_2d)) - set(shard_patterns))
        if missing:
            raise KeyError(f'InputConfig.from_mappings: no shard pattern for datasets {missing}')
        both = sorted(set(counts_3d) & set(counts_2d))
        if both:
            raise ValueError(f'InputConfig.from_mappings: datasets in both the 3D and the 2D '
                             f'counts: {both}')

        def parts(counts):
            return tuple(DatasetPart(name, shard_patterns[name], int(n))
                         for name, n in counts.items())
        return cls(tuple(joint_names), parts(counts_3d), parts(counts_2d), **kwargs)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = '<dict>') -> InputConfig:
        """From plain values (e.g. JSON): parts as lists of {name, shard_patterns,
        examples_per_batch}, 'augmentation' as a dict of AugmentationConfig fields. Unknown keys
        raise KeyError naming `source` and the key."""
        d = dict(d)
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise KeyError(f'{source}: unknown InputConfig fields {unknown}')
        for key in ('parts_3d', 'parts_2d'):
            parts = []
            for i, part in enumerate(d.get(key, ())):
                bad = sorted(set(part) - {f.name for f in dataclasses.fields(DatasetPart)})
                if bad:
                    raise KeyError(f'{source}: {key}[{i}] has unknown fields {bad}')
                parts.append(DatasetPart(**part))
            d[key] = tuple(parts)
        if 'augmentation' in d:
            fields = {f.name for f in dataclasses.fields(aug_lib.AugmentationConfig)}
            bad = sorted(set(d['augmentation']) - fields)
            if bad:
                raise KeyError(f'{source}: unknown augmentation fields {bad}')
            values = {k: tuple(v) if isinstance(v, list) else v
                      for k, v in d['augmentation'].items()}
            d['augmentation'] = aug_lib.AugmentationConfig(**values)
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def stream_id(name: str) -> int:
    """Stable id of a dataset part's stream (CRC32 of its name)."""
    return zlib.crc32(name.encode('utf-8'))


def order_key(config: InputConfig, part: DatasetPart) -> int:
    """Seed of a part's data order: mixes the global seed and the part's stream id, so parts
    (and seeds) shuffle differently."""
    state = np.random.SeedSequence([config.seed & 0xFFFFFFFF, stream_id(part.name)])
    return int(state.generate_state(1, np.uint64)[0] >> 1)


# ------------------------------------------------------------------------------ the streams
class _StreamOrder:
    """The seeded visiting order of one part's records (see module docstring)."""

    def __init__(self, paths: Sequence[str], counts: Sequence[int], key: int):
        self.paths = list(paths)
        self.counts = np.asarray(counts, np.int64)
        self.total = int(self.counts.sum())
        if self.total == 0:
            raise ValueError(f'shards {self.paths[:3]}{" ..." if len(self.paths) > 3 else ""} '
                             f'hold no records')
        self.key = tf.constant(key, tf.int64)
        self.n_shards = len(self.paths)

    def shard_order(self, epoch) -> tf.Tensor:
        """[n_shards] int32 shard indices in the order epoch `epoch` visits them."""
        noise = tf.random.stateless_uniform(
            [self.n_shards], seed=tf.stack([self.key, 2 * tf.cast(epoch, tf.int64)]))
        return tf.argsort(noise, stable=True)

    def record_order(self, epoch, shard, count) -> tf.Tensor:
        """[count] int32 permutation of a shard's records in epoch `epoch`."""
        visit = tf.cast(epoch, tf.int64) * self.n_shards + tf.cast(shard, tf.int64)
        noise = tf.random.stateless_uniform([count], seed=tf.stack([self.key, 2 * visit + 1]))
        return tf.argsort(noise, stable=True)

    def locate(self, position: int) -> tuple[int, int]:
        """Stream position -> (shard visit q = epoch * n_shards + rank, records to skip in it)."""
        epoch, offset = divmod(int(position), self.total)
        order = self.shard_order(epoch).numpy()
        ends = np.cumsum(self.counts[order])
        rank = int(np.searchsorted(ends, offset, side='right'))
        skip = offset - (int(ends[rank - 1]) if rank else 0)
        return epoch * self.n_shards + rank, skip


def example_stream(paths: Sequence[str], key: int, start_position: int = 0,
                   counts: Sequence[int] | None = None, with_source: bool = False
                   ) -> tf.data.Dataset:
    """Endless seeded stream of (serialized record, int64 stream position) from `start_position`.

    Every epoch visits every record once. The first element is exactly the one an identical
    stream started at 0 yields at `start_position`.

    Args:
        paths: shard files. key: seed of the order (e.g. combines the global seed and part id).
        counts: records per shard if known; otherwise `shards.record_counts` (from the
            build's manifest, one stat per shard; it also rejects truncated shards, naming
            the file). Each shard is read whole when visited (`shards.read_shard_tensor`), so a
            damaged or truncated shard stops the stream naming the file.
        with_source: also yield a scalar tf.string '<shard path> record <index in the file>'
            (0-based), so errors about a record's content can name where it is stored.
    """
    if counts is None:
        counts = shards_lib.record_counts(paths)
    order = _StreamOrder(paths, counts, key)
    first_visit, skip = order.locate(start_position)
    paths_t = tf.constant(order.paths)
    counts_t = tf.constant(order.counts)
    n_shards = order.n_shards

    def records_of_visit(visit):
        epoch, rank = visit // n_shards, visit % n_shards
        shard_order = order.shard_order(epoch)
        shard = shard_order[rank]
        base = epoch * order.total + tf.reduce_sum(tf.gather(counts_t, shard_order[:rank]))

        def permute(records):
            count = tf.shape(records)[0]
            positions = base + tf.range(tf.cast(count, tf.int64), dtype=tf.int64)
            indices = order.record_order(epoch, shard, count)
            if not with_source:
                return tf.gather(records, indices), positions
            return tf.gather(records, indices), positions, _source_strings(paths_t[shard], indices)

        records = shards_lib.read_shard_tensor(paths_t[shard], counts_t[shard])
        return tf.data.Dataset.from_tensors(records).map(permute).unbatch()

    return (tf.data.Dataset.range(first_visit, _INT64_MAX).flat_map(records_of_visit)
            .skip(skip))


def _source_strings(path: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """Scalar shard path, [N] record indices in that file -> [N] '<path> record <index>'."""
    return tf.strings.join([path, ' record ', tf.strings.as_string(indices)])


def _file_records_with_source(paths: Sequence[str]) -> tf.data.Dataset:
    """The records of `paths` in file order, each as (serialized record, source string).
    Counts from `shards.record_counts`; each shard is read whole (`shards.read_shard_tensor`),
    naming a truncated or damaged one."""
    counts = np.asarray(shards_lib.record_counts(paths), np.int64)

    def with_source(path, count):
        return tf.data.Dataset.from_tensor_slices(
            shards_lib.read_shard_tensor(path, count)).enumerate().map(
            lambda index, record: (record, _source_strings(path, index)))
    return tf.data.Dataset.from_tensor_slices((list(paths), counts)).flat_map(with_source)


# --------------------------------------------------------------------------- one example
_OUTPUT_KEYS = ('image', 'intrinsics', 'coords3d_cam', 'valid3d', 'coords2d', 'valid2d',
                'labels2d', 'valid_labels2d')
_OUTPUT_DTYPES = (tf.float32, tf.float32, tf.float32, tf.bool, tf.float32, tf.bool, tf.float32,
                  tf.bool)


def appearance_sources(config: InputConfig) -> dict[str, Any]:
    """The occluder and background hooks the config's directories ask for (empty: the synthetic
    defaults), as keyword arguments of make_training_dataset."""
    hooks = {}
    if config.occluder_dir is not None:
        hooks['occluder_source'] = occlusion.load_voc_occluders(config.occluder_dir)
    if config.background_dir is not None:
        hooks['background_source'] = occlusion.ImageBackgroundSource(
            occlusion.image_paths_in(config.background_dir),
            zoom_range=config.augmentation.background_zoom_range)
    return hooks


def _make_example_fn(config: InputConfig, training: bool,
                     occluder_source: occlusion.OccluderSource | None,
                     background_source: aug_lib.BackgroundSource | None,
                     background_prob: float | None = None):
    """(parsed record dict without the decoded image, seed [3] int64, source scalar string)
    -> the contract's per-example tensors.

    The JPEG is decoded in numpy (OpenCV, bit-identical to TF's INTEGER_ACCURATE decode) rather
    than in the parse map, so that a corrupt image raises an error naming the shard and record
    (`source`); tf.io.decode_jpeg's own error names neither."""
    union = get_union(config.union)
    model_indices = tf.constant(union.indices_of(config.joint_names))
    mirror_perm = aug_lib.mirror_perm_for(config.joint_names)
    names_2d = config.label_names_2d
    label_indices = labels2d_lib.record_label_indices(union.names, names_2d, config.union)
    mirror_perm_2d = labels2d_lib.mirror_perm(names_2d)
    side = config.proc_side
    n_joints, n_labels = len(config.joint_names), len(names_2d)

    def numpy_augment(image_jpeg, image_side, source, intrinsics, rotation, center, world_up,
                      world_coords, valid3d, coords2d_union, is_2d_only, box, has_mask,
                      mask_counts, mask_size, seed):
        where = f'{source.decode("utf-8", "replace")}: feature image/jpeg'
        image = decode_jpeg(bytes(image_jpeg), where)
        if image.shape != (image_side, image_side, 3):
            raise ValueError(f'{where}: the JPEG is {image.shape[1]}x{image.shape[0]} px, but '
                             f'feature image/side says {int(image_side)}')
        camera = Camera(center, rotation, intrinsics, None, world_up)
        mask = (decode_rle({'size': mask_size.tolist(), 'counts': bytes(mask_counts)}).astype(bool)
                if has_mask else None)
        rng = aug_lib.example_rng(*seed.tolist()) if training else None
        labels = labels2d_lib.gather_labels(coords2d_union, label_indices)
        out = aug_lib.augment(image, camera, world_coords, valid3d, labels, bool(is_2d_only),
                              box, mask, mirror_perm, mirror_perm_2d, rng, config.augmentation,
                              side, training, occluder_source, background_source,
                              background_prob=background_prob)
        return tuple(out[k] for k in _OUTPUT_KEYS)

    def example_fn(parsed, seed, source):
        inputs = [
            parsed['image_jpeg'], parsed['image_side'], source, parsed['intrinsic_matrix'],
            parsed['rot_world_to_cam'], parsed['optical_center'], parsed['world_up'],
            tf.gather(parsed['world_coords'], model_indices),
            tf.gather(parsed['joint_valid'], model_indices),
            parsed['coords2d'],
            parsed['is_2d_only'], parsed['box'], parsed['has_mask'], parsed['mask_counts'],
            parsed['mask_size'], seed]
        outputs = tf.numpy_function(numpy_augment, inputs, _OUTPUT_DTYPES, stateful=False)
        shapes = ([side, side, 3], [3, 3], [n_joints, 3], [n_joints], [n_joints, 2], [n_joints],
                  [n_labels, 2], [n_labels])
        return {k: tf.ensure_shape(v, s) for k, v, s in zip(_OUTPUT_KEYS, outputs, shapes)}

    return example_fn


def _part_training_dataset(config: InputConfig, part: DatasetPart, dataset_index: int,
                           start_step: int, parse_fn, hooks,
                           keep: tuple[int, int] | None = None) -> tf.data.Dataset:
    """Batches of this part's rows of steps start_step, ...; `keep` = (k0, k1) keeps only its
    rows k0..k1-1 of every step (module docstring), else all examples_per_batch rows."""
    example_fn = _make_example_fn(config, True, *hooks, background_prob=part.background_prob)
    sid = stream_id(part.name)
    count = part.examples_per_batch
    stream = example_stream(part.shard_paths(), order_key(config, part),
                            start_position=start_step * count, with_source=True)
    k0, k1 = keep if keep is not None else (0, count)
    if (k0, k1) != (0, count):
        stream = stream.filter(lambda serialized, position, source: tf.logical_and(
            position % count >= k0, position % count < k1))
    seed_prefix = tf.constant([config.seed & 0xFFFFFFFF, sid], tf.int64)

    def load(serialized, position, source):
        example = example_fn(parse_fn(serialized), tf.concat([seed_prefix, [position]], 0),
                             source)
        example['dataset_index'] = tf.constant(dataset_index, tf.int32)
        return example

    return (stream.map(load, num_parallel_calls=config.num_parallel_calls, deterministic=True)
            .batch(k1 - k0, drop_remainder=True))


def rows_of_parts(config: InputConfig, rows: tuple[int, int] | None
                  ) -> list[tuple[int, int] | None]:
    """Per part (batch order): which of its rows (k0, k1) fall in the global batch rows
    `rows` = (a, b), or None if none do. rows=None: every part's full range."""
    if rows is None:
        return [(0, p.examples_per_batch) for p in config.parts]
    first, stop = (int(r) for r in rows)
    if not 0 <= first < stop <= config.batch_size:
        raise ValueError(f'rows={rows}: expected 0 <= a < b <= {config.batch_size} (the batch '
                         f'size)')
    result, offset = [], 0
    for part in config.parts:
        k0 = max(first, offset) - offset
        k1 = min(stop, offset + part.examples_per_batch) - offset
        result.append((k0, k1) if k0 < k1 else None)
        offset += part.examples_per_batch
    return result


def _concat_parts(*batches):
    return {key: tf.concat([b[key] for b in batches], axis=0) for key in batches[0]}


def _union_parse_fn(config: InputConfig):
    # The JPEG stays encoded: _make_example_fn decodes it where the record's source is known.
    return tfrecord_schema.make_parse_fn(union_names=get_union(config.union).names,
                                         decode_image=False)


def make_training_dataset(config: InputConfig, start_step: int = 0,
                          occluder_source: occlusion.OccluderSource | None = None,
                          background_source: aug_lib.BackgroundSource | None = None,
                          rows: tuple[int, int] | None = None) -> tf.data.Dataset:
    """Endless dataset of augmented training batches for steps start_step, start_step + 1, ...

    The batch of step s is the same whether the dataset starts at 0 or at s (module
    docstring). Rows: per part, `examples_per_batch` rows in config order (3D parts, then 2D).
    `rows` = (a, b): only rows a..b-1 of every batch, reading only the parts they come from
    (one worker's share; module docstring).
    Hooks: `occluder_source` (e.g. occlusion.load_voc_occluders) and `background_source`
    (occlusion.ImageBackgroundSource) replace the random-shape occluders / random-texture
    backgrounds; by default they come from the config's occluder_dir / background_dir
    (`appearance_sources`).
    """
    if start_step < 0:
        raise ValueError(f'make_training_dataset: start_step must be >= 0, got {start_step}')
    parse_fn = _union_parse_fn(config)
    defaults = appearance_sources(config)
    hooks = (occluder_source or defaults.get('occluder_source'),
             background_source or defaults.get('background_source'))
    parts = [_part_training_dataset(config, part, index, int(start_step), parse_fn, hooks, keep)
             for index, (part, keep) in enumerate(zip(config.parts, rows_of_parts(config, rows)))
             if keep is not None]
    dataset = tf.data.Dataset.zip(tuple(parts)).map(_concat_parts)
    return dataset.with_options(_deterministic_options()).prefetch(config.prefetch_batches)


def make_eval_dataset(config: InputConfig, batch_size: int,
                      parts: Sequence[DatasetPart] | None = None) -> tf.data.Dataset:
    """Finite dataset of unaugmented batches (the test-time crop: the box filling the crop at
    AugmentationConfig.box_scale), in fixed order: parts in order, shards sorted, records in file
    order; the last batch may be smaller.

    Args:
        parts: what to read (e.g. validation shards); default all of the config's parts. A
            part's 'dataset_index' is its position in config.parts if its name is there, else
            its position in `parts`.
    """
    if batch_size < 1:
        raise ValueError(f'make_eval_dataset: batch_size must be >= 1, got {batch_size}')
    parts = list(config.parts if parts is None else parts)
    if not parts:
        raise ValueError('make_eval_dataset: no parts given')
    config_index = {p.name: i for i, p in enumerate(config.parts)}
    parse_fn = _union_parse_fn(config)
    example_fn = _make_example_fn(config, False, None, None)
    no_seed = tf.zeros([3], tf.int64)
    datasets = []
    for position, part in enumerate(parts):
        paths = part.shard_paths()
        index = config_index.get(part.name, position)

        def load(serialized, source, index=index):
            example = example_fn(parse_fn(serialized), no_seed, source)
            example['dataset_index'] = tf.constant(index, tf.int32)
            return example

        datasets.append(_file_records_with_source(paths).map(
            load, num_parallel_calls=config.num_parallel_calls, deterministic=True))
    dataset = datasets[0]
    for other in datasets[1:]:
        dataset = dataset.concatenate(other)
    return (dataset.batch(batch_size).with_options(_deterministic_options())
            .prefetch(config.prefetch_batches))


def _deterministic_options() -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = True
    return options


def make_dataset_fn(config: InputConfig, **hooks):
    """`metrabs.train`'s DatasetFn: (start_step, rows=None) -> make_training_dataset(config,
    start_step, rows=rows); the training loop passes each worker's rows."""
    def dataset_fn(start_step: int, rows: tuple[int, int] | None = None) -> tf.data.Dataset:
        return make_training_dataset(config, start_step, rows=rows, **hooks)
    return dataset_fn

