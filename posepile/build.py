"""Build a dataset's TFRecords: converter -> 100 mm dedup -> perspective crops -> shards + manifest.

Library: `build_dataset(examples, out_dir, BuildConfig(...)) -> manifest dict`.
CLI:     python -m posepile.build --dataset=NAME --root=RAW_DIR --out=OUT_DIR
                 [--crop-size=256 --num-shards=N --workers=N --jpeg-quality=95 ...]
                 [--converter-option NAME=VALUE ...]   (keyword arguments of the converter)

Steps: (1) stream the converter's examples (metadata only; images stay lazy), (2) mapping joint
names into the union and (3) deduplicating each (dataset, sequence, person, camera_id) track with
the 100 mm rule in chunks of DEDUP_CHUNK examples, so only survivors stay in memory;
(4) group survivors by (dataset, split), each group into its own directory
`OUT_DIR/<dataset>/<split>/` (so training reads only training examples, per dataset), and
assign a group's examples to its min(num_shards, group size) shards by a hash of (dataset,
sequence, person, camera_id, frame); (5) for each shard not yet on disk, crop its examples (in
`workers` processes) and write it atomically; (6) write manifest.json atomically. The manifest
lists every shard with its dataset, split and path relative to OUT_DIR.

Resuming: rerunning with the same arguments after an interruption keeps the complete shards,
rebuilds the rest, and checks that every kept shard holds exactly the examples it should.
`build_config.json` records the settings; a rerun with different ones is refused.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import itertools
import json
import multiprocessing
import os
import pathlib
import pickle
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from posepile import cli, joints
from posepile.atomic_io import write_json_atomic
from posepile.cropping import CropConfig, crop_task, init_crop_worker
from posepile.datasets.skip_counts import recording_skips, skipped_by_dataset
from posepile.dedup import dedup_mask
from posepile.example import Pose3DExample
from posepile.shards import MANIFEST_NAME, ShardWriter, assign_shards

# posepile.tfrecord_schema imports TensorFlow: it is imported where used, so that
# `python -m posepile.build --help` answers without it (posepile/cli.py).

CONFIG_NAME = 'build_config.json'
SPLITS = ('train', 'validation', 'test')
SHARD_BY = ('example', 'sequence')
_THREAD_VARIABLES = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')
_CHUNK = 16
# Examples deduplicated at once. Only survivors stay in memory, so a build's peak memory is this
# many examples plus the survivors (not the whole dataset: SURREAL alone has millions of frames).
DEDUP_CHUNK = 200_000


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Settings of one build.

    Attributes:
        crop_size: crop side, px.
        num_shards: number of TFRecord files.
        workers: processes that crop (1 = in this process).
        jpeg_quality: JPEG quality of the crops (0..100).
        dedup_threshold_mm: the dedup rule's threshold, mm (0 keeps every example).
        box_scale: the person box's larger side times this spans the crop (margin; see cropping).
        skeleton: the converter's skeleton name; examples whose joint names are this skeleton's
            plain names are renamed to its union names. None: names must already be union names.
        dataset_index: stored in every record (position of the dataset in a multi-dataset mix).
        shard_prefix: file name prefix of the shards.
        converter_options: the converter's keyword options (JSON values), recorded so that a
            rebuild into the same directory with other options is refused like other settings.
        shard_by: 'example' spreads a group's examples over its shards by a hash of each
            example's (track, frame); 'sequence' keeps each (dataset, sequence) in one shard, for
            converters whose examples share an expensive image (a converter's SHARD_BY).
        reduced_decode: decode JPEG frames at reduced resolution where the crop is much
            smaller (CropConfig.reduced_decode).
    """
    crop_size: int = CropConfig.crop_size
    num_shards: int = 16
    workers: int = 1
    jpeg_quality: int = 95
    dedup_threshold_mm: float = 100.0
    box_scale: float = CropConfig.box_scale
    skeleton: str | None = None
    dataset_index: int = 0
    shard_prefix: str = 'examples'
    converter_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    shard_by: str = 'example'
    reduced_decode: bool = True

    def __post_init__(self):
        if self.shard_by not in SHARD_BY:
            raise ValueError(f'BuildConfig.shard_by must be one of {SHARD_BY}, got '
                             f'{self.shard_by!r}')
        if self.num_shards < 1:
            raise ValueError(f'BuildConfig.num_shards must be >= 1, got {self.num_shards}')
        if self.workers < 1:
            raise ValueError(f'BuildConfig.workers must be >= 1, got {self.workers}')
        self.crop_config()  # validates the crop fields

    def crop_config(self) -> CropConfig:
        return CropConfig(crop_size=self.crop_size, box_scale=self.box_scale,
                          jpeg_quality=self.jpeg_quality, reduced_decode=self.reduced_decode)


