"""CLI: evaluate a predictions file or a model on a benchmark, print the tables, write JSON.

    python -m eval.run --benchmark=h36m --root=/data/h36m --predictions=preds.npz --out=report.json
    python -m eval.run --benchmark=mupots --root=/data/MultiPersonTestSet --model=SAVEDMODEL \
        --out=report.json [--boxes=detector|gt] [--skeleton=NAME] [--num-aug=1]

    python -m eval.run --benchmark=tfrecords --root=BUILD_DIR --model=SAVEDMODEL --out=report.json

--benchmark: one of eval.benchmarks.BENCHMARKS. --root: the benchmark as distributed (see each
module's docstring for the files read); for 'tfrecords', any output of posepile.build or
posepile.build_all (any dataset, your own included): its test split in every skeleton format
the records label (eval/benchmarks/tfrecords.py). --predictions: the npz layout of eval/predictions.py.
--model: an exported SavedModel (metrabs.export); it is run on the benchmark's test images with
the benchmark's cameras (eval/model_predictions.py), with the person boxes from the model's own
detector (--boxes=detector, the default for the four public benchmarks, as the released MeTRAbs
predictions; the model must have been exported with --detector) or from the ground truth
(--boxes=gt). Inference settings default to the released prediction scripts' (1 augmentation,
antialias factor 2) and are recorded in the report. The predictions are saved next to --out as
X.predictions.npz (detector runs that track detections to annotated people, 3DPW, also save the
raw detections as X.detections.npz) and evaluated like --predictions. Protocol options (which
split, skeleton, frames...) each default to the released MeTRAbs evaluation; the report says
which convention every number follows (docs/EVALUATION.md).
"""
from __future__ import annotations

import argparse
import inspect
import pathlib
import sys

from eval import report
from eval.benchmarks import BENCHMARKS, get_benchmark
from eval.predictions import BOX_SOURCES, load_predictions, save
from posepile import cli
from posepile.cli import UserError

MODEL_NOT_SUPPORTED = (
    'benchmark {name!r} is not supported for --model yet: running the exported model API '
    '(estimate_poses) needs the test images, person boxes and camera calibration, which its '
    'ground-truth loader does not provide (no model_inputs in {module}). Run the model yourself '
    'and pass its outputs with --predictions (layout: eval/predictions.py).')


# CLI flag -> keyword of the benchmarks' load_ground_truth (each benchmark takes some of them).
GROUND_TRUTH_FLAGS = ('frame_step', 'correct_s9', 'universal', 'rescale_bones', 'root_relative',
                      'split', 'valid_frames', 'gt_joints', 'body_model_dir', 'h36m_regressor')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m eval.run', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--benchmark', required=True, choices=sorted(BENCHMARKS))
    parser.add_argument('--root', required=True, type=pathlib.Path,
                        help='benchmark root folder, as distributed (tfrecords: a build '
                             'directory)')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--predictions', type=pathlib.Path, help='predictions .npz')
    source.add_argument('--model', type=pathlib.Path,
                        help='exported SavedModel to run on the test images (needs --out)')
    parser.add_argument('--out', type=pathlib.Path, help='report JSON path (written atomically)')
    model = parser.add_argument_group('--model options')
    model.add_argument('--boxes', choices=BOX_SOURCES, default=None,
                       help="person boxes: the model's detector or the ground truth (default: "
                            "the benchmark's, 'detector' for h36m/pw3d/mpi_inf_3dhp/mupots)")
    model.add_argument('--skeleton', default='',
                       help="estimate_poses skeleton ('' = all model joints)")
    model.add_argument('--num-aug', type=int, default=None,
                       help='test-time augmentations per box, averaged (default: the released '
                            'setting, 1)')
    model.add_argument('--antialias-factor', type=int, default=None,
                       help='crop supersampling (default: the released setting, 2)')
    model.add_argument('--internal-batch-size', type=int, default=64,
                       help='crops per model call (speed only)')
    protocol = parser.add_argument_group('protocol options (default: the released MeTRAbs '
                                         'evaluation; see docs/EVALUATION.md)')
    protocol.add_argument('--frame-step', type=int, default=None,
                          help='h36m: evaluate every Nth frame (default 64)')
    protocol.add_argument('--correct-s9', action=argparse.BooleanOptionalAction, default=None,
                          help='h36m: undo the 200 mm shift of three S9 sequences for the '
                               'absolute MPJPE (default: no)')
    protocol.add_argument('--universal', action=argparse.BooleanOptionalAction, default=None,
                          help='mpi_inf_3dhp/mupots: compare with univ_annot3 instead of annot3 '
                               '(default: mpi_inf_3dhp no, mupots yes)')
    protocol.add_argument('--rescale-bones', default=None, action=argparse.BooleanOptionalAction,
                          help='mupots: rescale predicted bones to GT lengths (default: when '
                               'universal)')
    protocol.add_argument('--root-relative', default=None,
                          action=argparse.BooleanOptionalAction,
                          help='mupots: root-relative PCK (default) or, with --no-root-relative, '
                               'absolute PCK')
    protocol.add_argument('--split', default=None,
                          choices=('all', 'train', 'validation', 'test'),
                          help='pw3d: sequences to evaluate (default: all 60); tfrecords: the '
                               'built split to evaluate (default: test)')
    protocol.add_argument('--valid-frames', default=None, choices=('official', 'campose'),
                          help='pw3d: official = campose_valid and 2D pose present (default), '
                               'campose = campose_valid only (SPIN)')
    protocol.add_argument('--gt-joints', default=None, choices=('pickle', 'smpl'),
                          help='pw3d: jointPositions (default) or the SMPL forward pass')
    protocol.add_argument('--body-model-dir', default=None,
                          help='pw3d: SMPL model files (posepile/body_models.py layout), for '
                               'the mesh 14-joint numbers and --gt-joints=smpl')
    protocol.add_argument('--h36m-regressor', default=None,
                          help='pw3d: J_regressor_h36m.npy [17, 6890], for the mesh 14-joint '
                               'numbers')
    return parser


