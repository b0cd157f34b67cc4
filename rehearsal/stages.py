"""The rehearsal's stages: each runs one real command (in its own process, as a user would) on
what the previous stages wrote under OUT, after the wiring checks that concern it.

    OUT/raw/<dataset>/            the written training sets (posepile.dataset_writers)
    OUT/benchmarks/<benchmark>/   the written test sets
    OUT/roots.json                the roots file of the written training sets
    OUT/tfrecords/                posepile.build_all's tree (build_summary.json)
    OUT/configs/                  the paper's configs with the CPU overrides (rehearsal/sizes.py)
    OUT/input_train.json          posepile.mix's InputConfig
    OUT/train/, OUT/finetune/     metrabs.train logdirs (base model, one fine-tuning)
    OUT/pseudo_gt.npz, OUT/acae/  metrabs.pseudo_gt, acae.train
    OUT/model/                    metrabs.export of the fine-tuned model
    OUT/eval/<benchmark>.json     eval.run reports
    OUT/logs/<stage>.log          every command's output
    OUT/state.json                per stage: seconds, load, what it produced (summary.py reads it)
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import pathlib
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from posepile.atomic_io import write_json_atomic
from rehearsal import checks, datasets, paper_configs
from rehearsal.sizes import Size, scale_steps, set_field

REPO = datasets.REPO
LOG_TAIL_LINES = 25


class StageFailed(RuntimeError):
    """A command of a stage exited with an error; the message quotes the end of its log."""


@dataclasses.dataclass
class Run:
    """One rehearsal: its output directory and size; `state` is OUT/state.json."""
    out: pathlib.Path
    size: Size
    state: dict[str, Any] = dataclasses.field(default_factory=dict)

    def path(self, *parts) -> pathlib.Path:
        return self.out.joinpath(*parts)

    @property
    def state_path(self) -> pathlib.Path:
        return self.path('state.json')

    def load_state(self) -> None:
        if self.state_path.is_file():
            self.state = json.loads(self.state_path.read_text())
            if self.state.get('size') != self.size.name:
                raise ValueError(f'{self.out} holds a rehearsal of size '
                                 f'{self.state.get("size")!r}, not {self.size.name!r}: use '
                                 f'another --out or delete it')
        self.state['size'] = self.size.name
        self.state.setdefault('stages', {})

    def record(self, stage: str, **info) -> None:
        self.state['stages'].setdefault(stage, {}).update(info)
        write_json_atomic(self.state_path, self.state)

    def command(self, stage: str, module: str, args: Sequence[str], log_name: str | None = None
                ) -> None:
        """Runs `python -m module args` with its output in OUT/logs/<log_name or stage>.log."""
        log_path = self.path('logs', f'{log_name or stage}.log')
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, '-m', module, *map(str, args)]
        env = dict(os.environ, PYTHONUNBUFFERED='1',
                   TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2'))
        with open(log_path, 'w', encoding='utf-8') as log:
            log.write('$ ' + shlex.join(argv) + '\n')
            log.flush()
            code = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  cwd=REPO).returncode
        if code != 0:
            lines = log_path.read_text(errors='replace').splitlines()
            tail = '\n'.join(f'  | {line}' for line in lines[-LOG_TAIL_LINES:])
            raise StageFailed(f'stage {stage}: python -m {module} exited with status {code}; '
                              f'end of {log_path}:\n{tail}')


# ----------------------------------------------------------------------------------- the stages
def write(run: Run) -> None:
    """Every training set of the mix (and its roots entry) and every benchmark test set."""
    raw, roots, written = run.path('raw'), {}, {}
    for entry in datasets.TRAINING_SETS:
        roots[entry.name] = datasets.write_training_set(entry, raw)
        written[entry.name] = roots[entry.name]['root']
    for bench in datasets.BENCHMARKS:
        written[bench.name] = str(datasets.write_benchmark(bench, run.path('benchmarks')))
    write_json_atomic(run.path('roots.json'), {
        'description': 'the rehearsal\'s training sets (python -m rehearsal), written by '
                       'posepile.dataset_writers in each dataset\'s real format',
        'datasets': roots})
    run.record('write', roots=written)


def build(run: Run) -> None:
    """posepile.build_all on the roots file; a failed dataset fails the stage by name."""
    tree = run.path('tfrecords')
    try:
        run.command('build', 'posepile.build_all', [
            f'--roots={run.path("roots.json")}', f'--out={tree}',
            f'--crop-size={run.size.crop_size}', '--no-progress'])
    except StageFailed as error:
        summary = tree / 'build_summary.json'
        failed = json.loads(summary.read_text()).get('failed', {}) if summary.is_file() else {}
        if failed:
            raise StageFailed('stage build: datasets FAILED:\n' + '\n'.join(
                f'- {name}: {message}' for name, message in failed.items())) from error
        raise


def scaled_mix(size: Size, tfrecord_root: pathlib.Path, paper: dict | None = None) -> dict:
    """configs/mix_paper28.json with the rows of `size` (each kind's rows shared over its
    datasets in proportion to the paper's counts, by posepile.mix.allocate, at least one each),
    the model's input side and the rehearsal's build tree."""
    from posepile.mix import allocate
    paper = paper if paper is not None else json.loads(paper_configs.MIX.read_text())
    mix = dict(paper, tfrecord_root=str(tfrecord_root), proc_side=size.proc_side,
               batch_size_3d=size.rows_3d, batch_size_2d=size.rows_2d)
    rows = {}
    for kind, total in (('3d', size.rows_3d), ('2d', size.rows_2d)):
        members = [e for e in paper['datasets'] if e['kind'] == kind]
        counts = allocate(total, [None] * len(members),
                          [e['examples_per_batch'] for e in members], 'proportional',
                          f'{paper_configs.MIX} ({kind})')
        rows.update({e['name']: n for e, n in zip(members, counts)})
    mix['datasets'] = [dict(e, examples_per_batch=rows[e['name']]) for e in paper['datasets']]
    mix['description'] = (f'configs/mix_paper28.json scaled to {size.batch_size} rows per batch '
                          f'for the {size.name!r} rehearsal')
    return mix


def mix(run: Run) -> None:
    """Checks the builds against the union and the mix, then posepile.mix."""
    tree = run.path('tfrecords')
    roots = json.loads(run.path('roots.json').read_text())['datasets']
    mix_file = run.path('configs', 'mix.json')
    mix_file.parent.mkdir(parents=True, exist_ok=True)
    mix_config = scaled_mix(run.size, tree)
    write_json_atomic(mix_file, mix_config)
    checks.mix_finds_datasets(mix_file, tree, list(roots))
    checks.builds_in_union(tree, [e.get('tfrecords', e['name']) for e in mix_config['datasets']],
                           mix_config.get('union', 'real'))
    run.command('mix', 'posepile.mix', [f'--config={mix_file}',
                                         f'--out={run.path("input_train.json")}'])
    input_config = json.loads(run.path('input_train.json').read_text())
    run.record('mix', rows={e['name']: e['examples_per_batch'] for e in mix_config['datasets']},
               kinds={e['name']: e['kind'] for e in mix_config['datasets']},
               builds={e['name']: e.get('tfrecords', e['name'])
                       for e in mix_config['datasets']},
               n_joints=len(input_config['joint_names']))


def cpu_config(paper_path: pathlib.Path, size: Size, steps: int, extra: dict | None = None
               ) -> tuple[dict, list]:
    """The paper's TrainConfig (all fields, defaults filled in and validated) with the CPU
    overrides of `size` (rehearsal/sizes.py) and `extra` fields; returns (config, changes)."""
    from metrabs.training.config import TrainConfig
    full = TrainConfig.from_json(paper_path).to_dict()
    config, changes = scale_steps(full, steps)
    for field, value in (('model.backbone', size.backbone), ('model.backbone_weights', None),
                         ('model.proc_side', size.proc_side),
                         ('global_batch_size', size.batch_size)):
        set_field(config, field, value, changes)
    if 'require_backbone_weights' in config:
        # The CPU backbones have no ImageNet weights: random initialisation, on purpose.
        set_field(config, 'require_backbone_weights', False, changes)
    for field, value in (extra or {}).items():
        set_field(config, field, value, changes)
    TrainConfig.from_dict(config, source=f'{paper_path} with the rehearsal overrides')
    return config, changes


def _train_config(run: Run, stage: str, paper_path: pathlib.Path, steps: int,
                  extra: dict | None = None) -> pathlib.Path:
    config, changes = cpu_config(paper_path, run.size, steps, extra)
    path = run.path('configs', f'{stage}.json')
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, config)
    run.record(stage, paper_config=str(paper_path.relative_to(REPO)), config=str(path),
               overrides=[list(c) for c in changes], steps=steps)
    return path


def _outputs_check(run: Run) -> None:
    state = run.state['stages']['mix']
    input_config = json.loads(run.path('input_train.json').read_text())
    tree = run.path('tfrecords')
    manifests = {name: checks.read_manifest(tree, build)
                 for name, build in state['builds'].items()}
    checks.outputs_cover_datasets(input_config['joint_names'], manifests, state['kinds'])


def train(run: Run) -> None:
    """metrabs.train with the paper's base config (CPU overrides only). It also checkpoints the
    step before its batch-norm inference phase, where the released fine-tunings start."""
    _outputs_check(run)
    scaled, _ = cpu_config(paper_configs.TRAIN, run.size, run.size.train_steps)
    before_bn = scaled['training_steps'] - scaled['bn_inference_steps']
    config = _train_config(run, 'train', paper_configs.TRAIN, run.size.train_steps,
                           {'checkpoint_every': before_bn})
    run.command('train', 'metrabs.train', [
        f'--config={config}', f'--logdir={run.path("train")}', '--data=tfrecords',
        f'--input-config={run.path("input_train.json")}', '--no-progress'])
    checkpoint = run.path('train', 'checkpoints', f'ckpt-{before_bn}')
    if not pathlib.Path(f'{checkpoint}.index').is_file():
        raise StageFailed(f'stage train: no checkpoint {checkpoint} (the step before the '
                          f'batch-norm inference phase) after metrabs.train')
    run.record('train', finetune_init=str(checkpoint))


def released_pseudo_gt_sets(tree: pathlib.Path) -> dict[str, tuple[str, str]]:
    """The released pseudo-GT's datasets (metrabs.pseudo_gt.RELEASED_DATASETS: H36M and
    BML-MoVi, the splits it names) in a posepile.build_all tree (TREE/<name>/<name>/<split>/):
    {part name: (dataset, shard glob)}; WiringError naming the tree if none is built."""
    from metrabs.pseudo_gt import RELEASED_DATASETS
    found = {f'{name}_{split}': (name, str(tree / name / name / split / '*.tfrecord'))
             for name, splits in RELEASED_DATASETS.items() for split in splits
             if (tree / name / name / split).is_dir()}
    if not found:
        raise checks.WiringError(f'{tree}: none of the released pseudo-GT datasets '
                                 f'{dict(RELEASED_DATASETS)} is built there')
    return found


def pseudo_gt(run: Run) -> None:
    """metrabs.pseudo_gt of the base model on the released run's clean studio data (the
    paper's settings: configs/paper28/pseudo_gt.json)."""
    out = run.path('pseudo_gt.npz')
    parts = released_pseudo_gt_sets(run.path('tfrecords'))
    run.command('pseudo_gt', 'metrabs.pseudo_gt', [
        f'--model={run.path("train")}', *(f'--datasets={n}={g}' for n, (_, g) in parts.items()),
        f'--out={out}', '--no-progress', *paper_configs.command_flags(paper_configs.PSEUDO_GT)])
    import numpy as np
    with np.load(out) as f:
        names, counts = np.unique(f['dataset'], return_counts=True)
    examples: dict[str, int] = {}
    for name, count in zip(names, counts):
        dataset = parts[str(name)][0]
        examples[dataset] = examples.get(dataset, 0) + int(count)
    run.record('pseudo_gt', paper_config=str(paper_configs.PSEUDO_GT.relative_to(REPO)),
               examples=examples)


