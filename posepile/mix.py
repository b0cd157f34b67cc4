"""A training mix: which built datasets form one training corpus, and how many rows each adds to
every batch. Reads a mix JSON, checks the builds, writes the input pipeline's InputConfig JSON.

CLI:  python -m posepile.mix --config=configs/mix_paper28.json --out=input_config.json
                             [--tfrecord-root=DIR] [--split=train|validation|test]
                             [--proc-side=PX]

Mix JSON (all keys but 'datasets' optional; what each means: MIX_FIELDS and MIX_ENTRY_FIELDS
below, rendered in docs/CONFIGURATION.md):
    {
      "description": "...",
      "union": "real",                      # posepile union of the model's joints
      "tfrecord_root": "tfrecords",         # base of relative 'tfrecords' dirs (relative to the
                                            #   mix file's directory; --tfrecord-root overrides)
      "batch_size_3d": 128, "batch_size_2d": 32,   # rows per batch shared by 3D / 2D datasets
      "allocation": "proportional",         # rule for "auto" counts: "proportional" | "sqrt"
      "joint_names": null,                  # null = every joint of the union that some 3D format
                                            #   labels (2D-only joints supervise those by base
                                            #   name: metrabs.data.labels2d)
      "proc_side": 256, "seed": 0, "augmentation": {...},   # passed to InputConfig as is
      "background_dir": null, "occluder_dir": null,         # likewise (photos, Pascal VOC)
      "datasets": [
        {"name": "h36m", "tfrecords": "h36m", "kind": "3d", "examples_per_batch": 6},
        {"name": "fit3d", "tfrecords": "imar", "dataset": "fit3d", "kind": "3d", ...},
        {"name": "coco", "tfrecords": "coco", "kind": "2d", "examples_per_batch": "auto",
         "train_splits": ["train", "validation"]},
        {"name": "agora", "tfrecords": "agora", "kind": "3d", "examples_per_batch": 3,
         "background_prob": 0.2}
      ]
    }

Entry options: "background_prob" (0..1) replaces the augmentation's background-replacement
probability for that dataset (the released code uses 0.2 for datasets whose backgrounds are
already realistic: SAIL-VOS, AGORA, SPEC, HSPACE; 0.7 otherwise). "train_splits" lists the splits
that `--split=train` reads (default ["train"]; the released code also trains on the 2D
datasets' validation splits, which it never validates on).

Each 'tfrecords' directory is the output of `python -m posepile.build` (manifest.json + shards,
one shard set per (dataset, split)); an entry reads the shards of its 'dataset' (default: its
'name') and of the chosen split only ('train' by default), so training never sees validation or
test examples. Checks: the manifest exists and parses, every shard it lists exists, every joint
name it lists is in the chosen union, the build holds shards of that dataset and split, a '2d'
part's skeleton is a 2D format (and a '3d' part's is not; the skeleton is the registered format
whose joints the dataset's records hold, else the build's), and the counts of each kind sum to
its batch size.

"auto" counts split what the fixed counts leave of the kind's batch size over the auto datasets,
in proportion to their number of examples of the split after dedup (manifest 'after_dedup'),
or to its square root with "sqrt"; every dataset gets at least one row; rounding by
largest remainder so the sum is exact.

Output: the dict `metrabs.data.input_pipeline.InputConfig.from_dict` reads ({joint_names, parts_3d,
parts_2d (each {name, shard_patterns, examples_per_batch}), union, proc_side, seed,
augmentation, and `skeletons`: the definitions of user-registered skeleton formats among the
joints, taken from the builds' manifests}), written atomically. The table printed lists each
dataset's examples of the split, rows per batch and share of the batch. `--split=validation` writes the config of the
validation shards that `metrabs.train --val-input-config` reads.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from posepile import cli, joints
from posepile.atomic_io import write_json_atomic
from posepile.build import MANIFEST_NAME

KINDS = ('3d', '2d')
ALLOCATIONS = ('proportional', 'sqrt')
# The mix JSON's fields and what they mean: the one description of the format (parse_mix
# accepts exactly these keys; docs/CONFIGURATION.md is generated from here and MixConfig's
# defaults by python -m metrabs.config_reference).
MIX_FIELDS = {
    'description': 'free text: what the mix is for',
    'union': "the posepile.joints union the model's joints come from: 'real' (the paper's "
             "formats and your registered ones), 'synthetic' or 'all'",
    'tfrecord_root': "base directory of relative 'tfrecords' paths, relative to the mix file "
                     "(posepile.mix --tfrecord-root overrides it)",
    'batch_size_3d': "rows per training batch shared by the '3d' datasets; with batch_size_2d it "
                     "must add up to the TrainConfig's global_batch_size (metrabs.train refuses "
                     "a mismatch)",
    'batch_size_2d': "rows per training batch shared by the '2d' datasets (0 without any)",
    'allocation': "how 'auto' counts share a kind's rows: 'proportional' to each dataset's "
                  "examples after dedup, or to their square root ('sqrt'); at least 1 each",
    'joint_names': "the model's output joints (union names); null = every joint of the union "
                   "that some 3D format labels (2D-only joints such as '*_mpii' supervise those "
                   "by base name: metrabs.data.labels2d), also those no dataset of the mix "
                   "labels (they are trained through none: list your skeleton's, e.g. "
                   "posepile.joints.union_names('mylab'), to predict only those)",
    'proc_side': "crop side the model sees, px (must equal the TrainConfig's model.proc_side)",
    'seed': 'seed of the data order and augmentation',
    'augmentation': 'AugmentationConfig fields to override (below), passed on as they are',
    'datasets': 'the datasets of the mix: a list of objects with the fields below',
    'background_dir': 'photos that replace the studio backgrounds (a directory of images or a '
                      '.txt list; passed to InputConfig; null = synthetic textures)',
    'occluder_dir': "Pascal VOC tree (VOCdevkit/VOC2012) whose object cut-outs occlude the "
                    "person (passed to InputConfig; null = synthetic shapes)",
}
MIX_ENTRY_FIELDS = {
    'name': "the entry's name (the table, the logs); also the dataset's name inside the build "
            "unless 'dataset' says otherwise",
    'tfrecords': 'the build directory (posepile.build --out), relative to tfrecord_root',
    'dataset': 'which dataset of that build (a build may hold several)',
    'kind': "'3d' (3D labels) or '2d' (2D-only labels, e.g. COCO)",
    'examples_per_batch': "rows of every batch from this dataset: an integer >= 1, or 'auto' "
                          "(a share of what the fixed counts leave, see allocation)",
    'note': 'free text (ignored)',
    'background_prob': "0..1: this dataset's background-replacement probability instead of the "
                       "augmentation's (the released code: 0.2 for SAIL-VOS, AGORA, SPEC, HSPACE, "
                       "whose backgrounds are realistic; 0.7 otherwise)",
    'train_splits': "splits that --split=train reads (default [\"train\"]; the released code also "
                    "trains on the 2D datasets' validation splits)",
}
_TOP_KEYS = set(MIX_FIELDS)
_ENTRY_KEYS = set(MIX_ENTRY_FIELDS)
SPLITS = ('train', 'validation', 'test')


@dataclasses.dataclass(frozen=True)
class MixEntry:
    """One dataset of the mix: name, build directory, the dataset's name inside that build,
    '3d'/'2d', rows per batch (int or 'auto'), background-replacement probability (None: the
    augmentation's), the splits a training config reads."""
    name: str
    tfrecords: str
    dataset: str
    kind: str
    examples_per_batch: int | str
    background_prob: float | None = None
    train_splits: tuple[str, ...] = ('train',)


@dataclasses.dataclass(frozen=True)
class MixConfig:
    """A parsed mix file (see module docstring); `source` names the file for errors."""
    datasets: tuple[MixEntry, ...]
    union: str = 'real'
    tfrecord_root: str = '.'
    batch_size_3d: int = 128
    batch_size_2d: int = 32
    allocation: str = 'proportional'
    joint_names: tuple[str, ...] | None = None
    proc_side: int = 256
    seed: int = 0
    augmentation: Mapping[str, Any] | None = None
    description: str = ''
    source: str = '<dict>'
    background_dir: str | None = None
    occluder_dir: str | None = None


@dataclasses.dataclass(frozen=True)
class BuildInfo:
    """What a build's manifest says: shard paths and example counts after dedup per
    (dataset, split), skeleton, joints."""
    directory: pathlib.Path
    shards: Mapping[tuple[str, str], tuple[str, ...]]
    counts: Mapping[tuple[str, str], int]
    skeleton: str | None
    joint_names: frozenset[str]
    dataset_joint_sets: Mapping[str, tuple[frozenset[str], ...]] = dataclasses.field(
        default_factory=dict)

    def skeleton_of(self, dataset: str) -> str | None:
        """The build's skeleton, unless the dataset's records hold exactly the union joints of
        another registered format (multi-format builds such as the synthetic world's)."""
        sets = self.dataset_joint_sets.get(dataset, ())
        if self.skeleton is None or any(
                frozenset(joints.union_names(self.skeleton)) == names for names in sets):
            return self.skeleton
        for names in sets:
            for skeleton in joints.skeleton_names('all'):
                if frozenset(joints.union_names(skeleton)) == names:
                    return skeleton
        return self.skeleton

    def shard_paths(self, dataset: str, split: str, where: str) -> tuple[str, ...]:
        paths = self.shards.get((dataset, split))
        if not paths:
            held = sorted({f'{d}/{s}' for d, s in self.shards})
            raise ValueError(f'{where}: {self.directory / MANIFEST_NAME} has no {split!r} shards '
                             f'of dataset {dataset!r} (it holds {held})')
        return paths


def parse_mix(data: Mapping[str, Any], source: str = '<dict>') -> MixConfig:
    """Checks a mix dict's keys and types; errors name `source` and the field."""
    if not isinstance(data, Mapping):
        raise ValueError(f'{source}: a mix file must hold a JSON object')
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise KeyError(f'{source}: unknown mix fields {unknown}; known: {sorted(_TOP_KEYS)}')
    if not data.get('datasets'):
        raise KeyError(f'{source}: field "datasets" is missing or empty')
    entries = []
    for i, entry in enumerate(data['datasets']):
        where = f'{source}: datasets[{i}]'
        if not isinstance(entry, Mapping):
            raise ValueError(f'{where} must be an object')
        bad = sorted(set(entry) - _ENTRY_KEYS)
        missing = sorted({'name', 'kind', 'examples_per_batch'} - set(entry))
        if bad or missing:
            raise KeyError(f'{where}: unknown fields {bad}, missing fields {missing}')
        if entry['kind'] not in KINDS:
            raise ValueError(f'{where}: field "kind" is {entry["kind"]!r}, expected one of {KINDS}')
        count = entry['examples_per_batch']
        if count != 'auto' and not (isinstance(count, int) and not isinstance(count, bool)
                                    and count >= 1):
            raise ValueError(f'{where}: field "examples_per_batch" is {count!r}, expected an '
                             f'integer >= 1 or "auto"')
        background_prob = entry.get('background_prob')
        if background_prob is not None and not (
                isinstance(background_prob, (int, float)) and not isinstance(background_prob, bool)
                and 0 <= background_prob <= 1):
            raise ValueError(f'{where}: field "background_prob" is {background_prob!r}, expected '
                             f'a number in [0, 1] or null')
        train_splits = entry.get('train_splits', ['train'])
        if (not isinstance(train_splits, list) or not train_splits
                or any(s not in SPLITS for s in train_splits)):
            raise ValueError(f'{where}: field "train_splits" is {train_splits!r}, expected a '
                             f'non-empty list of {SPLITS}')
        entries.append(MixEntry(str(entry['name']), str(entry.get('tfrecords', entry['name'])),
                                str(entry.get('dataset', entry['name'])), entry['kind'], count,
                                None if background_prob is None else float(background_prob),
                                tuple(train_splits)))
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'{source}: datasets named more than once: {duplicates}')
    allocation = data.get('allocation', 'proportional')
    if allocation not in ALLOCATIONS:
        raise ValueError(f'{source}: field "allocation" is {allocation!r}, expected one of '
                         f'{ALLOCATIONS}')
    union = data.get('union', 'real')
    if union not in joints.UNIONS:
        raise ValueError(f'{source}: field "union" is {union!r}, expected one of {joints.UNIONS}')
    for key in ('batch_size_3d', 'batch_size_2d'):
        value = data.get(key, 0)
        if not isinstance(value, int) or value < 0:
            raise ValueError(f'{source}: field {key!r} must be an integer >= 0, got {value!r}')
    joint_names = data.get('joint_names')
    return MixConfig(
        datasets=tuple(entries), union=union, tfrecord_root=str(data.get('tfrecord_root', '.')),
        batch_size_3d=int(data.get('batch_size_3d', 128)),
        batch_size_2d=int(data.get('batch_size_2d', 32)), allocation=allocation,
        joint_names=None if joint_names is None else tuple(joint_names),
        proc_side=int(data.get('proc_side', 256)), seed=int(data.get('seed', 0)),
        augmentation=data.get('augmentation'), description=str(data.get('description', '')),
        source=source, background_dir=data.get('background_dir'),
        occluder_dir=data.get('occluder_dir'))