def ground_truth_options(module, args: argparse.Namespace) -> dict:
    """The options the user set, checked against what the benchmark's loader accepts."""
    chosen = {k: getattr(args, k) for k in GROUND_TRUTH_FLAGS if getattr(args, k) is not None}
    accepted = inspect.signature(module.load_ground_truth).parameters
    unknown = [k for k in chosen if k not in accepted]
    if unknown:
        flags = ', '.join('--' + k.replace('_', '-') for k in unknown)
        raise UserError(f'{flags} does not apply to benchmark {args.benchmark!r}')
    return chosen


def box_source(module, args: argparse.Namespace) -> str:
    """--boxes, else the benchmark's default; an error if the benchmark cannot detect."""
    boxes = args.boxes or getattr(module, 'DEFAULT_BOXES', 'gt')
    if boxes == 'detector' and not hasattr(module, 'DETECTOR'):
        raise UserError(f'benchmark {args.benchmark!r} has no detector mode (--boxes=gt only)')
    return boxes


def inference_options(module, args: argparse.Namespace):
    """InferenceOptions from the flags, unset ones from the benchmark's INFERENCE_DEFAULTS."""
    from eval import model_predictions
    chosen = dict(getattr(module, 'INFERENCE_DEFAULTS', {}))
    chosen.update({k: v for k, v in dict(num_aug=args.num_aug,
                                         antialias_factor=args.antialias_factor).items()
                   if v is not None})
    return model_predictions.InferenceOptions(
        skeleton=args.skeleton, internal_batch_size=args.internal_batch_size, **chosen)


def run_model(module, gt, args: argparse.Namespace) -> pathlib.Path:
    """Runs --model over the benchmark's test images; returns the saved predictions path."""
    import tensorflow as tf

    from eval import model_predictions

    if not args.model.is_dir():
        raise UserError(f'--model {args.model} is not a SavedModel directory')
    boxes = box_source(module, args)
    options = inference_options(module, args)
    model = tf.saved_model.load(str(args.model))
    if boxes == 'detector' and not model_predictions.has_detector(model):
        raise UserError(f'{args.model} was exported without a person detector '
                        f'(metrabs.export --detector=...), so --boxes=detector would estimate '
                        f'one person in the whole image; use --boxes=gt')
    takes_boxes = 'boxes' in inspect.signature(module.model_inputs).parameters
    # Listed up front for the progress bar's total: ground-truth objects need not define len,
    # and a multi-person benchmark has fewer images than GT rows. Items hold paths or lazy
    # video frames, not pixels.
    inputs = list(module.model_inputs(gt, boxes=boxes) if takes_boxes
                  else module.model_inputs(gt))
    detector = module.DETECTOR if boxes == 'detector' else None
    predictions = model_predictions.predict(model, inputs, options, total=len(inputs),
                                            source=str(args.model), detector=detector)
    path = model_predictions.predictions_path_for(args.out)
    if detector is not None and hasattr(module, 'assign_detections'):
        raw_path = path.with_name(path.name.replace('.predictions.npz', '.detections.npz'))
        save(predictions, raw_path)
        print(f'wrote {raw_path} ({len(predictions)} detections)')
        predictions = module.assign_detections(gt, predictions)
    save(predictions, path)
    print(f'wrote {path} ({len(predictions)} predicted poses)')
    return path


def run(args: argparse.Namespace) -> int:
    module = get_benchmark(args.benchmark)
    if args.model is not None:
        if not hasattr(module, 'model_inputs'):
            raise UserError(MODEL_NOT_SUPPORTED.format(name=args.benchmark,
                                                       module=module.__name__))
        if args.out is None:
            raise UserError('--model needs --out (the predictions are saved next to the report)')
        box_source(module, args)  # an impossible --boxes fails before the ground truth is read
    gt = module.load_ground_truth(args.root, **ground_truth_options(module, args))
    predictions_path = args.predictions if args.model is None else run_model(module, gt, args)
    predictions = load_predictions(predictions_path)
    result = module.evaluate(gt, predictions)
    print(report.format_result(result))
    if args.out is not None:
        report.write_json(args.out, report.result_to_json(result))
        print(f'wrote {args.out}')
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(build_parser, run, argv,
                   uses_tensorflow=lambda args: args.model is not None
                   or getattr(get_benchmark(args.benchmark), 'READS_TFRECORDS', False))


if __name__ == '__main__':
    sys.exit(main())