def build_dataset(examples: Iterable[Pose3DExample], out_dir: str | os.PathLike,
                  config: BuildConfig = BuildConfig(),
                  dedup_chunk: int = DEDUP_CHUNK) -> dict[str, Any]:
    """Runs the whole build (module docstring) and returns the manifest (also in manifest.json).

    `dedup_chunk`: examples deduplicated at a time (memory, not results: see _collect_survivors).

    Raises:
        ValueError if `out_dir` holds a build with other settings, a complete shard's record
        count differs from what the examples assign to it (the input changed since that shard),
        or a track's frames come back in time across dedup chunks (the converter contract).
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_or_write_config(out_dir, config)

    union_names_of = _union_renamer(config.skeleton)
    with recording_skips() as skip_counts:
        survivors, names_per_survivor, before = _collect_survivors(
            tqdm(examples, desc='collect + dedup', unit='ex', mininterval=2), union_names_of,
            config.dedup_threshold_mm, dedup_chunk)
    skipped = skipped_by_dataset(skip_counts)
    groups = _shard_groups(survivors, out_dir, config)

    todo = 0
    for group in groups:
        for s in group.missing:
            todo += len(group.members[s])
        for s in set(range(group.writer.num_shards)) - set(group.missing):
            info = group.writer.shard_info(s)
            if info.num_records != len(group.members[s]):
                raise ValueError(
                    f'{info.path}: holds {info.num_records} records but the examples assign '
                    f'{len(group.members[s])} to it; the input or settings changed since it was '
                    f'written: delete {out_dir} and rebuild')
            group.infos[s] = info

    with _Cropper(survivors, names_per_survivor, config, todo) as cropper, \
            tqdm(total=todo, desc='crop + write', unit='ex', mininterval=2) as progress:
        for group in groups:
            for s in group.missing:
                records = _counting(cropper.records(group.members[s]), progress)
                group.infos[s] = group.writer.write_shard(s, records)

    manifest = _manifest(before, survivors, names_per_survivor, groups, out_dir, config, skipped)
    write_json_atomic(out_dir / MANIFEST_NAME, manifest)
    return manifest


@dataclasses.dataclass
class _ShardGroup:
    """The shards of one (dataset, split): members[s] are indices into the collected examples."""
    dataset: str
    split: str
    writer: ShardWriter
    members: list[np.ndarray]
    missing: list[int]
    infos: dict[int, Any] = dataclasses.field(default_factory=dict)


def _shard_groups(examples: Sequence[Pose3DExample], out_dir: pathlib.Path,
                  config: BuildConfig) -> list[_ShardGroup]:
    """The (dataset, split) groups of `examples` (the dedup survivors) with their shards."""
    by_group: dict[tuple[str, str], list[int]] = {}
    for i, example in enumerate(examples):
        by_group.setdefault((example.dataset, example.split), []).append(i)
    key_of = example_key if config.shard_by == 'example' else sequence_key
    groups = []
    for (dataset, split), indices in sorted(by_group.items()):
        indices = np.array(indices, np.int64)
        # Never more shards than examples: empty shards would only be clutter.
        num_shards = min(config.num_shards, len(indices))
        shard_of = assign_shards([key_of(examples[i]) for i in indices], num_shards)
        writer = ShardWriter(out_dir / dataset / split, num_shards, config.shard_prefix)
        groups.append(_ShardGroup(
            dataset, split, writer, [indices[shard_of == s] for s in range(num_shards)],
            writer.missing_shards()))
    return groups


def example_key(example: Pose3DExample) -> str:
    """Stable identity of an example: decides its shard."""
    return '\x1f'.join(str(v) for v in (*example.track_key, example.frame))


def sequence_key(example: Pose3DExample) -> str:
    """The shard key under shard_by='sequence': all of a sequence's examples share a shard."""
    return '\x1f'.join((example.dataset, str(example.sequence)))