def load_mix(path: str | os.PathLike) -> MixConfig:
    """Reads a mix JSON file; relative 'tfrecord_root' is taken relative to the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'missing mix file {path}')
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON ({e})') from e
    mix = parse_mix(data, str(path))
    root = pathlib.Path(mix.tfrecord_root)
    if not root.is_absolute():
        root = path.parent / root
    return dataclasses.replace(mix, tfrecord_root=str(root))


def read_build(directory: pathlib.Path, union: str) -> BuildInfo:
    """Checks one build directory against its manifest (module docstring)."""
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(f'missing file {manifest_path} (expected: the manifest of a '
                                f'`python -m posepile.build` output)')
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f'{manifest_path}: not valid JSON ({e})') from e
    for key in ('shards', 'datasets', 'joint_sets'):
        if key not in manifest:
            raise KeyError(f'{manifest_path}: missing field {key!r}')
    shards: dict[tuple[str, str], list[str]] = {}
    for shard in manifest['shards']:
        if 'dataset' not in shard or 'split' not in shard:
            raise KeyError(f'{manifest_path}: shard {shard.get("file")!r} lacks "dataset"/"split" '
                           f'(a build from before per-split shards): rebuild it')
        shard_path = directory / shard['file']
        if not shard_path.is_file():
            raise FileNotFoundError(f'{manifest_path}: lists shard {shard["file"]!r} but '
                                    f'{shard_path} does not exist')
        shards.setdefault((shard['dataset'], shard['split']), []).append(
            str(shard_path.resolve()))
    for i, definition in enumerate(manifest.get('skeleton_definitions', ())):
        try:
            joints.register_skeleton(definition)
        except ValueError as e:
            raise ValueError(f'{manifest_path}: skeleton_definitions[{i}]: {e}') from None
    union_ids = joints.get_union(union).ids
    names = frozenset(n for js in manifest['joint_sets'] for n in js['joint_names'])
    outside = sorted(n for n in names if n not in union_ids)
    if outside:
        raise KeyError(f'{manifest_path}: joints not in the {union!r} union: {outside[:10]}'
                       f'{" ..." if len(outside) > 10 else ""}')
    counts = {(dataset, split): int(n) for dataset, info in manifest['datasets'].items()
              for split, n in info.get('after_dedup', {}).items()}
    joint_sets: dict[str, list[frozenset[str]]] = {}
    for js in manifest['joint_sets']:
        joint_sets.setdefault(js.get('dataset', ''), []).append(frozenset(js['joint_names']))
    return BuildInfo(directory, {k: tuple(v) for k, v in shards.items()}, counts,
                     manifest.get('skeleton'), names,
                     {k: tuple(v) for k, v in joint_sets.items()})


def allocate(total: int, fixed: Sequence[int | None], sizes: Sequence[float],
             rule: str = 'proportional', where: str = '') -> list[int]:
    """Rows per batch: fixed entries keep their count; the others (None) share the rest.

    The rest is split in proportion to `sizes` ('proportional') or their square roots ('sqrt'),
    with at least 1 each, by largest remainder so the counts sum to `total` exactly.
    """
    fixed_sum = sum(f for f in fixed if f is not None)
    auto = [i for i, f in enumerate(fixed) if f is None]
    rest = total - fixed_sum
    if not auto:
        if rest != 0:
            raise ValueError(f'{where}: examples per batch sum to {fixed_sum}, expected {total}')
        return [int(f) for f in fixed]
    if rest < len(auto):
        raise ValueError(f'{where}: fixed counts use {fixed_sum} of {total} rows, leaving '
                         f'{rest} for {len(auto)} "auto" datasets (need at least 1 each)')
    weights = np.array([float(sizes[i]) for i in auto])
    if rule == 'sqrt':
        weights = np.sqrt(weights)
    if weights.sum() <= 0:
        weights = np.ones(len(auto))
    # One row each first, then the remainder by weight.
    exact = (rest - len(auto)) * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    leftover = (rest - len(auto)) - counts.sum()
    counts[np.argsort(-(exact - counts), kind='stable')[:leftover]] += 1
    result = [int(f) if f is not None else 0 for f in fixed]
    for i, c in zip(auto, counts):
        result[i] = int(c) + 1
    return result


def make_input_config(mix: MixConfig, tfrecord_root: str | os.PathLike | None = None,
                      split: str = 'train') -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The InputConfig dict of the `split` shards and one table row per dataset (name, kind,
    examples, rows, share)."""
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    root = pathlib.Path(tfrecord_root if tfrecord_root is not None else mix.tfrecord_root)
    builds, shard_paths, sizes = [], [], []
    for entry in mix.datasets:
        directory = pathlib.Path(entry.tfrecords)
        directory = directory if directory.is_absolute() else root / directory
        build = read_build(directory, mix.union)
        skeleton = build.skeleton_of(entry.dataset)
        if skeleton is not None:
            is_2d = joints.get_format(skeleton).is_2d
            if is_2d != (entry.kind == '2d'):
                raise ValueError(f'{mix.source}: dataset {entry.name!r} is listed as '
                                 f'{entry.kind!r} but its build uses the '
                                 f'{"2D" if is_2d else "3D"} skeleton {skeleton!r}')
        splits = entry.train_splits if split == 'train' else (split,)
        shard_paths.append(tuple(
            path for s in splits
            for path in build.shard_paths(entry.dataset, s, f'{mix.source}: dataset '
                                                            f'{entry.name!r}')))
        sizes.append(sum(build.counts.get((entry.dataset, s), 0) for s in splits))
        builds.append(build)
    counts = {}
    for kind, total in (('3d', mix.batch_size_3d), ('2d', mix.batch_size_2d)):
        members = [i for i, e in enumerate(mix.datasets) if e.kind == kind]
        if not members:
            continue
        fixed = [None if mix.datasets[i].examples_per_batch == 'auto'
                 else int(mix.datasets[i].examples_per_batch) for i in members]
        for i, n in zip(members, allocate(total, fixed, [sizes[i] for i in members],
                                          mix.allocation,
                                          f'{mix.source} ({kind} datasets)')):
            counts[i] = n
    joint_names = list(mix.joint_names) if mix.joint_names is not None \
        else list(joints.three_d_union_names(mix.union))
    unknown = sorted(set(joint_names) - set(joints.get_union(mix.union).names))
    if unknown:
        raise KeyError(f'{mix.source}: joint_names not in the {mix.union!r} union: {unknown[:10]}')

    def parts(kind):
        return [{'name': e.name, 'shard_patterns': list(shard_paths[i]),
                 'examples_per_batch': counts[i],
                 **({} if e.background_prob is None else {'background_prob': e.background_prob})}
                for i, e in enumerate(mix.datasets) if e.kind == kind]

    config = {'joint_names': joint_names, 'parts_3d': parts('3d'), 'parts_2d': parts('2d'),
              'union': mix.union, 'proc_side': mix.proc_side, 'seed': mix.seed}
    # User-defined skeletons travel with the config, so training and export know them too.
    skeletons = joints.user_skeleton_definitions(joint_names)
    if skeletons:
        config['skeletons'] = skeletons
    if mix.augmentation is not None:
        config['augmentation'] = dict(mix.augmentation)
    for key in ('background_dir', 'occluder_dir'):
        if getattr(mix, key) is not None:
            config[key] = getattr(mix, key)
    batch = sum(counts.values())
    table = [{'name': e.name, 'kind': e.kind, 'split': split, 'examples': sizes[i],
              'per_batch': counts[i], 'share': counts[i] / batch}
             for i, e in enumerate(mix.datasets)]
    return config, table