def acae(run: Run) -> None:
    """acae.train on the pseudo-GT with the paper's settings (steps scaled)."""
    run.command('acae', 'acae.train', [
        f'--poses={run.path("pseudo_gt.npz")}', f'--out={run.path("acae")}',
        *paper_configs.command_flags(paper_configs.ACAE, {'steps': run.size.acae_steps})])
    run.record('acae', paper_config=str(paper_configs.ACAE.relative_to(REPO)),
               steps=run.size.acae_steps)


def finetune(run: Run) -> None:
    """One consistency fine-tuning (the paper's hybrid) from the base model's checkpoint before
    its batch-norm inference phase (as the released run does)."""
    # The fine-tuning's weight decay is normalised by the pretraining length (released: 400k),
    # here the rehearsal's base run.
    config = _train_config(run, 'finetune', paper_configs.FINETUNE, run.size.finetune_steps,
                           {'acae_weights': str(run.path('acae', 'weights.npz')),
                            'finetune.weight_decay_steps': run.size.train_steps})
    init = run.state['stages']['train']['finetune_init']
    run.command('finetune', 'metrabs.train', [
        f'--config={config}', f'--logdir={run.path("finetune")}', '--data=tfrecords',
        f'--input-config={run.path("input_train.json")}', f'--init-from={init}',
        '--no-progress'])