# --------------------------------------------------------------------------------- union names
def _union_renamer(skeleton: str | None):
    """A function Pose3DExample -> its joints' union names (cached per distinct name tuple)."""
    union_ids = joints.get_union('all').ids
    skeleton_names = skeleton_union = None
    if skeleton is not None:
        skeleton_names = tuple(joints.get_skeleton(skeleton).names)
        skeleton_union = tuple(joints.union_names(skeleton))
    cache: dict[tuple[str, ...], tuple[str, ...]] = {}

    def rename(example: Pose3DExample) -> tuple[str, ...]:
        names = example.joint_names
        if names not in cache:
            if skeleton_names is not None and names == skeleton_names:
                cache[names] = skeleton_union
            else:
                unknown = [n for n in names if n not in union_ids]
                if unknown:
                    raise KeyError(
                        f'{example.dataset} {example.sequence!r} frame {example.frame}: '
                        f'joint_names are neither the union names nor the names of skeleton '
                        f'{skeleton!r}; not in the union: {unknown}')
                cache[names] = names
        return cache[names]

    return rename


# ---------------------------------------------------------------------------------------- dedup
def _collect_survivors(examples: Iterable[Pose3DExample], union_names_of, threshold_mm: float,
                       chunk_size: int = DEDUP_CHUNK):
    """Streams the converter's examples through the 100 mm rule, `chunk_size` at a time.

    Each chunk is deduplicated together with the last kept example of every track it continues
    (always kept again: it is its track's first row in the chunk), so the result is exactly that
    of deduplicating everything at once, while only survivors are held. That needs each track's
    frames in a chunk to come after those of earlier chunks (the converter contract; within a
    chunk any order is fine); otherwise ValueError names the track.

    Returns:
        (survivors list[Pose3DExample] in input order, their union joint names,
         Counter[(dataset, split)] of all examples before dedup).
    """
    if chunk_size < 1:
        raise ValueError(f'dedup chunk size must be >= 1, got {chunk_size}')
    survivors, survivor_names = [], []
    before: Counter = Counter()
    last_kept: dict[tuple, tuple[Pose3DExample, tuple[str, ...]]] = {}
    last_frame: dict[tuple, int] = {}
    iterator = iter(examples)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        names = [union_names_of(ex) for ex in chunk]
        before.update((ex.dataset, ex.split) for ex in chunk)
        first_frame: dict[tuple, int] = {}
        for ex in chunk:
            key = ex.track_key
            first_frame[key] = min(first_frame.get(key, ex.frame), ex.frame)
        for key, frame in first_frame.items():
            if key in last_frame and frame <= last_frame[key]:
                raise ValueError(
                    f'track {key}: frame {frame} comes after frame {last_frame[key]} of the same '
                    f'track; converters must yield each track in increasing frame order')
        carried = [last_kept[key] for key in first_frame if key in last_kept]
        rows = [ex for ex, _ in carried] + chunk
        kept = _dedup(rows, [n for _, n in carried] + names, threshold_mm)
        for ex, example_names, keep in zip(chunk, names, kept[len(carried):]):
            last_frame[ex.track_key] = max(last_frame.get(ex.track_key, ex.frame), ex.frame)
            if keep:
                survivors.append(ex)
                survivor_names.append(example_names)
                last_kept[ex.track_key] = (ex, example_names)
    return survivors, survivor_names, before


