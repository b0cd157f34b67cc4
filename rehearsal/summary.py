"""The rehearsal's summary: examples per dataset and per stage, the benchmark runs, stage times.

Per training set: the examples its converter yielded (before the 100 mm rule) and dropped by its
own rules, the training examples kept after dedup, its rows per batch in the mix, the examples
the base training and the fine-tuning drew (steps x rows: the input pipeline's fixed per-dataset
counts) and the pseudo-GT poses predicted on it. Per benchmark: the ground-truth poses of its
protocol, those evaluated with a prediction, and its headline numbers (meaningless for a model
trained for a few steps on rendered people: they show that the runner ran on its real format).
Written as OUT/summary.json and OUT/summary.md (the table README shows).
"""
from __future__ import annotations

import json
import pathlib
from typing import Any

from posepile.atomic_io import write_bytes_atomic, write_json_atomic
from rehearsal import datasets

# Benchmark -> (label, key in its report's summary, unit); ground-truth / evaluated counts.
HEADLINES = {
    'h36m': (('MPJPE', 'mpjpe', 'mm'), ('PA-MPJPE', 'pa_mpjpe', 'mm')),
    'pw3d': (('MPJPE', 'mpjpe', 'mm'), ('PA-MPJPE', 'pa_mpjpe', 'mm')),
    'mpi_inf_3dhp': (('PCK', 'pck', '%'), ('AUC', 'auc', '%')),
    'mupots': (('PCK all', 'pck_all', '%'), ('PCK matched', 'pck_matched', '%')),
}


def _gt_and_evaluated(counts: dict[str, int]) -> tuple[int, int]:
    if 'n_annotated_people' in counts:
        return counts['n_annotated_people'], counts['n_matched_people']
    total = counts['n_poses']
    return total, total - counts.get('n_poses_without_prediction', 0)


def collect(out: pathlib.Path) -> dict[str, Any]:
    """The summary's rows from OUT/state.json and the stages' outputs."""
    state = json.loads((out / 'state.json').read_text())
    stages = state['stages']
    mix = stages.get('mix', {})
    train_steps = stages.get('train', {}).get('steps', 0)
    finetune_steps = stages.get('finetune', {}).get('steps', 0)
    pseudo = stages.get('pseudo_gt', {}).get('examples', {})
    rows = []
    for entry in datasets.TRAINING_SETS:
        row: dict[str, Any] = {'dataset': entry.name, 'converter': entry.converter,
                               'kind': mix.get('kinds', {}).get(entry.name)}
        manifest_path = out / 'tfrecords' / entry.name / 'manifest.json'
        if manifest_path.is_file():
            infos = json.loads(manifest_path.read_text())['datasets']
            row['converted'] = sum(i['num_before_dedup'] for i in infos.values())
            row['converter_skips'] = sum(i['num_skipped'] for i in infos.values())
            row['train_after_dedup'] = sum(i['after_dedup'].get('train', 0)
                                           for i in infos.values())
        per_batch = mix.get('rows', {}).get(entry.name)
        row['rows_per_batch'] = per_batch
        if per_batch is not None:
            row['drawn_in_training'] = per_batch * train_steps if train_steps else None
            row['drawn_in_finetuning'] = per_batch * finetune_steps if finetune_steps else None
        row['pseudo_gt'] = pseudo.get(entry.name)
        rows.append(row)
    benchmarks = []
    for name, report in stages.get('evaluate', {}).get('reports', {}).items():
        gt, evaluated = _gt_and_evaluated(report['counts'])
        benchmarks.append({'benchmark': name, 'gt_poses': gt, 'evaluated': evaluated,
                           'numbers': {label: report['summary'].get(key)
                                       for label, key, _ in HEADLINES.get(name, ())}})
    times = [{'stage': name, 'seconds': info.get('seconds'), 'load': info.get('load')}
             for name, info in stages.items() if 'seconds' in info]
    overrides = {name: stages[name].get('overrides', []) for name in ('train', 'finetune')
                 if name in stages}
    return {'size': state['size'], 'datasets': rows, 'benchmarks': benchmarks, 'times': times,
            'overrides': overrides, 'train_steps': train_steps, 'finetune_steps': finetune_steps}


def _cell(value) -> str:
    return '' if value is None else str(value)


def format_markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown tables."""
    lines = [f'Rehearsal, size {summary["size"]!r}: base training {summary["train_steps"]} '
             f'steps, fine-tuning {summary["finetune_steps"]} steps.', '',
             '| dataset | kind | converter yielded | converter skips | train after dedup | '
             'rows / batch | drawn in training | pseudo-GT | drawn in fine-tuning |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|']
    totals = dict.fromkeys(('converted', 'converter_skips', 'train_after_dedup',
                            'rows_per_batch', 'drawn_in_training', 'pseudo_gt',
                            'drawn_in_finetuning'), 0)
    for row in summary['datasets']:
        lines.append(f'| {row["dataset"]} | {_cell(row["kind"])} | '
                     + ' | '.join(_cell(row.get(k)) for k in totals) + ' |')
        for key in totals:
            totals[key] += row.get(key) or 0
    lines.append(f'| **total** ({len(summary["datasets"])}) | | '
                 + ' | '.join(str(v) for v in totals.values()) + ' |')
    if summary['benchmarks']:
        lines += ['', '| benchmark | GT poses | evaluated | numbers |', '|---|---:|---:|---|']
        for bench in summary['benchmarks']:
            units = {label: unit for label, _, unit in HEADLINES.get(bench['benchmark'], ())}
            numbers = ', '.join(f'{label} {value:.1f} {units[label]}'
                                for label, value in bench['numbers'].items()
                                if value is not None)
            lines.append(f'| {bench["benchmark"]} | {bench["gt_poses"]} | {bench["evaluated"]} '
                         f'| {numbers} |')
    if summary['times']:
        lines += ['', '| stage | seconds | load (1 min, before / after) |', '|---|---:|---|']
        total = 0.0
        for item in summary['times']:
            total += item['seconds']
            load = ' / '.join(f'{x:.1f}' for x in item['load'] or ())
            lines.append(f'| {item["stage"]} | {item["seconds"]:.0f} | {load} |')
        lines.append(f'| **total** | {total:.0f} | |')
    return '\n'.join(lines) + '\n'


def write(out: pathlib.Path) -> str:
    """Writes OUT/summary.json and OUT/summary.md; returns the Markdown."""
    summary = collect(out)
    write_json_atomic(out / 'summary.json', summary)
    text = format_markdown(summary)
    write_bytes_atomic(out / "summary.md", text.encode())
    return text