def format_table(table: Sequence[Mapping[str, Any]]) -> str:
    split = table[0]['split'] if table else 'train'
    header = f'{"dataset":<16} {"kind":<4} {split + " ex.":>14} {"per batch":>9} {"share":>7}'
    lines = [header, '-' * len(header)]
    for row in table:
        lines.append(f'{row["name"]:<16} {row["kind"]:<4} {row["examples"]:>14} '
                     f'{row["per_batch"]:>9} {100 * row["share"]:>6.1f}%')
    total = sum(r['per_batch'] for r in table)
    lines.append(f'{"total":<16} {"":<4} {sum(r["examples"] for r in table):>14} '
                 f'{total:>9} {100.0:>6.1f}%')
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m posepile.mix',
        description='Check a training mix of built datasets and write the input pipeline '
                    'config (InputConfig JSON). The mix JSON fields: docs/CONFIGURATION.md.')
    parser.add_argument('--config', required=True,
                        help='the mix JSON file (e.g. configs/mix_synthetic_cpu.json)')
    parser.add_argument('--out', required=True, help='where to write the InputConfig JSON')
    parser.add_argument('--tfrecord-root', default=None,
                        help='base of relative "tfrecords" dirs (default: the mix file\'s '
                             '"tfrecord_root")')
    parser.add_argument('--proc-side', type=int, default=None,
                        help='output crop side px (overrides the mix file\'s "proc_side"; must '
                             'equal the model\'s)')
    parser.add_argument('--split', default='train', choices=SPLITS,
                        help='which split\'s shards the config reads (validation: for '
                             'metrabs.train --val-input-config)')
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def run(args: argparse.Namespace) -> int:
    mix = load_mix(args.config)
    if args.proc_side is not None:
        mix = dataclasses.replace(mix, proc_side=args.proc_side)
    config, table = make_input_config(mix, args.tfrecord_root, args.split)
    write_json_atomic(args.out, config)
    print(format_table(table))
    print(f'wrote {args.out}: {len(config["parts_3d"])} 3D + {len(config["parts_2d"])} 2D '
          f'datasets, batch {sum(r["per_batch"] for r in table)}, '
          f'{len(config["joint_names"])} joints')
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, run, argv)


if __name__ == '__main__':
    sys.exit(main())