def _dedup(examples: Sequence[Pose3DExample], names_per_example: Sequence[tuple[str, ...]],
           threshold_mm: float) -> np.ndarray:
    """[N] bool kept mask.

    Tracks are grouped by the joint sets their examples use (usually one per dataset); each
    group's coordinates go into the union of its joint names (NaN where an example lacks a joint),
    so a track whose examples label different joints still compares the shared ones, and memory
    stays [group size, group joints, 3] rather than [N, all joints, 3].
    """
    n = len(examples)
    kept = np.zeros(n, bool)
    track_numbers: dict[tuple, int] = {}
    track_ids = np.array([track_numbers.setdefault(ex.track_key, len(track_numbers))
                          for ex in examples], np.int64)
    joint_sets_of_track: dict[int, set] = {}
    for track, names in zip(track_ids.tolist(), names_per_example):
        joint_sets_of_track.setdefault(track, set()).add(names)
    group_of_track = {track: frozenset(sets) for track, sets in joint_sets_of_track.items()}
    rows_of_group: dict[frozenset, list[int]] = {}
    for i, track in enumerate(track_ids.tolist()):
        rows_of_group.setdefault(group_of_track[track], []).append(i)

    for joint_sets, rows in rows_of_group.items():
        rows = np.array(rows)
        all_names = list(dict.fromkeys(name for names in sorted(joint_sets) for name in names))
        position = {name: i for i, name in enumerate(all_names)}
        coords = np.full((len(rows), len(all_names), 3), np.nan, np.float32)
        for names in joint_sets:
            local = np.flatnonzero([names_per_example[i] == names for i in rows])
            columns = np.array([position[name] for name in names], np.int64)
            coords[local[:, None], columns[None, :]] = np.stack(
                [examples[rows[k]].world_coords for k in local])
        frames = np.array([examples[i].frame for i in rows], np.int64)
        kept[rows] = dedup_mask(coords, track_ids[rows], frames, threshold_mm)
    return kept


# ------------------------------------------------------------------------------------- cropping
class _Cropper:
    """Crops examples by index and encodes them, in this process or in a pool of workers.

    Workers are spawned, not forked: forking a process whose TensorFlow / OpenCV threads hold
    locks can deadlock the children (seen with OpenCV's thread pool after tf.data had run).
    Spawned workers receive pickled examples and import only the cropping code (no TensorFlow);
    the records are encoded here.
    """

    def __init__(self, examples, names_per_example, config: BuildConfig, todo: int):
        self.todo = todo  # no pool when there is nothing to crop (everything already on disk)
        self.examples = examples
        self.names = names_per_example
        self.crop_config = config.crop_config()
        self.dataset_index = config.dataset_index
        self.workers = config.workers
        self.pool = None

    def __enter__(self):
        if self.workers > 1 and self.todo:
            try:
                pickle.dumps(self.examples[0])
            except Exception as error:
                raise ValueError(
                    f'posepile.build: workers > 1 needs picklable examples (image as a path, '
                    f'bytes, an array or a picklable callable), but {self.examples[0].dataset} '
                    f'examples are not ({error}); use --workers=1') from error
            # Children inherit the environment at spawn: one BLAS / OpenMP thread per worker
            # process (the pool is the parallelism; threads per process would oversubscribe).
            saved = {k: os.environ.get(k) for k in _THREAD_VARIABLES}
            os.environ.update({k: '1' for k in _THREAD_VARIABLES})
            try:
                self.pool = multiprocessing.get_context('spawn').Pool(self.workers,
                                                                      init_crop_worker)
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        return self

    def records(self, indices: np.ndarray) -> Iterator[bytes]:
        tasks = ((self.examples[i], self.crop_config, self.dataset_index, self.names[i])
                 for i in indices)
        # Chunks of consecutive examples per worker: a worker then reads a video's frames in
        # order (VideoFrame decodes forward instead of seeking when they are close).
        cropped = (map(crop_task, tasks) if self.pool is None
                   else self.pool.imap(crop_task, tasks, chunksize=_CHUNK))
        from posepile.tfrecord_schema import encode_example
        return map(encode_example, cropped)

    def __exit__(self, *exc):
        if self.pool is not None:
            if exc[0] is None:
                self.pool.close()
            else:
                self.pool.terminate()
            self.pool.join()
        return False


def _counting(records: Iterable[bytes], progress: tqdm) -> Iterator[bytes]:
    for record in records:
        progress.update(1)
        yield record


# ------------------------------------------------------------------------------------- manifest
def _by_dataset_split(counter: Counter) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for (dataset, split), count in sorted(counter.items()):
        result.setdefault(dataset, {})[split] = count
    return result


