"""Side-by-side table of several synthetic-benchmark reports (eval.run JSON outputs).

    python -m eval.compare "separate heads=out/eval/base.json" "(a) output reg.=out/eval/a.json" ...

Prints a markdown table: accuracy (mean-aligned MPJPE, PA-MPJPE, absolute MPJPE; mm) and the
cross-skeleton consistency (mean, depth, image plane; mm) of each model, then the mean-pose
baseline and the ground-truth consistency floor taken from the first report. This is the table
the README shows.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from posepile import cli

COLUMNS = (('MPJPE', 'mpjpe'), ('PA-MPJPE', 'pa_mpjpe'), ('abs MPJPE', 'mpjpe_abs'),
           ('consistency', 'consistency_mm'), ('cons. depth', 'consistency_depth_mm'),
           ('cons. image plane', 'consistency_plane_mm'))


def load_summary(path: str) -> dict:
    try:
        with open(path, encoding='utf-8') as f:
            report = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'cannot read report {path}: {e}') from None
    summary = report.get('summary') if isinstance(report, dict) else None
    if not isinstance(summary, dict) or 'mpjpe' not in summary:
        raise ValueError(f'{path} has no synthetic-benchmark "summary" field (an eval.run '
                         f'report of --benchmark=synthetic)')
    return summary


def _cell(value) -> str:
    return '–' if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f'{value:.1f}'


def format_comparison(named_summaries: list[tuple[str, dict]]) -> str:
    lines = ['| model | ' + ' | '.join(c for c, _ in COLUMNS) + ' |',
             '|---|' + '---:|' * len(COLUMNS)]
    for name, summary in named_summaries:
        lines.append(f'| {name} | ' + ' | '.join(_cell(summary.get(k)) for _, k in COLUMNS)
                     + ' |')
    first = named_summaries[0][1]
    baseline = {k: first.get(f'baseline_{k}') for _, k in COLUMNS[:3]}
    baseline['consistency_mm'] = first.get('baseline_consistency_mm')
    lines.append('| mean-pose baseline | ' + ' | '.join(_cell(baseline.get(k)) for _, k in COLUMNS)
                 + ' |')
    floor = {'consistency_mm': first.get('gt_consistency_floor_mm')}
    lines.append('| ground truth (floor) | ' + ' | '.join(_cell(floor.get(k)) for _, k in COLUMNS)
                 + ' |')
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m eval.compare', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('reports', nargs='+', metavar='NAME=REPORT.json',
                        help='a row label and the eval.run JSON report it shows')
    return parser


def run(args: argparse.Namespace) -> int:
    named = []
    for item in args.reports:
        name, sep, path = item.partition('=')
        if not sep:
            raise ValueError(f'expected NAME=REPORT.json, got {item!r}')
        named.append((name, load_summary(path)))
    print(format_comparison(named))
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv)


if __name__ == '__main__':
    sys.exit(main())
