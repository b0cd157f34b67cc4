"""Wiring checks between the stages: do the pieces of the pipeline fit each other?

Each check reads what the previous stages wrote (build manifests, the mix file, the InputConfig,
the export's description) and raises WiringError with a message that names the dataset, the
joints and the file involved, so a user (or the rehearsal) stops before a stage fails obscurely
or, worse, trains without complaint on the wrong joints:

- `builds_in_union`: every joint a converter labels is a joint of the union (a converter whose
  skeleton is missing from posepile/joints/skeletons.py, or was renamed, would otherwise be
  dropped or fail deep in the input pipeline);
- `mix_finds_datasets`: every dataset of the mix has a build (a roots-file entry that was left out,
  misnamed or failed) holding its training split, and every built dataset is mixed;
- `outputs_cover_datasets`: every joint of every 3D dataset is an output of the model, and every
  2D-only joint has a 3D output of the same base name to supervise (2D labels supervise the mean
  of the 3D joints sharing their base name);
- `benchmark_joints`: every joint a benchmark evaluates is an output of the exported model.
"""
from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable, Mapping, Sequence

from posepile import joints
from posepile.build import MANIFEST_NAME
from posepile.build_all import SOURCE_NAME


class WiringError(RuntimeError):
    """The pipeline's pieces do not fit; the message says where and how to fix it."""


def _short(names: Iterable[str], limit: int = 12) -> str:
    names = sorted(names)
    return ', '.join(names[:limit]) + (f' ... ({len(names)} in all)' if len(names) > limit else '')


def read_manifest(tree: pathlib.Path, name: str) -> dict:
    """The manifest of build OUT/<name>, or WiringError if there is none."""
    path = pathlib.Path(tree) / name / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise WiringError(f'{path} does not exist: dataset {name!r} was not built') from None
    except json.JSONDecodeError as error:
        raise WiringError(f'{path}: not valid JSON ({error})') from None


def build_joint_names(manifest: Mapping) -> set[str]:
    """Union joint names a build's examples are labelled with (all its joint sets)."""
    return {n for joint_set in manifest.get('joint_sets', ()) for n in joint_set['joint_names']}


def _converter_of(tree: pathlib.Path, name: str) -> str:
    try:
        return json.loads((pathlib.Path(tree) / name / SOURCE_NAME).read_text())['converter']
    except (OSError, ValueError, KeyError):
        return name


def builds_in_union(tree: pathlib.Path, names: Sequence[str], union: str = 'real'
                    ) -> dict[str, dict]:
    """Checks that every joint of builds OUT/<name> is in the `union`; returns the manifests."""
    union_names = set(joints.get_union(union).names)
    manifests, problems = {}, []
    for name in names:
        manifest = read_manifest(tree, name)
        manifests[name] = manifest
        outside = build_joint_names(manifest) - union_names
        if outside:
            problems.append(
                f'- {name} (converter posepile/datasets/{_converter_of(tree, name)}.py, skeleton '
                f'{manifest.get("skeleton")!r}): {_short(outside)}')
    if problems:
        raise WiringError(
            f'joints that converters label are missing from the {union!r} joint union '
            f'(posepile/joints/skeletons.py registers the skeletons; a converter must use '
            f'their names):\n' + '\n'.join(problems))
    return manifests


def mix_finds_datasets(mix_file: pathlib.Path, tree: pathlib.Path, roots_names: Sequence[str],
                       split: str = 'train') -> None:
    """Every dataset of the mix file has a build under `tree` holding its `split`, and every
    dataset of the roots file (`roots_names`) is in the mix."""
    mix = json.loads(pathlib.Path(mix_file).read_text())
    problems = []
    listed = set()
    for entry in mix['datasets']:
        name, directory = entry['name'], entry.get('tfrecords', entry['name'])
        listed.add(directory)
        manifest_path = pathlib.Path(tree) / directory / MANIFEST_NAME
        if not manifest_path.is_file():
            hint = ('the roots file has no entry of that name' if directory not in roots_names
                    else 'its build did not finish (see _logs/ of the build tree)')
            problems.append(f'- {name!r}: no build {manifest_path} ({hint})')
            continue
        manifest = json.loads(manifest_path.read_text())
        dataset = entry.get('dataset', name)
        info = manifest.get('datasets', {}).get(dataset)
        if info is None:
            problems.append(f'- {name!r}: build {directory!r} holds datasets '
                            f'{sorted(manifest.get("datasets", {}))}, not {dataset!r}')
        elif not info.get('after_dedup', {}).get(split):
            problems.append(f'- {name!r}: build {directory!r} has no {split!r} examples of '
                            f'{dataset!r} (after dedup: {info.get("after_dedup")})')
    unmixed = sorted(set(roots_names) - listed)
    if unmixed:
        problems.append(f'- built but in no row of the mix: {unmixed}')
    if problems:
        raise WiringError(f'the mix {mix_file} and the build tree {tree} do not match '
                          f'(roots-file entries: {len(roots_names)}):\n' + '\n'.join(problems))


def outputs_cover_datasets(model_joints: Sequence[str], manifests: Mapping[str, Mapping],
                           kinds: Mapping[str, str]) -> None:
    """Every joint of every '3d' build is a model output; every joint of every '2d' build has a
    model output of the same base name ('lsho' of 'lsho_coco' is 'lsho')."""
    outputs = set(model_joints)
    output_bases = {joints.split_union_name(n)[0] for n in outputs}
    problems = []
    for name, manifest in manifests.items():
        labelled = build_joint_names(manifest)
        if kinds[name] == '3d':
            missing = labelled - outputs
            if missing:
                problems.append(f'- {name} (3D): its joints {_short(missing)} are no outputs')
        else:
            orphans = {n for n in labelled if joints.split_union_name(n)[0] not in output_bases}
            if orphans:
                problems.append(f'- {name} (2D): no 3D output shares the base name of '
                                f'{_short(orphans)}, so these labels supervise nothing')
    if problems:
        raise WiringError(f'the model ({len(outputs)} output joints) does not cover the joints '
                          f'its training data labels:\n' + '\n'.join(problems))


def benchmark_joints(model_joints: Sequence[str], benchmarks: Sequence[str], where: str) -> None:
    """Every joint each benchmark evaluates (its eval.benchmarks SKELETON) is a model output."""
    from eval.benchmarks import get_benchmark
    outputs = set(model_joints)
    problems = []
    for name in benchmarks:
        skeleton = get_benchmark(name).SKELETON
        missing = set(joints.union_names(skeleton)) - outputs
        if missing:
            problems.append(f'- {name} evaluates skeleton {skeleton!r}; missing: '
                            f'{_short(missing)}')
    if problems:
        raise WiringError(f'{where} does not output joints the benchmarks evaluate:\n'
                          + '\n'.join(problems))