def _manifest(counts_before: Counter, survivors, names_per_survivor,
              groups: Sequence[_ShardGroup], out_dir: pathlib.Path, config: BuildConfig,
              skipped: dict[str, dict[str, int]]) -> dict[str, Any]:
    from posepile.tfrecord_schema import SCHEMA_VERSION
    before = _by_dataset_split(counts_before)
    after = _by_dataset_split(Counter((ex.dataset, ex.split) for ex in survivors))
    joint_sets = Counter((ex.dataset, names) for ex, names in zip(survivors, names_per_survivor))
    shards = [{'file': g.infos[s].path.relative_to(out_dir).as_posix(), 'dataset': g.dataset,
               'split': g.split, 'num_examples': g.infos[s].num_records,
               'sha256': g.infos[s].sha256, 'num_bytes': g.infos[s].num_bytes}
              for g in groups for s in sorted(g.infos)]
    return {
        'schema_version': SCHEMA_VERSION,
        'crop_size': config.crop_size,
        'config': dataclasses.asdict(config),
        'datasets': {
            name: {'before_dedup': before.get(name, {}), 'after_dedup': after.get(name, {}),
                   'num_before_dedup': sum(before.get(name, {}).values()),
                   'num_after_dedup': sum(after.get(name, {}).values()),
                   # Dropped by the converter's own rules before dedup, by reason.
                   'skipped': skipped.get(name, {}),
                   'num_skipped': sum(skipped.get(name, {}).values()),
                   # The registered skeletons its examples label in full (per joint set).
                   'skeletons': sorted({s for (dataset, names) in joint_sets if dataset == name
                                        for s in joints.skeletons_covered(names)})}
            for name in sorted(set(before) | set(skipped))},
        # The converter's skeleton, whose plain joint names were renamed to union names (None:
        # the converter gave union names); datasets[*].skeletons says what the examples label.
        'skeleton': config.skeleton,
        'joint_sets': [{'dataset': dataset, 'joint_names': list(names), 'num_examples': count}
                       for (dataset, names), count in sorted(joint_sets.items())],
        # User-registered formats the joints come from (posepile.mix registers them again).
        'skeleton_definitions': joints.user_skeleton_definitions(
            {n for _, names in joint_sets for n in names}),
        'num_examples': int(sum(s['num_examples'] for s in shards)),
        'shards': shards,
    }


def _config_record(config: BuildConfig) -> dict[str, Any]:
    """What build_config.json holds for `config`, as JSON would store it (tuples become lists).
    Workers change speed, not content, so they are left out: resuming with another count is
    fine."""
    from posepile.tfrecord_schema import SCHEMA_VERSION
    record = {**dataclasses.asdict(config), 'schema_version': SCHEMA_VERSION}
    record = json.loads(json.dumps(record))
    record.pop('workers')
    return record


def _read_config_record(path: pathlib.Path) -> dict[str, Any]:
    try:
        existing = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: not valid JSON ({error}); delete it to rebuild') from error
    # Builds from before converter options were recorded had none.
    existing.setdefault('converter_options', {})
    existing.setdefault('shard_by', 'example')
    # Builds from before reduced decoding decoded every frame in full.
    existing.setdefault('reduced_decode', False)
    return existing


def settings_conflict(out_dir: str | os.PathLike, config: BuildConfig) -> str | None:
    """Why `out_dir` cannot take a build with `config` (it holds one made with other settings,
    whose shards would not fit together), or None if it can. Reads only."""
    path = pathlib.Path(out_dir) / CONFIG_NAME
    if not path.exists():
        return None
    existing, wanted = _read_config_record(path), _config_record(config)
    if existing == wanted:
        return None
    changed = sorted(k for k in set(existing) | set(wanted) if existing.get(k) != wanted.get(k))
    return (f'{path}: {out_dir} holds a build with other settings (differing: {changed}); use '
            f'another --out or delete it')


def _check_or_write_config(out_dir: pathlib.Path, config: BuildConfig) -> None:
    """Refuses to resume a build made with other settings; records the settings of a new one."""
    conflict = settings_conflict(out_dir, config)
    if conflict:
        raise ValueError(conflict)
    if not (out_dir / CONFIG_NAME).exists():
        write_json_atomic(out_dir / CONFIG_NAME, _config_record(config))


