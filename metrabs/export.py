"""Export a trained MetrabsModel: a SavedModel with the published MeTRAbs API, or the crop model
as ONNX / TFLite.

    python -m metrabs.export --checkpoint=LOGDIR_OR_CKPT --out=DIR [--joint-set=NAME]
        [--model-config=JSON] [--joint-names-file=JSON] [--acae-weights=weights.npz]
        [--detector=SAVEDMODEL_DIR [--detector-person-class=1] [--detector-signature=KEY]]
        [--bone-stats=JSON]
    python -m metrabs.export --format=onnx|tflite (--checkpoint=... | --savedmodel=DIR)
        --out=FILE [--precision=float32|float16 (tflite)] [--opset=17 (onnx)]

--format=savedmodel (the default) writes the full API (predict_crops, estimate_poses,
detect_poses, batched forms; `serving_default` = predict_crops). --format=onnx / tflite write
the crop model only (crops + intrinsics in, 3D and 2D poses out; metrabs.serving.crop_model_export)
plus FILE.json with the joint names and per-skeleton indices; --savedmodel converts an existing
export instead of a checkpoint (for TFLite through TFLiteConverter.from_saved_model).
--detector: a detector SavedModel, either this project's contract or the TF2 Object Detection API
/ TF-Hub detection signature (metrabs.serving.detectors); COCO-trained ones label people 1.

Where the model description comes from (first found wins):
    model config: --model-config (a ModelConfig JSON object, or a TrainConfig JSON with a 'model'
        object), else config.json next to the checkpoint or in its parent (what metrabs.train
        writes into the logdir);
    joint names: --joint-names-file (JSON list), else joint_names.json next to the checkpoint
        or in its parent, else --joint-set (a union 'real' / 'synthetic' / 'all' or a
        registered skeleton name, whose union names are used).
The checkpoint is a tf.train.Checkpoint with the model under the key 'model' (metrabs.train /
metrabs.training.checkpointing); a directory means its newest checkpoint. Every output is
written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import sys

from posepile import cli

# The model and serving modules import TensorFlow: they are imported in run(), after the
# arguments are parsed, so that --help answers without it (posepile/cli.py).
FORMATS = ('savedmodel', 'onnx', 'tflite')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m metrabs.export', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--checkpoint', help='training logdir or checkpoint prefix')
    source.add_argument('--savedmodel', help='an exported SavedModel (onnx / tflite only)')
    parser.add_argument('--out', required=True,
                        help='SavedModel directory, or the .onnx / .tflite file')
    parser.add_argument('--format', choices=FORMATS, default='savedmodel',
                        help='what to write (default savedmodel)')
    # Choices and defaults of --precision / --opset / --detector-person-class live in the
    # serving modules (TensorFlow); run() checks and fills them.
    parser.add_argument('--precision', default='float32',
                        help='TFLite weights: float32 (default) or float16')
    parser.add_argument('--opset', type=int, default=None,
                        help='ONNX opset (default: metrabs.serving.crop_model_export.'
                             'DEFAULT_ONNX_OPSET)')
    parser.add_argument('--model-config',
                        help='ModelConfig (or TrainConfig) JSON, if no config.json is next to '
                             'the checkpoint')
    parser.add_argument('--joint-names-file',
                        help='JSON list of the model\'s joints, if no joint_names.json is next '
                             'to the checkpoint')
    parser.add_argument('--joint-set',
                        help="'real' / 'synthetic' / 'all' or a skeleton name: its union joints, "
                             'if neither file exists')
    parser.add_argument('--acae-weights', help='ACAE weights.npz whose projection the outputs go '
                                               'through (acae.train)')
    parser.add_argument('--detector', help='person detector SavedModel to include')
    parser.add_argument('--detector-person-class', type=int, default=None,
                        help="the detector's class id of people (default: COCO's)")
    parser.add_argument('--detector-signature', default='serving_default',
                        help="the detector SavedModel's signature (default serving_default)")
    parser.add_argument('--bone-stats',
                        help='JSON {"<joint_a>-<joint_b>": mean length mm} for the plausibility '
                             'test')
    return parser


def _restore(args):
    from metrabs.model import restore
    from metrabs.model.description import (find_nearby, joint_names_of_set, load_joint_names,
                                           register_skeletons_nearby)

    prefix = restore.resolve_checkpoint(args.checkpoint)
    register_skeletons_nearby(prefix)  # user-defined skeletons of the model's joints, if any
    config_path = args.model_config or find_nearby(prefix, 'config.json')
    if config_path is None:
        raise SystemExit(f'{prefix}: no config.json next to the checkpoint; pass --model-config')
    names_path = args.joint_names_file or find_nearby(prefix, 'joint_names.json')
    if names_path is not None:
        names = load_joint_names(names_path)
    elif args.joint_set:
        names = joint_names_of_set(args.joint_set)
    else:
        raise SystemExit(f'{prefix}: no joint_names.json next to the checkpoint; pass '
                         f'--joint-names-file or --joint-set')
    # Any model metrabs.train writes, incl. the ACAE latent/hybrid fine-tuned ones.
    return prefix, restore.restore_model(prefix, str(config_path), names)


def run(args: argparse.Namespace) -> int:
    from metrabs.serving import crop_model_export
    from metrabs.serving.detectors import COCO_PERSON_CLASS
    from metrabs.serving.saved_model import build_module, export

    if args.savedmodel and args.format == 'savedmodel':
        raise cli.UserError('--savedmodel is a source for --format=onnx or tflite')
    if args.savedmodel and (args.acae_weights or args.bone_stats):
        raise cli.UserError('--acae-weights and --bone-stats are part of the SavedModel: pass '
                            'them when exporting it')
    if args.precision != 'float32' and args.format != 'tflite':
        raise cli.UserError('--precision applies to --format=tflite only')
    if args.format != 'savedmodel' and args.detector:
        raise cli.UserError('--detector applies to --format=savedmodel (ONNX / TFLite hold the '
                            'crop model only)')
    if args.precision not in crop_model_export.TFLITE_PRECISIONS:
        raise ValueError(f'--precision {args.precision!r}: choose from '
                         f'{", ".join(crop_model_export.TFLITE_PRECISIONS)}')
    opset = crop_model_export.DEFAULT_ONNX_OPSET if args.opset is None else args.opset
    person_class = (COCO_PERSON_CLASS if args.detector_person_class is None
                    else args.detector_person_class)
    options = dict(acae_weights=args.acae_weights, bone_stats=args.bone_stats)
    if args.savedmodel:
        import tensorflow as tf
        source, module = args.savedmodel, tf.saved_model.load(args.savedmodel)
    else:
        source, model = _restore(args)
        if args.format == 'savedmodel':
            module = export(model, args.out, detector=args.detector,
                            detector_person_class=person_class,
                            detector_signature=args.detector_signature, **options)
        else:
            module = build_module(model, **options)
    if args.format == 'onnx':
        crop_model_export.export_onnx(module, args.out, opset)
    elif args.format == 'tflite':
        crop_model_export.export_tflite(module, args.out, args.precision,
                                        saved_model_dir=args.savedmodel)
    n_joints = len(module.joint_names.numpy())
    print(f'exported {source} ({n_joints} joints) as {args.format} to {args.out}')
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
