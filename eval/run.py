"""CLI: evaluate a predictions file or a model on a benchmark, print the tables, write JSON.

    python -m eval.run --benchmark=h36m --root=/data/h36m --predictions=preds.npz --out=report.json
    python -m eval.run --benchmark=mupots --root=/data/MultiPersonTestSet --model=SAVEDMODEL \
        --out=report.json [--skeleton=NAME] [--num-aug=5]

--benchmark: one of eval.benchmarks.BENCHMARKS. --root: the benchmark as distributed (see each
module's docstring for the files read). --predictions: the npz layout of eval/predictions.py.
--model: an exported SavedModel (metrabs.export); it is run on the benchmark's test images with
the ground-truth boxes and cameras (eval/model_predictions.py), its predictions are saved next to
--out as X.predictions.npz and evaluated like --predictions. Only benchmarks whose module defines
model_inputs support --model.
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
    'benchmark {name!r} is not supported for --model yet: running the exported model API '
    '(estimate_poses) needs the test images, person boxes and camera calibration, which its '
    'ground-truth loader does not provide (no model_inputs in {module}). Run the model yourself '
    'and pass its outputs with --predictions (layout: eval/predictions.py).')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m eval.run', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--benchmark', required=True, choices=sorted(BENCHMARKS))
    parser.add_argument('--root', required=True, type=pathlib.Path,
                        help='benchmark root folder, as distributed')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--predictions', type=pathlib.Path, help='predictions .npz')
    source.add_argument('--model', type=pathlib.Path,
                        help='exported SavedModel to run on the test images (needs --out)')
    parser.add_argument('--out', type=pathlib.Path, help='report JSON path (written atomically)')
    parser.add_argument('--skeleton', default='',
                        help="--model: estimate_poses skeleton ('' = all model joints)")
    parser.add_argument('--num-aug', type=int, default=5,
                        help='--model: test-time augmentations per box (averaged)')
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


def run_model(module, gt, args: argparse.Namespace) -> pathlib.Path:
    """Runs --model over the benchmark's test images; returns the saved predictions path."""
    import tensorflow as tf

    from eval import model_predictions

    if not args.model.is_dir():
        raise SystemExit(f'error: --model {args.model} is not a SavedModel directory')
    model = tf.saved_model.load(str(args.model))
    options = model_predictions.InferenceOptions(skeleton=args.skeleton, num_aug=args.num_aug)
    # Listed up front for the progress bar's total: ground-truth objects need not define len,
    # and a multi-person benchmark has fewer images than GT rows. Items hold paths or lazy
    # video frames, not pixels.
    inputs = list(module.model_inputs(gt))
    predictions = model_predictions.predict(model, inputs, options, total=len(inputs),
                                            source=str(args.model))
    path = model_predictions.predictions_path_for(args.out)
    model_predictions.save(predictions, path)
    print(f'wrote {path} ({len(predictions)} predicted poses)')
    return path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = get_benchmark(args.benchmark)
    if args.model is not None:
        if not hasattr(module, 'model_inputs'):
            print('error: ' + MODEL_NOT_SUPPORTED.format(name=args.benchmark,
                                                         module=module.__name__),
                  file=sys.stderr)
            return 2
        if args.out is None:
            print('error: --model needs --out (the predictions are saved next to the report)',
                  file=sys.stderr)
            return 2
    gt = module.load_ground_truth(args.root, **ground_truth_options(module, args))
    predictions_path = args.predictions if args.model is None else run_model(module, gt, args)
    predictions = load_predictions(predictions_path)
    result = module.evaluate(gt, predictions)
    print(report.format_result(result))
    if args.out is not None:
        report.write_json(args.out, report.result_to_json(result))
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
