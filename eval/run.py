"""CLI: evaluate a predictions file on a benchmark, print the paper-layout tables, write JSON.

    python -m eval.run --benchmark=h36m --root=/data/h36m --predictions=preds.npz --out=report.json

--benchmark: one of eval.benchmarks.BENCHMARKS. --root: the benchmark as distributed (see each
module's docstring for the files read). --predictions: the npz layout of eval/predictions.py.
"""
from __future__ import annotations

import argparse
import inspect
import pathlib
import sys

from eval import report
from eval.benchmarks import BENCHMARKS, get_benchmark
from eval.predictions import load_predictions

MODEL_NOT_SUPPORTED = (
    '--model is not supported yet: running a SavedModel needs the exported model API '
    '(estimate_poses with a documented signature: inputs, intrinsics, output joint names and '
    'units), which the export issue has not published. Run the model yourself and pass its '
    'outputs with --predictions (layout: eval/predictions.py).')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m eval.run', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--benchmark', required=True, choices=sorted(BENCHMARKS))
    parser.add_argument('--root', required=True, type=pathlib.Path,
                        help='benchmark root folder, as distributed')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--predictions', type=pathlib.Path, help='predictions .npz')
    source.add_argument('--model', type=pathlib.Path, help='SavedModel (not supported yet)')
    parser.add_argument('--out', type=pathlib.Path, help='report JSON path (written atomically)')
    parser.add_argument('--frame-step', type=int, default=None,
                        help='h36m: evaluate every Nth frame (default 64)')
    parser.add_argument('--no-universal', dest='universal', action='store_false', default=None,
                        help='mpi_inf_3dhp/mupots: compare with annot3 instead of univ_annot3')
    parser.add_argument('--rescale-bones', dest='rescale_bones', default=None,
                        action=argparse.BooleanOptionalAction,
                        help='mupots: rescale predicted bones to GT lengths (default: when '
                             'universal)')
    return parser


def ground_truth_options(module, args: argparse.Namespace) -> dict:
    """The options the user set, checked against what the benchmark's loader accepts."""
    chosen = {k: v for k, v in dict(frame_step=args.frame_step, universal=args.universal,
                                    rescale_bones=args.rescale_bones).items() if v is not None}
    accepted = inspect.signature(module.load_ground_truth).parameters
    unknown = [k for k in chosen if k not in accepted]
    if unknown:
        flags = ', '.join('--' + k.replace('_', '-') for k in unknown)
        raise SystemExit(f'error: {flags} does not apply to benchmark {args.benchmark!r}')
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.model is not None:
        print(f'error: {MODEL_NOT_SUPPORTED}', file=sys.stderr)
        return 2
    module = get_benchmark(args.benchmark)
    gt = module.load_ground_truth(args.root, **ground_truth_options(module, args))
    predictions = load_predictions(args.predictions)
    result = module.evaluate(gt, predictions)
    print(report.format_result(result))
    if args.out is not None:
        report.write_json(args.out, report.result_to_json(result))
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
