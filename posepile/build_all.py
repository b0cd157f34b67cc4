"""Build every dataset a user has into one TFRecord tree, in parallel, resumably.

    python -m posepile.build_all --roots=my_roots.json --out=tfrecords
        [--jobs=N] [--workers=N] [--only=h36m,coco] [--dry-run]
        [--crop-size=256 --num-shards=16 --jpeg-quality=95 --dedup-threshold-mm=100
         --box-scale=1.25]
        [--body-model-dir=DIR]

Roots file (JSON; configs/roots_example.json lists every converter):
    {
      "description": "...",                      # optional
      "body_model_dir": "/data/body_models",      # optional: SMPL-family model files, passed to
                                                  #   the converters that take body_model_dir
      "datasets": {
        "h36m": "/data/h36m",                     # name -> raw dataset directory, or
        "muco": {"root": "/data/3dhp",            # name -> object:
                 "converter": "muco_composite",   #   converter module (default: the name)
                 "options": {"num_composites": 150000},  # converter keyword options
                 "num_shards": 256,               #   overrides --num-shards for this dataset
                 "body_model_dir": "..."}         #   overrides the top-level one
      }
    }
Relative directories are relative to the roots file's directory; `~` is expanded. Keys starting
with '_' inside "datasets" are ignored (room for comments). Each dataset is built by
`python -m posepile.build` into OUT/<name>/ (manifest.json + OUT/<name>/<dataset>/<split>/
shards), the layout configs/mix_*.json expect under their tfrecord_root.

Parallelism: up to --jobs datasets at once, each cropping with --workers processes. Defaults
spread this machine's cores: jobs = min(#datasets, cores), workers = max(1, cores // jobs).

Resuming: a dataset whose OUT/<name>/ holds a finished build with the same settings (build
config, converter options, and the same raw directory, recorded in build_source.json) is
skipped without reading its raw data. An interrupted dataset resumes shard by shard (see
posepile.build). A dataset that fails (missing root, bad option, a converter error, a crash) is
reported by name with the end of its log (OUT/_logs/<name>.log); the others carry on, and
nothing already written is touched (shards and manifests are written atomically, the manifest
last). The exit status is 1 if any dataset failed.

Summary: a table per dataset of examples the converter yielded ("examples", before the 100 mm
rule), dropped by the converter's own rules ("conv. skips"), kept by the 100 mm rule ("after
dedup", with its train/validation/test split), shards and time; also written to
OUT/build_summary.json (`summary_rows` / `format_summary` are the library entry points).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tqdm import tqdm

from posepile import build, cli
from posepile.atomic_io import write_json_atomic

SOURCE_NAME = 'build_source.json'
SUMMARY_NAME = 'build_summary.json'
LOG_DIR = '_logs'
_ENTRY_KEYS = {'root', 'converter', 'options', 'num_shards', 'body_model_dir'}
_TOP_KEYS = {'description', 'body_model_dir', 'datasets'}
# Lines of a failed build's log quoted in the report.
_LOG_TAIL_LINES = 6
# The build settings a roots file's datasets share (CLI flags; num_shards also per dataset).
DEFAULT_SETTINGS = {key: getattr(build.BuildConfig(), key) for key in (
    'crop_size', 'num_shards', 'jpeg_quality', 'dedup_threshold_mm', 'box_scale')}


@dataclasses.dataclass(frozen=True)
class RootEntry:
    """One dataset of a roots file: its name (= output directory), converter, raw directory,
    converter options, shard count override and body model directory."""
    name: str
    converter: str
    root: pathlib.Path
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_shards: int | None = None
    body_model_dir: str | None = None


@dataclasses.dataclass
class DatasetResult:
    """What happened to one dataset: status 'built', 'up to date', 'would build' (dry run) or
    'FAILED' (then `error` says why); its manifest's per-dataset counts when it has one."""
    name: str
    status: str
    seconds: float = 0.0
    error: str = ''
    log: str = ''
    manifest: dict[str, Any] | None = None