def export(run: Run) -> None:
    """metrabs.export of the fine-tuned model."""
    run.command('export', 'metrabs.export', [f'--checkpoint={run.path("finetune")}',
                                             f'--out={run.path("model")}'])


def model_joint_names(model_dir: pathlib.Path) -> list[str]:
    from metrabs.model import description
    return description.load_joint_names(model_dir / 'assets' / description.JOINT_NAMES_ASSET)


def evaluate(run: Run, parallel: int = 2) -> None:
    """eval.run of the exported model on each benchmark (ground-truth boxes: the rehearsal's
    export has no detector), `parallel` at a time."""
    model = run.path('model')
    names = [b.name for b in datasets.BENCHMARKS]
    checks.benchmark_joints(model_joint_names(model), names, f'the exported model {model}')

    def one(bench):
        run.command('evaluate', 'eval.run', [
            f'--benchmark={bench.name}', f'--root={run.path("benchmarks", bench.name)}',
            f'--model={model}', '--boxes=gt', f'--out={run.path("eval", bench.name + ".json")}',
            *bench.flags], log_name=f'evaluate_{bench.name}')

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        for future in [pool.submit(one, b) for b in datasets.BENCHMARKS]:
            future.result()
    reports = {}
    for name in names:
        report = json.loads(run.path('eval', f'{name}.json').read_text())
        reports[name] = {'summary': report['summary'], 'counts': report['counts']}
    run.record('evaluate', reports=reports)


STAGES: dict[str, Callable[[Run], None]] = {
    'write': write, 'build': build, 'mix': mix, 'train': train, 'pseudo_gt': pseudo_gt,
    'acae': acae, 'finetune': finetune, 'export': export, 'evaluate': evaluate}


def run_stage(run: Run, name: str) -> float:
    """Runs one stage, recording its wall time and the machine load around it."""
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    STAGES[name](run)
    seconds = time.perf_counter() - started
    run.record(name, seconds=round(seconds, 1),
               load=[round(load_before, 2), round(os.getloadavg()[0], 2)])
    return seconds