def is_complete(out_dir: str | os.PathLike, config: BuildConfig) -> bool:
    """True if `out_dir` holds a finished build with these settings: its build_config.json
    matches, its manifest.json exists (written last, so the build ran to the end) and every
    shard the manifest lists exists. (Shard contents are checked when a build resumes and when
    posepile.mix / the input pipeline read them, not here: hashing terabytes to decide to skip
    would defeat the purpose.)"""
    out_dir = pathlib.Path(out_dir)
    config_path, manifest_path = out_dir / CONFIG_NAME, out_dir / MANIFEST_NAME
    if not (config_path.is_file() and manifest_path.is_file()):
        return False
    try:
        if _read_config_record(config_path) != _config_record(config):
            return False
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, OSError):
        return False
    return all((out_dir / shard['file']).is_file() for shard in manifest.get('shards', ()))


# ------------------------------------------------------------------------------------------ CLI
# Help texts of the BuildConfig settings that are flags (posepile.build_all shares them).
SETTING_HELP = {
    'crop_size': 'side of the stored square crops, px',
    'num_shards': 'TFRecord files per (dataset, split) (fewer if it has fewer examples)',
    'workers': 'crop processes (default: the CPUs this process may use)',
    'jpeg_quality': 'JPEG quality of the stored crops, 0..100',
    'dedup_threshold_mm': "the 100 mm rule: a frame is kept only if some joint moved more than "
                          "this (mm) since its track's last kept frame; 0 keeps every frame "
                          "(photos, small datasets)",
    'box_scale': "the person box's larger side times this spans the crop (margin)",
    'dataset_index': 'stored in every record: the position of the dataset in a multi-dataset mix',
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m posepile.build',
        description='Convert one dataset into deduplicated perspective crops in sharded '
                    'TFRecords with a manifest.json (see posepile/build.py).')
    parser.add_argument('--dataset', required=True,
                        help='converter name (a module in posepile/datasets; custom = your own '
                             'data in the layout of docs/ADDING_A_DATASET.md)')
    parser.add_argument('--root', required=True, help='the raw dataset directory')
    parser.add_argument('--out', required=True, help='output directory for shards + manifest')
    defaults = BuildConfig()
    for key, help_text in SETTING_HELP.items():
        default = getattr(defaults, key) if key != 'workers' else len(os.sched_getaffinity(0))
        parser.add_argument(f'--{key.replace("_", "-")}', type=type(default), default=default,
                            help=f'{help_text} (default {default})')
    parser.add_argument('--full-resolution-decode', action='store_true',
                        help='decode every JPEG frame in full (default: at 1/2, 1/4 or 1/8 where '
                        'the crop keeps >= 2 frame px per crop px; see posepile/frame_decode.py)')
    parser.add_argument('--body-model-dir', default=None,
                        help='SMPL-family model files (<dir>/smpl/SMPL_NEUTRAL.npz, ...; see '
                        'posepile/body_models.py) for converters that run the body model')
    parser.add_argument('--converter-option', action='append', default=[], metavar='NAME=VALUE',
                        help='a keyword argument of the converter\'s convert() (repeatable); VALUE '
                        'is read as JSON if it parses (3, [0, 2], true), else as a string')
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _converter_options(pairs: Sequence[str], convert) -> dict[str, Any]:
    """{'NAME': value} from --converter-option NAME=VALUE; ValueError naming an option the
    converter does not take (a typo would otherwise be ignored or crash deep inside)."""
    parameters = inspect.signature(convert).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    accepted = [n for n, p in parameters.items() if n != 'root' and p.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    options = {}
    for pair in pairs:
        name, sep, text = pair.partition('=')
        if not sep or not name:
            raise ValueError(f'--converter-option {pair!r}: expected NAME=VALUE')
        if name not in accepted and not takes_any:
            raise ValueError(f'--converter-option {name}: the converter takes no such option '
                             f'(it takes: {", ".join(accepted) or "none"})')
        try:
            options[name] = json.loads(text)
        except json.JSONDecodeError:
            options[name] = text
    return options


@dataclasses.dataclass(frozen=True)
class PreparedBuild:
    """A checked build request: the converter, its keyword options and the BuildConfig."""
    args: argparse.Namespace
    converter: Any
    options: dict[str, Any]
    config: BuildConfig


def prepare(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None
            ) -> PreparedBuild:
    """Parses the CLI arguments (or takes parsed `args`) and resolves them into what `run`
    runs (posepile.build_all uses it too, to know the settings a build would record before
    starting it).

    Raises:
        ValueError: the root is not a directory, or a converter option or --body-model-dir does
            not fit the converter (the message names them).
    """
    from posepile import datasets
    args = args if args is not None else parse_args(argv)
    root = pathlib.Path(args.root)
    if not root.is_dir():
        raise ValueError(f'--root {root} is not a directory')
    try:
        converter = datasets.get_converter(args.dataset)
    except KeyError as error:
        raise ValueError(error.args[0]) from None
    converter_options = _converter_options(args.converter_option, converter.convert)
    options = {}
    if args.body_model_dir is not None:
        if 'body_model_dir' not in inspect.signature(converter.convert).parameters:
            raise ValueError(f'the {args.dataset} converter uses no body model; drop '
                             f'--body-model-dir')
        options['body_model_dir'] = args.body_model_dir
    options.update(converter_options)
    # Most converters emit one fixed skeleton; a converter whose skeleton is named by the data
    # (the `custom` one) says which through skeleton_of(root, **options).
    skeleton_of = getattr(converter, 'skeleton_of', None)
    skeleton = skeleton_of(root, **converter_options) if skeleton_of else converter.SKELETON
    config = BuildConfig(
        crop_size=args.crop_size, num_shards=args.num_shards, workers=args.workers,
        jpeg_quality=args.jpeg_quality, dedup_threshold_mm=args.dedup_threshold_mm,
        box_scale=args.box_scale, skeleton=skeleton, dataset_index=args.dataset_index,
        converter_options=converter_options,
        shard_by=getattr(converter, 'SHARD_BY', 'example'),
        reduced_decode=not args.full_resolution_decode)
    return PreparedBuild(args, converter, options, config)


# Below this share of a split's examples surviving the 100 mm rule, the build says so.
DEDUP_WARNING_KEPT_SHARE = 0.5


def dedup_warnings(manifest: dict[str, Any]) -> list[str]:
    """One line per (dataset, split) of which the 100 mm rule dropped more than half."""
    threshold = manifest['config']['dedup_threshold_mm']
    lines = []
    for name, info in manifest['datasets'].items():
        for split, before in info['before_dedup'].items():
            after = info['after_dedup'].get(split, 0)
            if before and threshold > 0 and after < DEDUP_WARNING_KEPT_SHARE * before:
                lines.append(
                    f'warning: the {threshold:g} mm rule kept {after} of {before} {name} {split} '
                    f'examples ({100 * after / before:.0f}%): a frame is kept only when some '
                    f'joint moved more than {threshold:g} mm since its track\'s last kept frame, which '
                    f'thins densely sampled video as intended; for photos or a small dataset '
                    f'use --dedup-threshold-mm=0 (keeps every frame)')
    return lines


def run(args: argparse.Namespace) -> int:
    prepared = prepare(args=args)
    examples = prepared.converter.convert(pathlib.Path(args.root), **prepared.options)
    # A converter's DatasetFormatError (a ValueError) names the file and field; posepile.cli
    # prints it as one line. Complete shards stay for the rerun.
    manifest = build_dataset(examples, args.out, prepared.config)
    shard_counts = Counter(s['dataset'] for s in manifest['shards'])
    for name, info in manifest['datasets'].items():
        print(f'{name}: {info["num_before_dedup"]} examples, {info["num_after_dedup"]} after '
              f'dedup, in {shard_counts[name]} shards under {args.out}/{name}/<split>/')
        if info['num_skipped']:
            reasons = ', '.join(f'{reason}: {n}' for reason, n in info['skipped'].items())
            print(f'{name}: {info["num_skipped"]} skipped by the converter ({reasons})')
    for line in dedup_warnings(manifest):
        print(f'posepile.build: {line}', file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