def load_roots(path: str | os.PathLike) -> list[RootEntry]:
    """Reads and checks a roots file; errors name the file and the field."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'missing roots file {path}')
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: not valid JSON ({error})') from error
    return parse_roots(data, path.parent, str(path))


def parse_roots(data: Any, base_dir: str | os.PathLike, source: str = '<dict>'
                ) -> list[RootEntry]:
    """RootEntry list from a parsed roots dict; relative roots are taken relative to
    `base_dir`."""
    if not isinstance(data, Mapping):
        raise ValueError(f'{source}: a roots file holds a JSON object')
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise KeyError(f'{source}: unknown fields {unknown}; known: {sorted(_TOP_KEYS)}')
    datasets = data.get('datasets')
    if not isinstance(datasets, Mapping) or not datasets:
        raise KeyError(f'{source}: field "datasets" is missing, empty or not an object')
    top_body = data.get('body_model_dir')
    entries = []
    for name, value in datasets.items():
        if name.startswith('_'):
            continue
        where = f'{source}: datasets.{name}'
        if not name or not all(c.isalnum() or c in '_-.' for c in name) or name.startswith('.'):
            raise ValueError(f'{where}: a dataset name becomes a directory name; use letters, '
                             f'digits, "_", "-", "."')
        if isinstance(value, str):
            value = {'root': value}
        if not isinstance(value, Mapping):
            raise ValueError(f'{where}: expected a directory (string) or an object with "root"')
        bad = sorted(set(value) - _ENTRY_KEYS)
        if bad:
            raise KeyError(f'{where}: unknown fields {bad} (known: {sorted(_ENTRY_KEYS)})')
        if 'root' not in value:
            raise KeyError(f'{where}: missing field "root" (the raw dataset directory)')
        options = value.get('options', {})
        if not isinstance(options, Mapping):
            raise ValueError(f'{where}: field "options" must be an object of converter options')
        num_shards = value.get('num_shards')
        if num_shards is not None and (not isinstance(num_shards, int) or num_shards < 1):
            raise ValueError(f'{where}: field "num_shards" must be an integer >= 1')
        body = value.get('body_model_dir', top_body)
        entries.append(RootEntry(
            name=name, converter=str(value.get('converter', name)),
            root=_resolve(value['root'], base_dir), options=dict(options),
            num_shards=num_shards, body_model_dir=None if body is None else str(
                _resolve(body, base_dir))))
    if not entries:
        raise KeyError(f'{source}: field "datasets" names no dataset')
    return entries


def _resolve(directory: str, base_dir) -> pathlib.Path:
    path = pathlib.Path(os.path.expanduser(str(directory)))
    return path if path.is_absolute() else pathlib.Path(base_dir) / path


# ------------------------------------------------------------------------------------ one dataset
def build_argv(entry: RootEntry, out: pathlib.Path, settings: Mapping[str, Any],
               workers: int) -> list[str]:
    """The `python -m posepile.build` arguments that build `entry` into OUT/<name>."""
    argv = [f'--dataset={entry.converter}', f'--root={entry.root}', f'--out={out / entry.name}',
            f'--workers={workers}',
            f'--num-shards={entry.num_shards or settings["num_shards"]}']
    argv += [f'--{key.replace("_", "-")}={settings[key]}'
             for key in ('crop_size', 'jpeg_quality', 'dedup_threshold_mm', 'box_scale')]
    if entry.body_model_dir is not None:
        argv.append(f'--body-model-dir={entry.body_model_dir}')
    argv += [f'--converter-option={key}={json.dumps(value)}'
             for key, value in entry.options.items()]
    return argv


def _source_record(entry: RootEntry) -> dict[str, str]:
    return {'converter': entry.converter, 'root': str(entry.root.resolve())}


def _log_tail(path: pathlib.Path) -> str:
    try:
        lines = [line for line in path.read_text(errors='replace').splitlines()
                 if line.strip() and '\r' not in line]
    except OSError:
        return ''
    return '\n'.join(lines[-_LOG_TAIL_LINES:])


def build_one(entry: RootEntry, out: pathlib.Path, settings: Mapping[str, Any], workers: int,
              dry_run: bool = False) -> DatasetResult:
    """Builds (or skips) one dataset in a subprocess; never raises for the dataset's own
    faults: they come back as a FAILED result."""
    started = time.perf_counter()
    out_dir = out / entry.name
    argv = build_argv(entry, out, settings, workers)
    try:
        prepared = build.prepare(argv)
    except (ValueError, OSError) as error:
        return DatasetResult(entry.name, 'FAILED', error=str(error))
    except Exception as error:  # a converter's skeleton_of reading a malformed root
        return DatasetResult(entry.name, 'FAILED', error=f'{type(error).__name__}: {error}')
    conflict = build.settings_conflict(out_dir, prepared.config)
    if conflict:
        return DatasetResult(entry.name, 'FAILED', error=conflict)
    source_path = out_dir / SOURCE_NAME
    wanted_source = _source_record(entry)
    recorded = None
    if source_path.is_file():
        try:
            recorded = json.loads(source_path.read_text())
        except json.JSONDecodeError:
            pass
        if recorded != wanted_source:
            return DatasetResult(entry.name, 'FAILED', error=(
                f'{out_dir} was built from {recorded}, the roots file now gives '
                f'{wanted_source}: delete {out_dir} to rebuild, or, if it is the same data '
                f'moved, write the new root into {source_path}'))
    if build.is_complete(out_dir, prepared.config):
        return DatasetResult(entry.name, 'up to date', time.perf_counter() - started,
                             manifest=_read_manifest(out_dir))
    if dry_run:
        return DatasetResult(entry.name, 'would build')
    if recorded is None:
        write_json_atomic(source_path, wanted_source)
    log_path = out / LOG_DIR / f'{entry.name}.log'
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_path, 'w', encoding='utf-8') as log:
        log.write(f'$ {sys.executable} -m posepile.build {" ".join(argv)}\n')
        log.flush()
        returncode = subprocess.run([sys.executable, '-m', 'posepile.build', *argv],
                                    stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.perf_counter() - started
    if returncode != 0:
        return DatasetResult(entry.name, 'FAILED', seconds, log=str(log_path), error=(
            f'posepile.build exited with status {returncode}; end of {log_path}:\n'
            f'{_log_tail(log_path)}'))
    return DatasetResult(entry.name, 'built', seconds, log=str(log_path),
                         manifest=_read_manifest(out_dir))


def _read_manifest(out_dir: pathlib.Path) -> dict[str, Any]:
    return json.loads((out_dir / build.MANIFEST_NAME).read_text())


# ------------------------------------------------------------------------------------- all of them
def plan_parallelism(n_datasets: int, jobs: int | None, workers: int | None,
                     cores: int | None = None) -> tuple[int, int]:
    """(datasets at once, crop processes per dataset) for this machine's cores."""
    cores = cores or len(os.sched_getaffinity(0))
    jobs = jobs or max(1, min(n_datasets, cores))
    workers = workers or max(1, cores // jobs)
    return jobs, workers


def build_all(entries: Sequence[RootEntry], out: str | os.PathLike,
              settings: Mapping[str, Any] | None = None, jobs: int | None = None,
              workers: int | None = None, dry_run: bool = False,
              show_progress: bool = True) -> list[DatasetResult]:
    """Builds every entry into OUT/<name>/ (module docstring); returns one result per entry in
    `entries` order and writes OUT/build_summary.json."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'datasets named more than once: {duplicates}')
    jobs, workers = plan_parallelism(len(entries), jobs, workers)
    results: dict[str, DatasetResult] = {}
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool, \
            tqdm(total=len(entries), desc='datasets', unit='ds', disable=not show_progress) as bar:
        futures = {pool.submit(build_one, e, out, settings, workers, dry_run): e.name
                   for e in entries}
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            results[result.name] = result
            bar.update(1)
            message = f'{result.name}: {result.status}'
            if result.status == 'built':
                message += f' in {result.seconds:.0f} s'
            bar.write(message + (f'\n  {result.error}'.replace('\n', '\n  ')
                                 if result.error else ''))
    ordered = [results[n] for n in names]
    if not dry_run:
        write_json_atomic(out / SUMMARY_NAME, {
            'rows': summary_rows(ordered),
            'failed': {r.name: r.error for r in ordered if r.status == 'FAILED'}})
    return ordered


def summary_rows(results: Sequence[DatasetResult]) -> list[dict[str, Any]]:
    """One row per dataset: name, status, datasets inside its build, example counts before and
    after the 100 mm rule (total and per split), converter skips, shards, seconds."""
    rows = []
    for result in results:
        row = {'name': result.name, 'status': result.status, 'seconds': round(result.seconds, 1),
               'datasets': [], 'examples': None, 'converter_skips': None, 'after_dedup': None,
               'after_dedup_by_split': {}, 'shards': None}
        if result.manifest is not None:
            infos = result.manifest['datasets']
            row['datasets'] = sorted(infos)
            row['examples'] = sum(i['num_before_dedup'] for i in infos.values())
            row['converter_skips'] = sum(i['num_skipped'] for i in infos.values())
            row['after_dedup'] = sum(i['num_after_dedup'] for i in infos.values())
            for info in infos.values():
                for split, n in info['after_dedup'].items():
                    by_split = row['after_dedup_by_split']
                    by_split[split] = by_split.get(split, 0) + n
            row['shards'] = len(result.manifest['shards'])
        rows.append(row)
    return rows


def format_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary table (module docstring) as text."""
    def num(value):
        return '' if value is None else str(value)

    header = (f'{"dataset":<18} {"status":<11} {"examples":>10} {"conv. skips":>11} '
              f'{"after dedup":>11} {"kept":>6} {"train":>9} {"valid.":>8} {"test":>8} '
              f'{"shards":>6} {"time":>7}')
    lines = [header, '-' * len(header)]
    totals = dict.fromkeys(('examples', 'converter_skips', 'after_dedup', 'shards'), 0)
    split_totals = dict.fromkeys(build.SPLITS, 0)
    for row in rows:
        kept = (f'{100 * row["after_dedup"] / row["examples"]:.0f}%'
                if row['examples'] else '')
        splits = row['after_dedup_by_split']
        name = row['name']
        if row['datasets'] and row['datasets'] != [name]:
            name += f' ({",".join(row["datasets"])})'
        lines.append(
            f'{name:<18} {row["status"]:<11} {num(row["examples"]):>10} '
            f'{num(row["converter_skips"]):>11} {num(row["after_dedup"]):>11} {kept:>6} '
            f'{splits.get("train", ""):>9} {splits.get("validation", ""):>8} '
            f'{splits.get("test", ""):>8} {num(row["shards"]):>6} {row["seconds"]:>6.0f}s')
        for key in totals:
            totals[key] += row[key] or 0
        for split in split_totals:
            split_totals[split] += splits.get(split, 0)
    kept = f'{100 * totals["after_dedup"] / totals["examples"]:.0f}%' if totals['examples'] else ''
    lines.append('-' * len(header))
    lines.append(
        f'{"total":<18} {"":<11} {totals["examples"]:>10} {totals["converter_skips"]:>11} '
        f'{totals["after_dedup"]:>11} {kept:>6} {split_totals["train"]:>9} '
        f'{split_totals["validation"]:>8} {split_totals["test"]:>8} {totals["shards"]:>6}')
    return '\n'.join(lines)


# -------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m posepile.build_all',
        description='Build every dataset of a roots file (name -> raw directory) into one '
                    'TFRecord tree; see posepile/build_all.py.')
    parser.add_argument('--roots', required=True,
                        help='the roots file (JSON; example: configs/roots_example.json)')
    parser.add_argument('--out', required=True, help='the TFRecord tree: OUT/<name>/ per dataset')
    parser.add_argument('--jobs', type=int, default=None, help='datasets built at once')
    parser.add_argument('--workers', type=int, default=None, help='crop processes per dataset')
    parser.add_argument('--only', default=None,
                        help='comma-separated names: build only these datasets of the roots file')
    parser.add_argument('--dry-run', action='store_true',
                        help='check the roots and say what would be built or skipped')
    parser.add_argument('--body-model-dir', default=None,
                        help='default body model directory for entries without their own')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    for key, value in DEFAULT_SETTINGS.items():
        parser.add_argument(f'--{key.replace("_", "-")}', type=type(value), default=value,
                            help=f'{build.SETTING_HELP[key]} (default {value})')
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def run(args: argparse.Namespace) -> int:
    entries = load_roots(args.roots)
    if args.only:
        wanted = [n.strip() for n in args.only.split(',') if n.strip()]
        unknown = sorted(set(wanted) - {e.name for e in entries})
        if unknown:
            raise KeyError(f'--only names datasets not in {args.roots}: {unknown}')
        entries = [e for e in entries if e.name in wanted]
    if args.body_model_dir is not None:
        entries = [e if e.body_model_dir is not None
                   else dataclasses.replace(e, body_model_dir=args.body_model_dir)
                   for e in entries]
    for value, flag in ((args.jobs, '--jobs'), (args.workers, '--workers')):
        if value is not None and value < 1:
            raise ValueError(f'{flag} must be >= 1, got {value}')
    settings = {key: getattr(args, key) for key in DEFAULT_SETTINGS}
    results = build_all(entries, args.out, settings, args.jobs, args.workers, args.dry_run,
                        show_progress=not args.no_progress)
    print(format_summary(summary_rows(results)))
    for result in results:
        if result.manifest is not None:
            for line in build.dedup_warnings(result.manifest):
                print(f'posepile.build_all: {result.name}: {line}', file=sys.stderr)
    failed = [r for r in results if r.status == 'FAILED']
    if failed:
        print(f'\n{len(failed)} of {len(results)} datasets FAILED:', file=sys.stderr)
        for result in failed:
            print(f'- {result.name}: {result.error}', file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # The builds run in subprocesses (python -m posepile.build); this process reads the
    # TFRecord schema version (posepile.tfrecord_schema imports TensorFlow) to compare settings.
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
